"""Server-Sent Events framing: what ``encode`` writes, ``iter_lines``/``iter_events`` read back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.api import sse
from docket.api.sse import ServerSentEvent


def test_encode_frames_event_name_and_one_line_of_json() -> None:
    # Given an event whose data is JSON
    event = ServerSentEvent(event="delta", data=json.dumps({"text": "Hi."}), id="7")
    # When it is encoded
    text = sse.encode(event)
    # Then it has its fields, one data line, and the blank line that dispatches it
    assert text == 'id: 7\nevent: delta\ndata: {"text": "Hi."}\n\n'


def test_multi_line_data_becomes_several_data_lines_and_round_trips() -> None:
    # Given data with LF, CRLF and CR line breaks and an empty line
    event = ServerSentEvent(event="note", data="one\ntwo\r\nthree\rfour\n\nsix")
    # When encoded
    text = sse.encode(event)
    # Then each line is its own data field
    assert text.count("data: ") == 6
    # And parsing gives the data back with LF breaks
    assert sse.parse(text) == [ServerSentEvent(event="note", data="one\ntwo\nthree\nfour\n\nsix")]


def test_unicode_survives_including_separators_that_splitlines_breaks_on() -> None:
    # Given JSON as pydantic writes it: U+2028, U+0085 and emoji stay unescaped
    data = '{"text": "Zürich \u2028 naïve \u0085 \u65e5\u672c \U0001f600"}'
    # When it goes through encode, UTF-8 bytes and the parser
    events = sse.parse(sse.encode(ServerSentEvent(event="delta", data=data)).encode())
    # Then it is one event with the same data
    assert [e.json() for e in events] == [json.loads(data)]


def test_events_split_across_reads_at_every_byte() -> None:
    # Given two events as bytes, with CRLF line ends and multi-byte characters
    body = "event: a\r\ndata: caf\u00e9 \u2603\r\n\r\nevent: b\r\ndata: 2\r\n\r\n".encode()
    expected = [ServerSentEvent("a", "caf\u00e9 \u2603"), ServerSentEvent("b", "2")]
    for cut in range(1, len(body)):
        # When the body arrives in two reads, split at any byte (inside a character or a CRLF)
        events = list(sse.iter_events(sse.iter_lines([body[:cut], body[cut:]])))
        # Then the same events come out
        assert events == expected, cut


def test_parser_yields_each_event_as_soon_as_its_blank_line_arrives() -> None:
    # Given a stream read one chunk at a time
    reads: list[bytes] = []

    def chunks():  # type: ignore[no-untyped-def]
        for chunk in (b"event: first\ndata: 1\n", b"\n", b"event: second\ndata: 2\n\n"):
            reads.append(chunk)
            yield chunk

    events = sse.iter_events(sse.iter_lines(chunks()))
    # When the first event is taken
    first = next(events)
    # Then only what it needed was read
    assert first == ServerSentEvent("first", "1") and len(reads) == 2
    assert list(events) == [ServerSentEvent("second", "2")]


def test_parser_follows_the_standard_for_comments_defaults_and_partial_events() -> None:
    body = (
        "\ufeff: a comment\n"
        "data:no space\n\n"  # no event name: "message"; no space after the colon
        "event: empty\n\n"  # no data: not dispatched
        "id: 42\nretry: 1000\nunknown: x\ndata\n\n"  # a field with no colon has an empty value
        "event: cut\ndata: the stream ends before the blank line"
    )
    assert sse.parse(body) == [
        ServerSentEvent("message", "no space"),
        ServerSentEvent("message", "", id="42"),
    ]


@pytest.mark.parametrize("field", ["event", "id"])
def test_encode_refuses_line_breaks_in_names_and_ids(field: str) -> None:
    with pytest.raises(ValueError):
        sse.encode(ServerSentEvent(**{field: "a\nb"}))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "accept,expected",
    [
        ("text/event-stream", True),
        ("application/json, text/event-stream;q=0.5", True),
        ("Text/Event-Stream; charset=utf-8", True),
        ("text/event-stream;q=0", False),
        ("*/*", False),
        ("application/json", False),
        (None, False),
    ],
)
def test_accepts(accept: str | None, expected: bool) -> None:
    assert sse.accepts(accept) is expected


@given(
    names=st.lists(st.sampled_from(["retrieval", "delta", "done", "error"]), max_size=5),
    datas=st.lists(st.text(), min_size=5, max_size=5),
    cut=st.integers(min_value=0),
)
def test_any_events_round_trip_whatever_the_split(
    names: list[str], datas: list[str], cut: int
) -> None:
    # Given events with any text as data (line breaks normalised to LF, as the standard reads them)
    sent = [ServerSentEvent(name, data) for name, data in zip(names, datas, strict=False)]
    body = "".join(sse.encode(event) for event in sent).encode()
    cut %= len(body) + 1
    # When the body is parsed from two reads
    received = list(sse.iter_events(sse.iter_lines([body[:cut], body[cut:]])))
    # Then every event comes back
    assert received == [
        ServerSentEvent(e.event, e.data.replace("\r\n", "\n").replace("\r", "\n")) for e in sent
    ]
