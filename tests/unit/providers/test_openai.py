"""The OpenAI adapter through the real openai SDK over a mock HTTP transport."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docket.errors import ProviderRejected, ProviderThrottled, ProviderUnavailable
from docket.providers.llm import ChatDelta, ChatModel, ChatResponse, collect_chat
from docket.providers.openai import OpenAIChat

from .conftest import (
    CONVERSATION,
    SEARCH,
    SYSTEM,
    MockServer,
    Reply,
    chat_request,
    http_module_for,
    recorded_json,
    recorded_text,
)

HTTP = http_module_for("openai")


def server(*replies: Reply) -> MockServer:
    return MockServer(HTTP, *replies)


def chat_for(srv: MockServer, **options: Any) -> OpenAIChat:
    return OpenAIChat(
        "gpt-5.5", api_key="test-key", timeout_s=5, http_client=srv.client(), **options
    )


def test_complete_posts_chat_completions_with_system_tools_and_stops():
    # Given OpenAI answers with its recorded reply that calls two tools
    srv = server(Reply(json=recorded_json("openai_chat_tool_calls.json")))
    chat = chat_for(srv)
    # When a request with tools and a stop sequence is sent
    out = chat.complete(chat_request(tools=[SEARCH], stop=["\n\nSources:"], cache_system=True))
    # Then one POST /v1/chat/completions went out with the bearer key and no SDK retries
    [sent] = srv.requests
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert sent.headers["x-stainless-retry-count"] == "0"
    # And the body: system first, tools as functions, the output limit OpenAI's way
    assert srv.body() == {
        "model": "gpt-5.5",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "How much for meals?"},
        ],
        "max_completion_tokens": 512,
        "stop": ["\n\nSources:"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "search_documents",
                    "description": SEARCH.description,
                    "parameters": SEARCH.input_schema,
                },
            }
        ],
    }
    # And both tool calls come back with their JSON arguments as produced
    assert out.text == "" and out.stop_reason == "tool_use"
    assert [c.id for c in out.tool_calls] == ["call_62136354", "call_62136355"]
    assert out.tool_calls[0].arguments == '{"query":"termination clause Acme","top_k":5}'
    assert json.loads(out.tool_calls[1].arguments)["query"] == "termination clause Globex"
    # And usage includes the cached part of the prompt
    assert out.usage == {"input_tokens": 2212, "output_tokens": 58, "cached_input_tokens": 1792}
    assert out.model == "gpt-5.5-2026-04-23"
    assert chat.name == "openai:gpt-5.5" and isinstance(chat, ChatModel)


def test_a_compatible_server_gets_the_classic_fields_at_its_base_url():
    # Given a vLLM server behind base_url
    srv = server(Reply(json=recorded_json("openai_chat_text.json")))
    chat = chat_for(srv, base_url="http://vllm.internal:8000/v1")
    # When a plain request is sent
    out = chat.complete(chat_request(temperature=0.2))
    # Then it went to that server, with max_tokens and temperature
    assert str(srv.requests[0].url) == "http://vllm.internal:8000/v1/chat/completions"
    body = srv.body()
    assert body["max_tokens"] == 512 and "max_completion_tokens" not in body
    assert body["temperature"] == 0.2
    assert "tools" not in body and "stop" not in body
    # And "length" means the output limit was reached; usage without details has no cache
    assert out.text.startswith("Meals abroad") and out.stop_reason == "max_tokens"
    assert out.usage == {"input_tokens": 19, "output_tokens": 10, "cached_input_tokens": 0}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use")],
)
def test_finish_reasons_are_mapped(reason: str, expected: str):
    answer = recorded_json("openai_chat_text.json")
    answer["choices"][0]["finish_reason"] = reason
    assert chat_for(server(Reply(json=answer))).complete(chat_request()).stop_reason == expected


def test_a_conversation_with_tool_calls_and_results_round_trips():
    srv = server(Reply(json=recorded_json("openai_chat_text.json")))
    chat_for(srv).complete(chat_request(system="", messages=CONVERSATION, tools=[SEARCH]))
    assert srv.body()["messages"] == [
        {"role": "user", "content": "Compare the termination clauses."},
        {
            "role": "assistant",
            "content": "Searching.",
            "tool_calls": [
                {
                    "id": "call_acme",
                    "type": "function",
                    "function": {"name": "search_documents", "arguments": '{"query": "Acme"}'},
                },
                {
                    "id": "call_globex",
                    "type": "function",
                    "function": {"name": "search_documents", "arguments": '{"query": "Globex"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_acme", "content": "Acme: 30 days notice."},
        {
            "role": "tool",
            "tool_call_id": "call_globex",
            "content": "Error: tool_unavailable: index down",
        },
    ]


def test_an_assistant_turn_with_only_tool_calls_has_null_content():
    srv = server(Reply(json=recorded_json("openai_chat_text.json")))
    silent = CONVERSATION[1].model_copy(update={"content": ""})
    chat_for(srv).complete(chat_request(messages=[CONVERSATION[0], silent, *CONVERSATION[2:]]))
    assert srv.body()["messages"][2]["content"] is None


def test_stream_assembles_text_and_tool_calls_by_index_and_reports_usage_last():
    # Given the recorded chunk stream: text, then two tool calls in fragments, then usage
    srv = server(Reply(sse=recorded_text("openai_stream_tool_calls.sse")))
    # When the reply is streamed
    events = list(chat_for(srv).stream(chat_request(tools=[SEARCH])))
    # Then the request asked for a stream with usage
    body = srv.body()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    # And the deltas concatenate to the text of the single, last response
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    assert deltas == ["Let me search ", "both contracts."]
    [response] = [e for e in events if isinstance(e, ChatResponse)]
    assert events[-1] is response and response.text == "Let me search both contracts."
    # And each tool call was put together from its fragments
    assert [(c.id, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("call_DdmO9pD3xa9XTPNJ32zg2hcA", {"query": "termination Acme"}),
        ("call_ABC9pD3xa9XTPNJ32zg2hcB", {"query": "termination Globex"}),
    ]
    assert all(c.name == "search_documents" for c in response.tool_calls)
    assert response.stop_reason == "tool_use"
    assert response.usage == {
        "input_tokens": 2212,
        "output_tokens": 61,
        "cached_input_tokens": 1792,
    }


def test_a_stream_cut_short_is_unavailable():
    whole = recorded_text("openai_stream_tool_calls.sse")
    cut = whole[: whole.index('"finish_reason": "tool_calls"')]
    cut = cut[: cut.rindex("data: ")]
    with pytest.raises(ProviderUnavailable, match="ended before"):
        collect_chat(chat_for(server(Reply(sse=cut))).stream(chat_request()))


def test_an_error_inside_the_stream_is_unavailable():
    sse = 'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    with pytest.raises(ProviderUnavailable, match="The server had an error"):
        collect_chat(chat_for(server(Reply(sse=sse))).stream(chat_request()))


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (429, recorded_json("openai_error_429.json"), ProviderThrottled, True),
        (500, {"error": {"message": "The server had an error"}}, ProviderUnavailable, True),
        (503, {"error": {"message": "Service unavailable"}}, ProviderUnavailable, True),
        (400, recorded_json("openai_error_400.json"), ProviderRejected, False),
        (404, {"error": {"message": "The model does not exist"}}, ProviderRejected, False),
    ],
)
def test_http_errors_are_typed_and_not_retried_by_the_sdk(status, body, error, retryable):
    srv = server(Reply(status=status, json=body))
    with pytest.raises(error) as caught:
        chat_for(srv).complete(chat_request())
    assert caught.value.status == status and caught.value.retryable is retryable
    assert body["error"]["message"] in caught.value.message
    assert len(srv.requests) == 1


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


def test_a_stream_refused_with_429_is_throttled():
    srv = server(Reply(status=429, json=recorded_json("openai_error_429.json")))
    with pytest.raises(ProviderThrottled):
        collect_chat(chat_for(srv).stream(chat_request()))
