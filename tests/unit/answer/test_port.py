"""The answer port's stream events: their wire shape and how a stream folds into an Answer."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter

from docket.answer import AnswerDelta, AnswerDone, AnswerEvent, collect
from docket.models import Answer, Citation

EVENTS: TypeAdapter[AnswerEvent] = TypeAdapter(AnswerEvent)


def _answer() -> Answer:
    citation = Citation(
        number=1,
        document_id="doc_" + "0" * 24,
        chunk_id="chk_1",
        source="a.md",
        page_start=1,
        page_end=2,
        quote="Refunds take 5 days.",
    )
    return Answer(found=True, text="Refunds take 5 days. [1]", citations=[citation], confidence=0.8)


@pytest.mark.parametrize(
    "event",
    [
        AnswerDelta(text="Refunds take 5 days. [1]", citations=[1]),
        AnswerDelta(text=" tok", unit="token"),
        AnswerDone(answer=_answer()),
    ],
)
def test_events_round_trip_through_json_by_their_type(event: AnswerEvent) -> None:
    # Given an event as a server would send it (e.g. one SSE data line)
    wire = event.model_dump_json()
    # When a client parses it without knowing its kind
    parsed = EVENTS.validate_json(wire)
    # Then the "type" field picks the right model and nothing is lost
    assert parsed == event


def test_collect_returns_the_done_events_answer() -> None:
    # Given a token stream from some answerer
    answer = _answer()
    events: list[AnswerEvent] = [
        AnswerDelta(text="Refunds", unit="token"),
        AnswerDone(answer=answer),
    ]
    # When collected / Then the final answer comes back
    assert collect(events) == answer


def test_collect_rejects_a_stream_without_done() -> None:
    # Given a stream cut short
    # When collected / Then it fails loudly rather than returning a partial answer
    with pytest.raises(ValueError, match="without a done event"):
        collect([AnswerDelta(text="Refunds")])
