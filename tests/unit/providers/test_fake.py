"""The scripted chat model: deterministic replies, token-like streaming, usage, recorded requests."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from docket.errors import ProviderError
from docket.providers import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    ScriptedChatModel,
    collect_chat,
)
from docket.providers.fake import token_pieces


def _request(question: str = "How long do refunds take?", **fields: object) -> ChatRequest:
    return ChatRequest(
        system=str(fields.pop("system", "Answer from the sources.")),
        messages=[ChatMessage(role="user", content=question)],
        max_tokens=int(fields.pop("max_tokens", 256)),  # type: ignore[call-overload]
        **fields,  # type: ignore[arg-type]
    )


def test_scripted_model_satisfies_the_chat_port() -> None:
    assert isinstance(ScriptedChatModel(["hi"]), ChatModel)


@given(st.text(max_size=300))
def test_pieces_concatenate_to_the_text(text: str) -> None:
    # Given any text / When cut into pieces / Then nothing is lost or reordered
    assert "".join(token_pieces(text)) == text


def test_replies_in_order_and_records_requests() -> None:
    # Given a two-reply script
    model = ScriptedChatModel(["first", "second"])
    # When asked twice
    replies = [model.complete(_request(f"q{i}")).text for i in range(2)]
    # Then it replies in order and remembers what it was asked
    assert replies == ["first", "second"]
    assert [r.messages[0].content for r in model.requests] == ["q0", "q1"]
    # And a third request is a test bug, not a provider failure
    with pytest.raises(RuntimeError, match="exhausted"):
        model.complete(_request())


def test_a_callable_script_sees_the_request() -> None:
    model = ScriptedChatModel(lambda request: request.messages[-1].content.upper(), name="upper")
    response = model.complete(_request("shout"))
    assert response.text == "SHOUT" and response.model == "upper" and model.name == "upper"


def test_stream_yields_pieces_then_one_response_with_usage() -> None:
    # Given a reply
    text = "Refunds are issued within 5 business days [1]."
    model = ScriptedChatModel([text])
    # When streamed
    events = list(model.stream(_request()))
    # Then small deltas come first, and the last event is the response with usage
    deltas, final = events[:-1], events[-1]
    assert all(isinstance(event, ChatDelta) for event in deltas)
    assert isinstance(final, ChatResponse)
    assert "".join(delta.text for delta in deltas) == final.text == text
    assert len(deltas) > 5 and all(len(delta.text) <= 8 for delta in deltas)
    assert final.output_tokens == len(deltas)
    assert final.input_tokens > 0 and final.stop_reason == "end_turn"
    assert collect_chat(events) == final


def test_max_tokens_and_stop_sequences_cut_the_reply() -> None:
    model = ScriptedChatModel(["one two three four five", "alpha STOP beta"])
    truncated = model.complete(_request(max_tokens=2))
    stopped = model.complete(_request(stop=["STOP"]))
    assert truncated.text == "one two" and truncated.stop_reason == "max_tokens"
    assert stopped.text == "alpha " and stopped.stop_reason == "stop_sequence"


def test_a_cached_system_prompt_counts_as_cached_input_the_second_time() -> None:
    # Given two requests with the same system prompt marked cacheable
    model = ScriptedChatModel(["a", "b", "c"])
    first = model.complete(_request(system="Long sources " * 50, cache_system=True))
    second = model.complete(_request(system="Long sources " * 50, cache_system=True))
    uncached = model.complete(_request(system="Long sources " * 50))
    # Then the second reads the system prompt from the cache
    assert first.cached_input_tokens == 0
    assert 0 < second.cached_input_tokens < second.input_tokens
    assert uncached.cached_input_tokens == 0


def test_scripted_failures_raise_provider_errors() -> None:
    # Given a script whose first reply is a failure, and a stream that drops mid-way
    failing = ScriptedChatModel([ProviderError("throttled"), "ok"])
    dropping = ScriptedChatModel(["a long enough reply"], fail_stream_after=2)
    # Then the failure is raised, and the next request succeeds
    with pytest.raises(ProviderError, match="throttled"):
        failing.complete(_request())
    assert failing.complete(_request()).text == "ok"
    # And the stream yields two pieces before it raises
    received: list[str] = []
    with pytest.raises(ProviderError):
        for event in dropping.stream(_request()):
            assert isinstance(event, ChatDelta)
            received.append(event.text)
    assert len(received) == 2


def test_requests_are_validated() -> None:
    with pytest.raises(ValidationError):
        ChatRequest(system="s", messages=[], max_tokens=10)
    with pytest.raises(ValidationError):
        _request(max_tokens=0)
    with pytest.raises(ValidationError):
        ChatMessage(role="system", content="no")  # type: ignore[arg-type]
