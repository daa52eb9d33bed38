"""A deterministic chat model that replies from a script: for unit tests and the offline local cloud.

It behaves like a provider where callers can tell: it streams a reply in small token-like pieces,
honours ``max_tokens`` and ``stop``, reports usage (estimated: one token per piece) including
cached input when ``cache_system`` is set and the same system prompt was seen before, and records
every request it got so tests can assert on prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from docket.errors import ProviderError
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    StopReason,
    ToolCall,
)


@dataclass(frozen=True)
class ToolUse:
    """A scripted reply that calls tools (``text`` is what the model says alongside, if any)."""

    calls: Sequence[ToolCall]
    text: str = ""


Reply = Callable[[ChatRequest], "str | ToolUse"]
"""A scripted reply computed from the request (it may raise, e.g. ``ProviderError``)."""

Script = Sequence[str | ToolUse | BaseException] | Reply

# Words cut into pieces of at most 6 letters or 3 digits, each with the whitespace before it;
# punctuation on its own. Every character lands in exactly one piece.
_PIECE_RE = re.compile(r"\s*(?:[^\W\d_]{1,6}|\d{1,3}|_|[^\w\s])|\s+")


def token_pieces(text: str) -> list[str]:
    """``text`` cut into token-like pieces; ``"".join(token_pieces(text)) == text``."""
    return _PIECE_RE.findall(text)


def approx_tokens(text: str) -> int:
    """A token estimate that is stable and close enough for usage figures in tests."""
    return len(token_pieces(text))


class ScriptedChatModel:
    """Replies from ``script``: the next string of a list per request, or ``script(request)``.

    A list item that is an exception is raised instead of replying (a provider failure). When a
    list runs out, the model raises ``RuntimeError``: a test asked more than it scripted, which is
    a bug in the test, not a provider failure to be handled. ``fail_stream_after`` makes ``stream``
    raise ``ProviderError`` after that many pieces (a connection dropped mid-answer).
    """

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        fail_stream_after: int | None = None,
    ) -> None:
        self._script = script
        self._next = 0
        self._name = name
        self._fail_stream_after = fail_stream_after
        self._seen_systems: set[str] = set()
        self.requests: list[ChatRequest] = []

    @property
    def name(self) -> str:
        return self._name

    def complete(self, request: ChatRequest) -> ChatResponse:
        _, response = self._respond(request)
        return response

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        pieces, response = self._respond(request)
        for count, piece in enumerate(pieces):
            if self._fail_stream_after is not None and count >= self._fail_stream_after:
                raise ProviderError(f"{self._name}: stream interrupted after {count} pieces")
            yield ChatDelta(text=piece)
        yield response

    # --- internals ------------------------------------------------------------------------------

    def _reply(self, request: ChatRequest) -> str | ToolUse:
        if callable(self._script):
            return self._script(request)
        if self._next >= len(self._script):
            raise RuntimeError(f"{self._name}: script exhausted after {self._next} replies")
        item = self._script[self._next]
        self._next += 1
        if isinstance(item, BaseException):
            raise item
        return item

    def _respond(self, request: ChatRequest) -> tuple[list[str], ChatResponse]:
        self.requests.append(request)
        reply = self._reply(request)
        calls: list[ToolCall] = []
        if isinstance(reply, ToolUse):
            text, calls = reply.text, list(reply.calls)
        else:
            text = reply
        stop_reason: StopReason = "tool_use" if calls else "end_turn"
        for stop in request.stop or []:
            at = text.find(stop) if stop else -1
            if at != -1:
                text, stop_reason = text[:at], "stop_sequence"
        pieces = token_pieces(text)
        if len(pieces) > request.max_tokens:
            pieces, stop_reason = pieces[: request.max_tokens], "max_tokens"
        system_tokens = approx_tokens(request.system)
        cached = (
            system_tokens if request.cache_system and request.system in self._seen_systems else 0
        )
        if request.cache_system:
            self._seen_systems.add(request.system)
        response = ChatResponse(
            text="".join(pieces),
            input_tokens=system_tokens
            + sum(_message_tokens(message) for message in request.messages)
            + sum(approx_tokens(tool.model_dump_json()) for tool in request.tools),
            output_tokens=len(pieces) + sum(approx_tokens(c.arguments) + 1 for c in calls),
            cached_input_tokens=cached,
            model=self._name,
            stop_reason=stop_reason,
            tool_calls=calls,
        )
        return pieces, response


def _message_tokens(message: ChatMessage) -> int:
    return approx_tokens(message.content) + sum(
        approx_tokens(call.name) + approx_tokens(call.arguments) for call in message.tool_calls
    )
