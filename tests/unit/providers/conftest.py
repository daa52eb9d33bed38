"""Fixtures for the chat adapters: a recording mock server, the recorded responses, and one
conversation with tool use that every adapter maps.

The files under recorded/ follow each API's documented wire format (Anthropic Messages and its
SSE events, OpenAI Chat Completions and its chunks, Cohere v2 chat and its SSE events, Bedrock
Converse and the ConverseStream events as botocore yields them); they are fixtures, not live
captures.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from docket.providers.llm import ChatMessage, ChatRequest, ToolCall, ToolSpec

RECORDED = Path(__file__).parent / "recorded"

SYSTEM = "You answer from the sources below and cite them as [n].\n\n[1] Travel Policy: ..."
SEARCH = ToolSpec(
    name="search_documents",
    description="Search the tenant's documents.",
    input_schema={
        "type": "object",
        "properties": {"query": {"type": "string"}, "top_k": {"type": "integer"}},
        "required": ["query"],
    },
)
SEND = ToolSpec(
    name="send_email",
    description="Send an e-mail (needs approval).",
    input_schema={"type": "object", "properties": {"to": {"type": "string"}}},
)
CALL_ACME = ToolCall(id="call_acme", name="search_documents", arguments='{"query": "Acme"}')
CALL_GLOBEX = ToolCall(id="call_globex", name="search_documents", arguments='{"query": "Globex"}')
# user asks; the assistant says something and calls two tools; both answer, the second failed
CONVERSATION = [
    ChatMessage(role="user", content="Compare the termination clauses."),
    ChatMessage(role="assistant", content="Searching.", tool_calls=[CALL_ACME, CALL_GLOBEX]),
    ChatMessage(role="tool", content="Acme: 30 days notice.", tool_call_id="call_acme"),
    ChatMessage(
        role="tool",
        content="tool_unavailable: index down",
        tool_call_id="call_globex",
        is_error=True,
    ),
]


def recorded_json(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def recorded_text(name: str) -> str:
    return (RECORDED / name).read_text()


def http_module_for(sdk: str) -> ModuleType:
    """The HTTP library ``sdk``'s client takes: ``httpx2`` for Stainless SDKs that moved to it
    (anthropic 2.x, openai 3.x), ``httpx`` before."""
    base = importlib.import_module(f"{sdk}._base_client")
    return getattr(base, "httpx2", None) or httpx


@dataclass(frozen=True)
class Reply:
    """One recorded answer: JSON, an event stream, plain text, or a transport failure."""

    status: int = 200
    json: Any = None
    sse: str | None = None
    text: str | None = None
    fail: str | None = None  # "timeout" | "connect"


class MockServer:
    """Plays replies in turn through a mock transport and keeps every request it was sent."""

    def __init__(self, http: ModuleType, *replies: Reply) -> None:
        self.http = http
        self.replies = list(replies)
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        reply = self.replies.pop(0)
        if reply.fail == "timeout":
            raise self.http.ReadTimeout("timed out", request=request)
        if reply.fail == "connect":
            raise self.http.ConnectError("connection refused", request=request)
        if reply.sse is not None:
            return self.http.Response(
                reply.status,
                headers={"content-type": "text/event-stream"},
                content=reply.sse.encode(),
            )
        if reply.text is not None:
            return self.http.Response(reply.status, text=reply.text)
        return self.http.Response(reply.status, json=reply.json)

    def client(self) -> Any:
        return self.http.Client(transport=self.http.MockTransport(self))

    def body(self, n: int = 0) -> dict[str, Any]:
        return json.loads(self.requests[n].content)


def chat_request(**fields: Any) -> ChatRequest:
    fields.setdefault("system", SYSTEM)
    fields.setdefault("messages", [ChatMessage(role="user", content="How much for meals?")])
    fields.setdefault("max_tokens", 512)
    return ChatRequest(**fields)


@pytest.fixture
def recorded() -> Callable[[str], Any]:
    return recorded_json
