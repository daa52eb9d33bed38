"""The Bedrock Converse adapter: ``converse`` against botocore's Stubber (which checks each
request against the bedrock-runtime service model), ``converse_stream`` both as a parser of the
documented events and end to end through botocore's event-stream decoder, fed encoded frames
by a ``before-send`` hook instead of the network."""

from __future__ import annotations

import binascii
import json
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from docket.errors import ProviderRejected, ProviderThrottled, ProviderUnavailable
from docket.providers.bedrock import BedrockConverseChat, events_from_stream, request_body
from docket.providers.llm import ChatDelta, ChatModel, ChatResponse, collect_chat

from .conftest import CONVERSATION, SEARCH, SEND, SYSTEM, chat_request, recorded_json

MODEL = "global.anthropic.claude-sonnet-5-5"
NOVA = "amazon.nova-pro-v1:0"


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def test_converse_sends_system_cache_point_tools_and_stops_and_parses_tool_use(client, stubber):
    # Given Bedrock answers with the recorded Converse reply that calls two tools
    expected = {
        "modelId": MODEL,
        "messages": [{"role": "user", "content": [{"text": "How much for meals?"}]}],
        "system": [{"text": SYSTEM}, {"cachePoint": {"type": "default"}}],
        "inferenceConfig": {"maxTokens": 512, "stopSequences": ["\n\nSources:"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "search_documents",
                        "description": SEARCH.description,
                        "inputSchema": {"json": SEARCH.input_schema},
                    }
                },
                {
                    "toolSpec": {
                        "name": "send_email",
                        "description": SEND.description,
                        "inputSchema": {"json": SEND.input_schema},
                    }
                },
            ]
        },
    }
    stubber.add_response("converse", recorded_json("bedrock_converse_tool_use.json"), expected)
    chat = BedrockConverseChat(MODEL, client=client)
    # When a cacheable request with tools and a stop sequence is sent
    out = chat.complete(
        chat_request(cache_system=True, tools=[SEARCH, SEND], stop=["\n\nSources:"])
    )
    # Then the Stubber saw exactly the expected (service-model valid) request, and the two tool
    # calls come back with JSON arguments
    assert out.text == "I'll look up both contracts."
    assert out.stop_reason == "tool_use"
    assert [c.id for c in out.tool_calls] == [
        "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
        "tooluse_Q2mW9x7YT3ePqAhs0f8nLw",
    ]
    assert json.loads(out.tool_calls[1].arguments) == {
        "query": "termination clause Globex",
        "top_k": 5,
    }
    # And the input tokens include the cache reads, reported on their own too
    assert out.usage == {"input_tokens": 2212, "output_tokens": 96, "cached_input_tokens": 1800}
    assert out.model == MODEL
    assert chat.name == f"bedrock:{MODEL}" and isinstance(chat, ChatModel)


def test_a_plain_request_to_a_non_claude_model_carries_temperature_only(client, stubber):
    expected = {
        "modelId": NOVA,
        "messages": [{"role": "user", "content": [{"text": "How much for meals?"}]}],
        "system": [{"text": SYSTEM}],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.2},
    }
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "60 EUR [1]."}]}},
        "stopReason": "max_tokens",
        "usage": {"inputTokens": 20, "outputTokens": 5, "totalTokens": 25},
        "metrics": {"latencyMs": 300},
    }
    stubber.add_response("converse", answer, expected)
    out = BedrockConverseChat(NOVA, client=client).complete(chat_request(temperature=0.2))
    assert out.text == "60 EUR [1]." and out.stop_reason == "max_tokens"
    assert out.usage == {"input_tokens": 20, "output_tokens": 5, "cached_input_tokens": 0}


def test_a_conversation_with_tool_calls_and_results_round_trips(client, stubber):
    # Given a conversation: the assistant called two tools, both answered (the second failed)
    expected = {
        "modelId": MODEL,
        "messages": [
            {"role": "user", "content": [{"text": "Compare the termination clauses."}]},
            {
                "role": "assistant",
                "content": [
                    {"text": "Searching."},
                    {
                        "toolUse": {
                            "toolUseId": "call_acme",
                            "name": "search_documents",
                            "input": {"query": "Acme"},
                        }
                    },
                    {
                        "toolUse": {
                            "toolUseId": "call_globex",
                            "name": "search_documents",
                            "input": {"query": "Globex"},
                        }
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "call_acme",
                            "content": [{"text": "Acme: 30 days notice."}],
                            "status": "success",
                        }
                    },
                    {
                        "toolResult": {
                            "toolUseId": "call_globex",
                            "content": [{"text": "tool_unavailable: index down"}],
                            "status": "error",
                        }
                    },
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 512},
        "toolConfig": request_body(MODEL, chat_request(tools=[SEARCH]))["toolConfig"],
    }
    stubber.add_response("converse", recorded_json("bedrock_converse_tool_use.json"), expected)
    # When it is sent, the Stubber checks the mapped messages
    BedrockConverseChat(MODEL, client=client).complete(
        chat_request(system="", messages=CONVERSATION, tools=[SEARCH])
    )


@pytest.mark.parametrize(
    ("code", "status", "error", "retryable"),
    [
        ("ThrottlingException", 429, ProviderThrottled, True),
        ("InternalServerException", 500, ProviderUnavailable, True),
        ("ServiceUnavailableException", 503, ProviderUnavailable, True),
        ("ModelTimeoutException", 408, ProviderUnavailable, True),
        ("ValidationException", 400, ProviderRejected, False),
        ("AccessDeniedException", 403, ProviderRejected, False),
    ],
)
def test_service_errors_are_typed(client, stubber, code, status, error, retryable):
    stubber.add_client_error(
        "converse", service_error_code=code, service_message="nope", http_status_code=status
    )
    with pytest.raises(error, match=f"{code}: nope") as caught:
        BedrockConverseChat(MODEL, client=client).complete(chat_request())
    assert caught.value.status == status and caught.value.retryable is retryable


def test_a_read_timeout_is_unavailable(client):
    def timeout(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-west-2.amazonaws.com")

    client.meta.events.register("before-send.bedrock-runtime.Converse", timeout)
    with pytest.raises(ProviderUnavailable, match="ReadTimeoutError") as caught:
        BedrockConverseChat(MODEL, client=client).complete(chat_request())
    assert caught.value.status is None and caught.value.retryable


def test_the_default_client_makes_one_attempt_within_the_timeout():
    chat = BedrockConverseChat(MODEL, region="eu-west-1", timeout_s=42)
    config = chat.client.meta.config
    assert chat.client.meta.region_name == "eu-west-1"
    assert config.retries["total_max_attempts"] == 1
    assert config.read_timeout == 42


# --- the stream -----------------------------------------------------------------------------------


def test_stream_events_become_deltas_then_the_response_with_the_assembled_tool_call():
    # Given the documented ConverseStream events: text, then a tool call in JSON fragments
    events = recorded_json("bedrock_converse_stream_tool_use.json")
    # When they are parsed
    out = list(events_from_stream(events, MODEL))
    # Then the deltas concatenate to the text of the single, last response
    deltas = [e.text for e in out if isinstance(e, ChatDelta)]
    assert deltas == ["Okay, let", "'s check the Acme contract."]
    response = out[-1]
    assert isinstance(response, ChatResponse)
    assert sum(isinstance(e, ChatResponse) for e in out) == 1
    assert response.text == "".join(deltas)
    [call] = response.tool_calls
    assert call.id == "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q" and call.name == "search_documents"
    assert json.loads(call.arguments) == {"query": "termination Acme", "top_k": 5}
    # And usage from the metadata event is on the response
    assert response.stop_reason == "tool_use"
    assert response.usage == {
        "input_tokens": 2272,
        "output_tokens": 89,
        "cached_input_tokens": 1800,
    }


def test_a_stream_without_message_stop_is_unavailable():
    events = recorded_json("bedrock_converse_stream_tool_use.json")[:4]
    with pytest.raises(ProviderUnavailable, match="ended before"):
        collect_chat(events_from_stream(events, MODEL))


@pytest.mark.parametrize(
    ("member", "error"),
    [
        ("throttlingException", ProviderThrottled),
        ("modelStreamErrorException", ProviderUnavailable),
        ("validationException", ProviderRejected),
    ],
)
def test_exception_events_in_the_stream_are_typed(member: str, error: type[Exception]):
    events = [{"messageStart": {"role": "assistant"}}, {member: {"message": "stream broke"}}]
    with pytest.raises(error, match="stream broke"):
        collect_chat(events_from_stream(events, MODEL))


def frame(event_type: str, payload: dict[str, Any], *, exception: bool = False) -> bytes:
    """One AWS event-stream message (prelude, string headers, JSON payload, CRCs)."""
    kind = (":exception-type", event_type) if exception else (":event-type", event_type)
    headers = b""
    for name, value in (
        (":message-type", "exception" if exception else "event"),
        kind,
        (":content-type", "application/json"),
    ):
        headers += struct.pack("B", len(name)) + name.encode() + b"\x07"
        headers += struct.pack(">H", len(value)) + value.encode()
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", binascii.crc32(message) & 0xFFFFFFFF)


class RawStream:
    """What botocore's EventStream reads: ``stream()`` chunks, then ``close()``."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        for at in range(0, len(self.data), 37):  # frames split across reads, as on the wire
            yield self.data[at : at + 37]

    def close(self) -> None:
        pass


def serve_stream(client: Any, frames: Sequence[bytes]) -> list[Any]:
    """Answers ConverseStream with ``frames``; returns the list the sent requests go into."""
    sent: list[Any] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        headers = {"content-type": "application/vnd.amazon.eventstream"}
        return AWSResponse(request.url, 200, headers, RawStream(b"".join(frames)))

    client.meta.events.register("before-send.bedrock-runtime.ConverseStream", answer)
    return sent


def test_stream_end_to_end_through_botocore(client):
    # Given Bedrock answers ConverseStream with the recorded events, encoded as on the wire
    frames = [
        frame(*next(iter(e.items())))
        for e in recorded_json("bedrock_converse_stream_tool_use.json")
    ]
    sent = serve_stream(client, frames)
    # When a cacheable request with tools is streamed
    events = list(
        BedrockConverseChat(MODEL, client=client).stream(
            chat_request(cache_system=True, tools=[SEARCH])
        )
    )
    # Then the request went to the model's converse-stream URL with the Converse body
    [request] = sent
    assert request.url.endswith(f"/model/{MODEL}/converse-stream")
    body = json.loads(request.body)
    assert body["system"] == [{"text": SYSTEM}, {"cachePoint": {"type": "default"}}]
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "search_documents"
    assert body["inferenceConfig"] == {"maxTokens": 512}
    # And botocore's decoded events became deltas and one response
    response = events[-1]
    assert isinstance(response, ChatResponse)
    assert response.text == "".join(e.text for e in events if isinstance(e, ChatDelta))
    assert json.loads(response.tool_calls[0].arguments)["query"] == "termination Acme"
    assert response.usage["cached_input_tokens"] == 1800


def test_an_exception_frame_inside_the_stream_is_typed(client):
    frames = [
        frame("messageStart", {"role": "assistant"}),
        frame("contentBlockDelta", {"delta": {"text": "Hel"}, "contentBlockIndex": 0}),
        frame("throttlingException", {"message": "Too many tokens"}, exception=True),
    ]
    serve_stream(client, frames)
    stream = BedrockConverseChat(MODEL, client=client).stream(chat_request())
    assert next(stream) == ChatDelta(text="Hel")
    with pytest.raises(ProviderThrottled, match="Too many tokens"):
        next(stream)


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("guardrail_intervened", ProviderRejected),
        ("content_filtered", ProviderRejected),
        ("malformed_tool_use", ProviderUnavailable),
        ("malformed_model_output", ProviderUnavailable),
    ],
)
def test_a_blocked_or_malformed_reply_is_an_error_not_a_final_answer(
    reason: str, error: type[Exception]
) -> None:
    from docket.providers.bedrock import response_from_converse

    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "partial"}]}},
        "stopReason": reason,
        "usage": {"inputTokens": 5, "outputTokens": 1},
    }
    with pytest.raises(error, match=reason):
        response_from_converse(answer, MODEL)
    events = [
        {"messageStart": {"role": "assistant"}},
        {"messageStop": {"stopReason": reason}},
        {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 1}}},
    ]
    with pytest.raises(error, match=reason):
        collect_chat(events_from_stream(events, MODEL))
