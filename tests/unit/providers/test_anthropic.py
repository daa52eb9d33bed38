"""The Anthropic adapter through the real anthropic SDK over a mock HTTP transport."""

from __future__ import annotations

import json

import pytest

from docket.errors import ProviderRejected, ProviderThrottled, ProviderUnavailable
from docket.providers.anthropic import AnthropicChat
from docket.providers.llm import ChatDelta, ChatModel, ChatResponse, collect_chat

from .conftest import (
    CONVERSATION,
    SEARCH,
    SEND,
    SYSTEM,
    MockServer,
    Reply,
    chat_request,
    http_module_for,
    recorded_json,
    recorded_text,
)

HTTP = http_module_for("anthropic")


def server(*replies: Reply) -> MockServer:
    return MockServer(HTTP, *replies)


def chat_for(srv: MockServer, model: str = "claude-sonnet-5-5") -> AnthropicChat:
    return AnthropicChat(model, api_key="test-key", timeout_s=5, http_client=srv.client())


def test_complete_posts_the_messages_request_with_cached_system_tools_and_stops():
    # Given Anthropic answers with its recorded reply that calls two tools
    srv = server(Reply(json=recorded_json("anthropic_message_tool_use.json")))
    chat = chat_for(srv)
    # When a request with a cacheable system prompt, tools and a stop sequence is sent
    out = chat.complete(
        chat_request(cache_system=True, tools=[SEARCH, SEND], stop=["\n\nSources:"])
    )
    # Then one POST /v1/messages went out, authenticated and versioned
    [sent] = srv.requests
    assert sent.method == "POST" and sent.url.path == "/v1/messages"
    assert sent.headers.get("x-api-key") == "test-key" or (
        sent.headers.get("authorization") == "Bearer test-key"
    )
    assert sent.headers["anthropic-version"]
    assert sent.headers["x-stainless-retry-count"] == "0"
    # And the body carries the cached system block, the tools, the stops and the limits
    assert srv.body() == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 512,
        "system": [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "How much for meals?"}]}
        ],
        "stop_sequences": ["\n\nSources:"],
        "tools": [
            {
                "name": "search_documents",
                "description": SEARCH.description,
                "input_schema": SEARCH.input_schema,
            },
            {
                "name": "send_email",
                "description": SEND.description,
                "input_schema": SEND.input_schema,
            },
        ],
    }
    # And both tool calls are parsed, their arguments as JSON text
    assert out.text == "I'll look up both contracts."
    assert out.stop_reason == "tool_use"
    assert [(c.id, c.name) for c in out.tool_calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "search_documents"),
        ("toolu_01B18r81rx81mr826724mr8", "search_documents"),
    ]
    assert json.loads(out.tool_calls[1].arguments) == {
        "query": "termination clause Globex",
        "top_k": 5,
    }
    # And the input tokens count the cache reads, which are also reported on their own
    assert out.usage == {"input_tokens": 2212, "output_tokens": 96, "cached_input_tokens": 1800}
    assert out.model == "claude-sonnet-5-5"
    assert chat.name == "anthropic:claude-sonnet-5-5"
    assert isinstance(chat, ChatModel)


def test_a_plain_request_has_no_cache_control_tools_or_stops_and_counts_cache_writes():
    srv = server(Reply(json=recorded_json("anthropic_message_text.json")))
    out = chat_for(srv).complete(chat_request())
    body = srv.body()
    assert body["system"] == [{"type": "text", "text": SYSTEM}]
    assert "tools" not in body and "stop_sequences" not in body
    assert "temperature" not in body  # API 2026-10-21 refuses sampling parameters
    assert out.text.startswith("Meals abroad") and out.stop_reason == "end_turn"
    assert out.usage == {"input_tokens": 2073, "output_tokens": 17, "cached_input_tokens": 0}


def test_an_empty_system_prompt_is_left_out():
    srv = server(Reply(json=recorded_json("anthropic_message_text.json")))
    chat_for(srv).complete(chat_request(system=""))
    assert "system" not in srv.body()


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("refusal", "end_turn"),
    ],
)
def test_stop_reasons_are_mapped(reason: str, expected: str):
    answer = recorded_json("anthropic_message_text.json") | {"stop_reason": reason}
    out = chat_for(server(Reply(json=answer))).complete(chat_request())
    assert out.stop_reason == expected


def test_a_conversation_with_tool_calls_and_results_round_trips():
    # Given an assistant turn with two calls, then two results (the second failed), then a note
    srv = server(Reply(json=recorded_json("anthropic_message_text.json")))
    messages = [*CONVERSATION, CONVERSATION[0].model_copy(update={"content": "Be brief."})]
    chat_for(srv).complete(chat_request(messages=messages, tools=[SEARCH]))
    # Then the calls become tool_use blocks and the results one user turn of tool_result blocks
    assert srv.body()["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Compare the termination clauses."}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Searching."},
                {
                    "type": "tool_use",
                    "id": "call_acme",
                    "name": "search_documents",
                    "input": {"query": "Acme"},
                },
                {
                    "type": "tool_use",
                    "id": "call_globex",
                    "name": "search_documents",
                    "input": {"query": "Globex"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_acme",
                    "content": "Acme: 30 days notice.",
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_globex",
                    "content": "tool_unavailable: index down",
                    "is_error": True,
                },
                {"type": "text", "text": "Be brief."},
            ],
        },
    ]


def test_a_call_with_broken_arguments_is_sent_back_with_an_empty_input():
    srv = server(Reply(json=recorded_json("anthropic_message_text.json")))
    broken = CONVERSATION[1].model_copy(
        update={
            "content": "",
            "tool_calls": [
                CONVERSATION[1].tool_calls[0].model_copy(update={"arguments": '{"query": '})
            ],
        }
    )
    chat_for(srv).complete(chat_request(messages=[CONVERSATION[0], broken, CONVERSATION[2]]))
    assistant = srv.body()["messages"][1]
    assert assistant["content"] == [
        {"type": "tool_use", "id": "call_acme", "name": "search_documents", "input": {}}
    ]


def test_stream_yields_text_deltas_then_the_response_with_the_assembled_tool_call():
    # Given the recorded event stream: two text deltas, then a tool call in JSON fragments
    srv = server(Reply(sse=recorded_text("anthropic_stream_tool_use.sse")))
    # When the reply is streamed
    events = list(chat_for(srv).stream(chat_request(tools=[SEARCH])))
    # Then the request asked for a stream
    assert srv.body()["stream"] is True
    # And the deltas concatenate to the response's text, which comes last, exactly once
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    assert deltas == ["Okay, let", "'s check the Acme contract."]
    [response] = [e for e in events if isinstance(e, ChatResponse)]
    assert events[-1] is response
    assert response.text == "".join(deltas)
    # And the tool call was put together from its fragments
    [call] = response.tool_calls
    assert call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6" and call.name == "search_documents"
    assert json.loads(call.arguments) == {"query": "termination Acme", "top_k": 5}
    # And the usage of the whole stream is on the response
    assert response.stop_reason == "tool_use"
    assert response.usage == {
        "input_tokens": 2272,
        "output_tokens": 89,
        "cached_input_tokens": 1800,
    }
    assert response.model == "claude-sonnet-5-5"


def test_a_stream_cut_short_is_unavailable():
    whole = recorded_text("anthropic_stream_tool_use.sse")
    cut = whole[: whole.index("event: message_delta")]
    with pytest.raises(ProviderUnavailable, match="ended before"):
        collect_chat(chat_for(server(Reply(sse=cut))).stream(chat_request()))


def test_an_error_event_inside_the_stream_is_typed_by_its_error_type():
    sse = (
        "event: message_start\n"
        'data: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
        '"model":"claude","content":[],"stop_reason":null,"stop_sequence":null,'
        '"usage":{"input_tokens":1,"output_tokens":1}}}\n\n'
        "event: error\n"
        'data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    with pytest.raises(ProviderUnavailable, match="Overloaded") as caught:
        collect_chat(chat_for(server(Reply(sse=sse))).stream(chat_request()))
    assert caught.value.status == 529 and caught.value.retryable


@pytest.mark.parametrize(
    ("status", "recording", "error", "retryable"),
    [
        (429, "anthropic_error_429.json", ProviderThrottled, True),
        (500, "anthropic_error_500.json", ProviderUnavailable, True),
        (529, "anthropic_error_500.json", ProviderUnavailable, True),
        (400, "anthropic_error_400.json", ProviderRejected, False),
        (401, "anthropic_error_400.json", ProviderRejected, False),
    ],
)
def test_http_errors_are_typed_and_not_retried_by_the_sdk(status, recording, error, retryable):
    srv = server(Reply(status=status, json=recorded_json(recording)))
    with pytest.raises(error) as caught:
        chat_for(srv).complete(chat_request())
    assert caught.value.status == status
    assert caught.value.retryable is retryable
    assert len(srv.requests) == 1  # the SDK's own retries are off
    message = recorded_json(recording)["error"]["message"]
    assert message in caught.value.message


@pytest.mark.parametrize("method", ["complete", "stream"])
@pytest.mark.parametrize("failure", ["timeout", "connect"])
def test_timeouts_and_connection_errors_are_unavailable(method: str, failure: str):
    srv = server(Reply(fail=failure))
    chat = chat_for(srv)
    with pytest.raises(ProviderUnavailable) as caught:
        if method == "complete":
            chat.complete(chat_request())
        else:
            collect_chat(chat.stream(chat_request()))
    assert caught.value.retryable and caught.value.status is None
    assert len(srv.requests) == 1


def test_the_stream_reports_http_errors_before_any_event():
    srv = server(Reply(status=429, json=recorded_json("anthropic_error_429.json")))
    with pytest.raises(ProviderThrottled):
        next(iter(chat_for(srv).stream(chat_request())))
