"""POST /query as Server-Sent Events: the real QueryService and extractive answerer over fakes."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from docket import errors
from docket.answer.extractive import ExtractiveAnswerer
from docket.answer.port import AnswerDelta, AnswerEvent
from docket.api import app as api_module
from docket.api import sse, streaming
from docket.config import Settings
from docket.models import NOT_FOUND_TEXT, ChunkRecord, SearchHit, chunk_id_for, document_id_for
from docket.query import QueryService
from docket.search.retrieval import HybridRetriever
from tests.utils import load_event

from ..fakes import FakeEmbedder, FakeIndex
from .test_api import Context

QUESTION = "What was the Q3 revenue growth and where did the growth come from?"
REPORT = [
    "Revenue grew 12 percent in Q3 compared with the second quarter.",
    "The growth came from subscriptions in Europe. Hardware sales were flat.",
    "The board meets every second Tuesday in the Lisbon office.",
]


def chunk(source: str, text: str, ordinal: int) -> ChunkRecord:
    document_id = document_id_for("acme", source)
    return ChunkRecord(
        tenant="acme",
        document_id=document_id,
        chunk_id=chunk_id_for(document_id, text),
        ordinal=ordinal,
        text=text,
        page_start=ordinal + 1,
        page_end=ordinal + 1,
        source=source,
    )


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> QueryService:
    embedder = FakeEmbedder()
    index = FakeIndex(embedder.model)
    chunks = [chunk("reports/q3.txt", text, i) for i, text in enumerate(REPORT)]
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    queries = QueryService(Settings(), HybridRetriever(index, embedder), ExtractiveAnswerer())
    monkeypatch.setattr(api_module, "queries", lambda: queries)
    return queries


def query_event(question: str, accept: str | None = sse.MEDIA_TYPE, **body: Any) -> dict[str, Any]:
    event = load_event("apigw_query")
    event["body"] = json.dumps({"question": question, "mode": "bm25", **body})
    if accept:
        event["headers"]["accept"] = accept
    return event


def call(event: dict[str, Any]) -> dict[str, Any]:
    return api_module.app.resolve(event, Context())  # type: ignore[no-any-return]


def stream(event: dict[str, Any]) -> list[sse.ServerSentEvent]:
    result = call(event)
    assert result["statusCode"] == 200, result.get("body")
    assert result["headers"]["Content-Type"] == "text/event-stream"
    assert result["headers"]["Cache-Control"] == "no-cache"
    return sse.parse(result["body"])


def test_answer_streams_retrieval_then_deltas_then_done(service: QueryService) -> None:
    # Given indexed report chunks, and a question asked with Accept: text/event-stream
    events = stream(query_event(QUESTION))
    # Then the events are one retrieval, deltas, and one done, in that order
    names = [e.event for e in events]
    assert names[0] == "retrieval" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"} and len(names) >= 3
    retrieval, deltas, done = events[0].json(), [e.json() for e in events[1:-1]], events[-1].json()
    # And the retrieval event lists the chunks (without text) with scores and timings
    assert [c["chunk_id"] for c in retrieval["chunks"]] == [c["chunk_id"] for c in done["chunks"]]
    first = retrieval["chunks"][0]
    assert first["source"] == "reports/q3.txt" and first["page_start"] == 1
    assert {"chunk_id", "document_id", "score", "page_end"} <= set(first) and "text" not in first
    assert {"bm25", "knn", "embed", "fuse"} <= set(retrieval["timings_ms"])
    # And the deltas, concatenated, are the final answer; each names the citation it quotes
    assert len(deltas) >= 2 and "".join(d["text"] for d in deltas) == done["answer"]
    assert [d["citations"] for d in deltas[:2]] == [[1], [2]]
    assert all(d["unit"] == "sentence" for d in deltas)
    # And done is the complete QueryResponse with structured citations
    assert done["found"] is True and "12 percent" in done["answer"]
    assert done["citations"][0]["number"] == 1 and done["citations"][0]["quote"]
    assert {"answer", "total"} <= set(done["timings_ms"])


def test_done_event_is_the_json_response(service: QueryService) -> None:
    # Given the same question asked twice, with and without the event-stream Accept header
    done = stream(query_event(QUESTION))[-1].json()
    plain = call(query_event(QUESTION, accept="application/json"))
    # Then the JSON response is unchanged, and equal to the done event but for the timings
    assert plain["statusCode"] == 200
    assert plain["headers"]["Content-Type"] == "application/json"
    body = json.loads(plain["body"])
    assert {**body, "timings_ms": None} == {**done, "timings_ms": None}


def test_not_found_streams_the_not_found_text(service: QueryService) -> None:
    events = stream(query_event("Who won the football match yesterday?"))
    deltas = [e.json() for e in events if e.event == "delta"]
    done = events[-1].json()
    assert [d["text"] for d in deltas] == [NOT_FOUND_TEXT]
    assert done["found"] is False and done["answer"] == NOT_FOUND_TEXT and not done["citations"]


@pytest.mark.parametrize(
    "event,status,code",
    [
        (query_event("x", top_k=0), 422, None),
        (query_event("", top_k=5), 422, None),
        ({**query_event("x"), "body": "{not json"}, 422, None),
    ],
)
def test_bad_requests_keep_their_json_errors(
    service: QueryService, event: dict[str, Any], status: int, code: str | None
) -> None:
    result = call(event)
    assert result["statusCode"] == status
    assert result["headers"]["Content-Type"] == "application/json"
    if code:
        assert json.loads(result["body"])["error"]["code"] == code


def test_missing_claims_is_401_json(service: QueryService) -> None:
    event = query_event(QUESTION)
    del event["requestContext"]["authorizer"]
    result = call(event)
    assert result["statusCode"] == 401
    assert json.loads(result["body"])["error"]["code"] == "unauthorized"


def test_model_mismatch_is_409_json_before_the_stream_begins(service: QueryService) -> None:
    # Given a query embedder of another model than the index's
    service.retriever.embedder = FakeEmbedder(dimension=8)
    service.retriever.embedder.model = service.retriever.embedder.model.model_copy(
        update={"name": "other/model"}
    )
    # When a streamed answer is asked for (hybrid: the embedder is needed)
    result = call(query_event(QUESTION, mode="hybrid"))
    # Then it is refused with the ordinary JSON error
    assert result["statusCode"] == 409
    assert json.loads(result["body"])["error"]["code"] == "embedding_model_mismatch"


class BreakingAnswerer:
    """Streams one sentence, then fails."""

    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    def answer(self, question: str, hits: Sequence[SearchHit]) -> Any:
        raise AssertionError("not used")

    def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
        yield AnswerDelta(text="Revenue grew [1]", citations=[1])
        raise self.failure


@pytest.mark.parametrize(
    "failure,code",
    [
        (errors.EmbeddingUnavailable("answer model timed out"), "embedding_unavailable"),
        (RuntimeError("bug"), "internal_error"),
    ],
)
def test_failure_after_the_stream_began_is_an_error_event(
    service: QueryService, failure: Exception, code: str
) -> None:
    # Given an answerer that fails after its first sentence
    service.answerer = BreakingAnswerer(failure)
    # When the answer is streamed
    events = stream(query_event(QUESTION))
    # Then the stream (status 200) ends with an error event instead of done
    assert [e.event for e in events] == ["retrieval", "delta", "error"]
    error = events[-1].json()
    assert error["code"] == code and error["message"]
    if code == "internal_error":
        assert "bug" not in error["message"]


class RecordingLiveResponse:
    """A live response, as the local gateway offers one; ``limit`` writes before the client goes."""

    def __init__(self, limit: int | None = None) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.limit = limit

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        self.status, self.headers = status, dict(headers)

    def write(self, chunk: bytes) -> bool:
        assert self.status is not None, "write before start"
        self.chunks.append(chunk)
        return self.limit is None or len(self.chunks) < self.limit


def test_live_response_gets_one_write_per_event(service: QueryService) -> None:
    # Given an invoker that offers a live response
    live = RecordingLiveResponse()
    with streaming.offering(live):
        result = call(query_event(QUESTION))
    # Then each event was written on its own, and the returned body is empty
    assert live.status == 200 and live.headers["Content-Type"] == "text/event-stream"
    assert live.headers["Cache-Control"] == "no-cache"
    written = [sse.parse(chunk) for chunk in live.chunks]
    assert all(len(events) == 1 for events in written)
    assert written[0][0].event == "retrieval" and written[-1][0].event == "done"
    assert result["statusCode"] == 200 and not result["body"]


def test_live_response_stops_when_the_client_goes(service: QueryService) -> None:
    # Given a client that goes away after the first event
    answered: list[str] = []

    class Answerer(ExtractiveAnswerer):
        def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
            for event in super().stream(question, hits):
                answered.append(event.type)
                yield event

    service.answerer = Answerer()
    live = RecordingLiveResponse(limit=1)
    with streaming.offering(live):
        call(query_event(QUESTION))
    # Then nothing more is written, and the answerer is not asked for more
    assert len(live.chunks) == 1 and answered == []


def test_errors_before_the_stream_do_not_start_the_live_response(service: QueryService) -> None:
    live = RecordingLiveResponse()
    with streaming.offering(live):
        result = call(query_event("x", top_k=0))
    assert result["statusCode"] == 422 and live.status is None
