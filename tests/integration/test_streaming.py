"""POST /query as Server-Sent Events through the local gateway, and ``docket ask`` reading them.

The answerer is held at a chosen event until the client shows it has already received the ones
before: a gateway or CLI that buffered the stream would make it wait out its timeout.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from docket import cli
from docket.answer.port import AnswerEvent
from docket.api import sse
from docket.models import SearchHit
from docket.query import get_query_service

from .conftest import Api

pytestmark = pytest.mark.integration

POLICY = """# Expenses

Hotel stays are reimbursed up to 180 euros per night in Paris and 140 euros elsewhere in France.
Receipts must be uploaded within thirty days of the stay.
"""
QUESTION = "How much is reimbursed for a hotel night in Paris?"


class HeldAnswerer:
    """The service's answerer, holding its events from ``hold_from`` on until ``release`` is set
    (or ``timeout`` seconds pass, which ``timed_out`` records)."""

    def __init__(self, inner: Any, release: threading.Event, hold_from: int = 0) -> None:
        self.inner = inner
        self.release = release
        self.hold_from = hold_from
        self.timeout = 10.0
        self.timed_out = False

    def answer(self, question: str, hits: Sequence[SearchHit]) -> Any:
        return self.inner.answer(question, hits)

    def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
        for index, event in enumerate(self.inner.stream(question, hits)):
            if index >= self.hold_from and not self.release.wait(self.timeout):
                self.timed_out = True
            yield event


@pytest.fixture(scope="module")
def policy(api: Api) -> str:
    doc_id = api.upload("policies/expenses.md", POLICY.encode())
    assert api.wait_status(doc_id)["status"] == "indexed"
    return doc_id


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HeldAnswerer, threading.Event]]:
    service = get_query_service()
    release = threading.Event()
    answerer = HeldAnswerer(service.answerer, release)
    monkeypatch.setattr(service, "answerer", answerer)
    yield answerer, release
    release.set()


def test_gateway_sends_each_event_as_it_is_produced(
    api: Api, policy: str, held: tuple[HeldAnswerer, threading.Event]
) -> None:
    answerer, release = held
    headers = {"authorization": f"Bearer {api.token('acme')}", "accept": "text/event-stream"}
    # Given a streamed question, whose answer is held until the client has the first event
    with api.http.stream("POST", "/query", headers=headers, json={"question": QUESTION}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["transfer-encoding"] == "chunked"
        events = sse.iter_events(sse.iter_lines(resp.iter_bytes()))
        # When the client reads the first event
        first = next(events)
        # Then it is the retrieval, received while the answer was still being held
        assert first.event == "retrieval"
        assert not answerer.timed_out
        release.set()
        rest = list(events)
    assert not answerer.timed_out, "the gateway held the retrieval event back until the end"
    assert any(c["document_id"] == policy for c in first.json()["chunks"])
    # And the deltas, then done, follow; the deltas concatenate to the final answer
    assert [e.event for e in rest][-1] == "done" and {e.event for e in rest[:-1]} == {"delta"}
    done = rest[-1].json()
    assert done["found"] and "180 euros" in done["answer"]
    assert "".join(e.json()["text"] for e in rest[:-1]) == done["answer"]
    assert done["citations"][0]["document_id"] == policy
    # And the connection is still good for the next request
    assert api.ask(QUESTION)["answer"] == done["answer"]


def test_errors_before_the_stream_keep_their_status_and_json(api: Api) -> None:
    accept = {"accept": "text/event-stream"}
    invalid = api.call("POST", "/query", headers=accept, json={"question": "x", "top_k": 0})
    assert invalid.status_code == 422 and invalid.headers["content-type"] == "application/json"
    anonymous = api.http.post("/query", headers=accept, json={"question": QUESTION})
    assert anonymous.status_code == 401 and "message" in anonymous.json()


class WatchedStdout(io.StringIO):
    """Captures stdout and signals as soon as anything is printed."""

    def __init__(self, printed: threading.Event) -> None:
        super().__init__()
        self.printed = printed

    def write(self, text: str) -> int:
        written = super().write(text)
        if text.strip():
            self.printed.set()
        return written


def test_cli_ask_prints_the_answer_as_it_streams_in(
    api: Api,
    policy: str,
    held: tuple[HeldAnswerer, threading.Event],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answerer, printed = held
    # Given an answer held after its first sentence until the CLI has printed something
    answerer.hold_from = 1
    out = WatchedStdout(printed)
    monkeypatch.setattr(sys, "stdout", out)
    # When `docket ask` runs
    rc = cli.main(["ask", QUESTION, "--url", api.url, "--tenant", "acme"])
    # Then it printed the first sentence before the rest of the answer was produced
    assert rc == 0
    assert not answerer.timed_out, "the CLI printed nothing until the stream had ended"
    text = out.getvalue()
    # And the output is the answer, then the numbered citations
    answer, _, sources = text.partition("\n\n")
    assert "180 euros" in answer and "[1]" in answer
    assert "[1] policies/expenses.md (p. 1)" in sources and f"doc={policy}" in sources
    # And --no-stream prints the same answer from one JSON request
    out.seek(0)
    out.truncate()
    assert cli.main(["ask", QUESTION, "--url", api.url, "--tenant", "acme", "--no-stream"]) == 0
    assert out.getvalue().partition("\n\n")[0] == answer
