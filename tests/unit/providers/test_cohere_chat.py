"""The Cohere chat adapter through the real cohere SDK (ClientV2) over an httpx mock transport."""

from __future__ import annotations

import json

import httpx
import pytest

from docket.errors import ProviderRejected, ProviderThrottled, ProviderUnavailable
from docket.providers.cohere_chat import CohereChat
from docket.providers.llm import ChatDelta, ChatModel, ChatResponse, collect_chat

from .conftest import (
    CONVERSATION,
    SEARCH,
    SYSTEM,
    MockServer,
    Reply,
    chat_request,
    recorded_json,
    recorded_text,
)


def server(*replies: Reply) -> MockServer:
    return MockServer(httpx, *replies)


def chat_for(srv: MockServer) -> CohereChat:
    return CohereChat(
        "command-a-03-2025", api_key="test-key", timeout_s=5, http_client=srv.client()
    )


def test_complete_posts_v2_chat_with_system_tools_and_stops():
    # Given Cohere answers with its recorded reply that plans and calls two tools
    srv = server(Reply(json=recorded_json("cohere_chat_tool_calls.json")))
    chat = chat_for(srv)
    # When a request with tools and a stop sequence is sent
    out = chat.complete(chat_request(tools=[SEARCH], stop=["\n\nSources:"], temperature=0.3))
    # Then one POST /v2/chat went out with the bearer key
    [sent] = srv.requests
    assert sent.method == "POST" and sent.url.path == "/v2/chat"
    assert sent.headers["authorization"] == "Bearer test-key"
    assert srv.body() == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "How much for meals?"},
        ],
        "max_tokens": 512,
        "temperature": 0.3,
        "stop_sequences": ["\n\nSources:"],
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
        "stream": False,
    }
    # And the plan is the text, the calls carry their JSON arguments
    assert out.text == "I will search both contracts for their termination clauses."
    assert out.stop_reason == "tool_use"
    assert [c.id for c in out.tool_calls] == [
        "search_documents_jx3wnm6g0e6q",
        "search_documents_k2m7yq8v3p1d",
    ]
    assert json.loads(out.tool_calls[0].arguments) == {
        "query": "termination clause Acme",
        "top_k": 5,
    }
    # And usage counts the tokens the model saw (billed_units leave out Cohere's template)
    assert out.usage == {"input_tokens": 1254, "output_tokens": 74, "cached_input_tokens": 0}
    assert out.model == "command-a-03-2025"
    assert chat.name == "cohere:command-a-03-2025" and isinstance(chat, ChatModel)


def test_a_text_reply_and_its_finish_reasons():
    srv = server(Reply(json=recorded_json("cohere_chat_text.json")))
    out = chat_for(srv).complete(chat_request(system=""))
    assert srv.body()["messages"] == [{"role": "user", "content": "How much for meals?"}]
    assert out.text == "Meals abroad are reimbursed up to 60 EUR per day [1]."
    assert out.stop_reason == "end_turn"
    assert out.usage == {"input_tokens": 530, "output_tokens": 18, "cached_input_tokens": 512}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("COMPLETE", "end_turn"), ("STOP_SEQUENCE", "stop_sequence"), ("MAX_TOKENS", "max_tokens")],
)
def test_finish_reasons_are_mapped(reason: str, expected: str):
    answer = recorded_json("cohere_chat_text.json") | {"finish_reason": reason}
    assert chat_for(server(Reply(json=answer))).complete(chat_request()).stop_reason == expected


def test_a_reply_that_ended_in_error_is_unavailable():
    answer = recorded_json("cohere_chat_text.json") | {"finish_reason": "ERROR"}
    with pytest.raises(ProviderUnavailable, match="ERROR"):
        chat_for(server(Reply(json=answer))).complete(chat_request())


def test_a_conversation_with_tool_calls_and_results_round_trips():
    srv = server(Reply(json=recorded_json("cohere_chat_text.json")))
    chat_for(srv).complete(chat_request(system="", messages=CONVERSATION, tools=[SEARCH]))
    assert srv.body()["messages"] == [
        {"role": "user", "content": "Compare the termination clauses."},
        {
            "role": "assistant",
            "tool_plan": "Searching.",
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


def test_stream_yields_the_plan_then_the_response_with_assembled_tool_calls():
    # Given the recorded v2 event stream: a plan in two pieces, two calls in fragments
    srv = server(Reply(sse=recorded_text("cohere_stream_tool_calls.sse")))
    # When the reply is streamed
    events = list(chat_for(srv).stream(chat_request(tools=[SEARCH])))
    # Then the request asked for a stream
    assert srv.body()["stream"] is True
    # And the deltas concatenate to the text of the single, last response
    deltas = [e.text for e in events if isinstance(e, ChatDelta)]
    assert deltas == ["I will search ", "both contracts."]
    [response] = [e for e in events if isinstance(e, ChatResponse)]
    assert events[-1] is response and response.text == "".join(deltas)
    assert [(c.id, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("search_documents_jx3wnm6g0e6q", {"query": "termination Acme"}),
        ("search_documents_k2m7yq8v3p1d", {"query": "termination Globex"}),
    ]
    assert response.stop_reason == "tool_use"
    assert response.usage == {"input_tokens": 1254, "output_tokens": 74, "cached_input_tokens": 0}


def test_stream_of_text_reports_usage_at_the_end():
    srv = server(Reply(sse=recorded_text("cohere_stream_text.sse")))
    events = list(chat_for(srv).stream(chat_request()))
    assert [e.text for e in events[:-1] if isinstance(e, ChatDelta)] == [
        "Meals abroad are ",
        "reimbursed up to 60 EUR per day [1].",
    ]
    response = events[-1]
    assert isinstance(response, ChatResponse)
    assert response.text == "Meals abroad are reimbursed up to 60 EUR per day [1]."
    assert response.stop_reason == "end_turn" and response.tool_calls == []
    assert response.usage == {"input_tokens": 530, "output_tokens": 18, "cached_input_tokens": 512}


def test_a_stream_cut_short_is_unavailable():
    whole = recorded_text("cohere_stream_text.sse")
    cut = whole[: whole.index("event: message-end")]
    with pytest.raises(ProviderUnavailable, match="ended before"):
        collect_chat(chat_for(server(Reply(sse=cut))).stream(chat_request()))


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (429, recorded_json("cohere_error_429.json"), ProviderThrottled, True),
        (500, {"message": "internal server error"}, ProviderUnavailable, True),
        (400, recorded_json("cohere_error_400.json"), ProviderRejected, False),
        (401, {"message": "invalid api token"}, ProviderRejected, False),
    ],
)
def test_http_errors_are_typed_and_not_retried_by_the_sdk(status, body, error, retryable):
    srv = server(Reply(status=status, json=body))
    with pytest.raises(error) as caught:
        chat_for(srv).complete(chat_request())
    assert caught.value.status == status and caught.value.retryable is retryable
    assert body["message"] in caught.value.message
    assert len(srv.requests) == 1


def test_a_body_that_is_not_json_keeps_its_status():
    srv = server(Reply(status=502, text="<html>Bad Gateway</html>"))
    with pytest.raises(ProviderUnavailable, match="HTTP 502") as caught:
        chat_for(srv).complete(chat_request())
    assert caught.value.status == 502


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


def test_usage_falls_back_to_billed_units():
    answer = recorded_json("cohere_chat_text.json")
    answer["usage"] = {"billed_units": {"input_tokens": 30, "output_tokens": 16}}
    out = chat_for(server(Reply(json=answer))).complete(chat_request())
    assert out.usage == {"input_tokens": 30, "output_tokens": 16, "cached_input_tokens": 0}


def test_a_stream_refused_with_429_is_throttled():
    srv = server(Reply(status=429, json=recorded_json("cohere_error_429.json")))
    with pytest.raises(ProviderThrottled):
        collect_chat(chat_for(srv).stream(chat_request()))
