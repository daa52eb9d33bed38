"""Anthropic's Messages API through the ``anthropic`` SDK, imported on first use.

The SDK's retries are off (``max_retries=0`` by default): the routing layer retries 429 and 5xx
with jitter and keeps the circuit breaker, so a call here is exactly one HTTP request. Tests drive
the real SDK over an injected ``http_client`` with a mock transport.

Mapping notes (why the body looks the way it does):

- ``cache_system`` puts ``cache_control`` on the system block: the cache prefix is tools, then
  system, so one breakpoint there caches both.
- Tool results are ``tool_result`` blocks in a *user* turn, and consecutive user-side messages
  (several tool results, then perhaps a user note) are merged into one turn: the API wants the
  results of one assistant turn together, right after it.
- ``ChatRequest.temperature`` is not sent: API version 2026-10-21 (what SDK 2.x speaks) refuses
  every sampling parameter (temperature, top_p, top_k) with a 400, and the SDK dropped them.
- Anthropic's ``input_tokens`` excludes cache reads and writes; ``ChatResponse.input_tokens`` is
  the whole prompt (all three summed) and ``cached_input_tokens`` the cache reads, as for OpenAI.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from docket.errors import ProviderError, provider_error_for_status
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    StopReason,
    ToolCall,
)

DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "model_context_window_exceeded": "max_tokens",
}
# in-stream ``error`` events arrive on a 200 response: their type says what the status would be
_ERROR_TYPE_STATUS = {
    "rate_limit_error": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "timeout_error": 504,
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
}


class AnthropicChat:
    """A Claude model behind the ``ChatModel`` port.

    ``http_client`` is handed to the SDK as is (an ``httpx2.Client`` for SDK 2.x, an
    ``httpx.Client`` for older ones): tests pass one with a mock transport.
    """

    def __init__(
        self,
        model: str = DEFAULT_ANTHROPIC_MODEL,
        *,
        api_key: str,
        timeout_s: float = 60.0,
        max_retries: int = 0,
        http_client: Any | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._http_client = http_client
        self._client: Any | None = None

    @property
    def name(self) -> str:
        return f"anthropic:{self.model}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(
                api_key=self._api_key,
                timeout=self._timeout_s,
                max_retries=self._max_retries,
                http_client=self._http_client,
            )
        return self._client

    def complete(self, request: ChatRequest) -> ChatResponse:
        from anthropic import AnthropicError

        try:
            message = self.client.messages.create(**request_body(self.model, request))
        except AnthropicError as exc:
            raise wrap_error(exc) from exc
        return response_from_message(message)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        from anthropic import AnthropicError

        try:
            with self.client.messages.create(
                **request_body(self.model, request), stream=True
            ) as events:
                yield from events_from_stream(events)
        except AnthropicError as exc:
            raise wrap_error(exc) from exc


# --- request ------------------------------------------------------------------------------------


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The ``messages.create`` keyword arguments for ``request``."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": anthropic_messages(request.messages),
    }
    if request.system:
        block: dict[str, Any] = {"type": "text", "text": request.system}
        if request.cache_system:
            block["cache_control"] = {"type": "ephemeral"}
        body["system"] = [block]
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
    return body


def anthropic_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Port messages as Anthropic turns; consecutive user-side messages share one turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # tool results must open their user turn
        turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content,
                "is_error": message.is_error,
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:  # the API refuses empty text blocks
        blocks.append({"type": "text", "text": message.content})
    blocks.extend(
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
        for c in message.tool_calls
    )
    return blocks


def tool_input(arguments: str) -> dict[str, Any]:
    """A past call's arguments as the object the API wants back.

    Broken JSON was already answered with a tool error; sending ``{}`` in its place keeps the
    conversation valid (the model sees that error next to the call).
    """
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- response -----------------------------------------------------------------------------------


def response_from_message(message: Any) -> ChatResponse:
    try:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(
                    ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input))
                )
        usage = message.usage
        return ChatResponse(
            text="".join(texts),
            cached_input_tokens=usage.cache_read_input_tokens or 0,
            input_tokens=_prompt_tokens(usage),
            output_tokens=usage.output_tokens or 0,
            model=message.model,
            stop_reason=_STOP_REASONS.get(message.stop_reason or "", "end_turn"),
            tool_calls=calls,
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(f"anthropic: unexpected response: {exc}") from exc


def _prompt_tokens(usage: Any) -> int:
    return (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )


def events_from_stream(events: Any) -> Iterator[ChatEvent]:
    """Raw Messages stream events as ``ChatDelta``s, then the assembled ``ChatResponse``.

    Tool calls are assembled from their ``input_json_delta`` fragments, per content block.
    """
    model = ""
    usage: dict[str, int] = {}
    texts: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    stop_reason: str | None = None
    for event in events:
        kind = event.type
        if kind == "message_start":
            model = event.message.model
            _merge_usage(usage, event.message.usage)
        elif kind == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            tools[event.index] = {"id": block.id, "name": block.name, "json": []}
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                texts.append(delta.text)
                yield ChatDelta(text=delta.text)
            elif delta.type == "input_json_delta" and event.index in tools:
                tools[event.index]["json"].append(delta.partial_json)
        elif kind == "message_delta":
            stop_reason = event.delta.stop_reason or stop_reason
            _merge_usage(usage, event.usage)
    if stop_reason is None:
        raise provider_error_for_status(None, "anthropic: the stream ended before the message did")
    yield ChatResponse(
        text="".join(texts),
        input_tokens=usage.get("input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
        + usage.get("cache_read_input_tokens", 0),
        output_tokens=usage.get("output_tokens", 0),
        cached_input_tokens=usage.get("cache_read_input_tokens", 0),
        model=model,
        stop_reason=_STOP_REASONS.get(stop_reason, "end_turn"),
        tool_calls=[
            ToolCall(id=t["id"], name=t["name"], arguments="".join(t["json"]) or "{}")
            for _, t in sorted(tools.items())
        ],
    )


def _merge_usage(usage: dict[str, int], reported: Any) -> None:
    """Later stream events repeat or update counts (``message_delta`` is cumulative)."""
    for field in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        value = getattr(reported, field, None)
        if value is not None:
            usage[field] = int(value)


# --- errors -------------------------------------------------------------------------------------


def wrap_error(exc: BaseException) -> ProviderError:
    """The SDK's exception as a typed ``ProviderError`` (raise it ``from exc``)."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        status: int | None = exc.status_code
        error = _error_body(exc.body)
        if status is not None and status < 400:  # an ``error`` event inside a 200 stream
            status = _ERROR_TYPE_STATUS.get(str(error.get("type")))
        detail = error.get("message") or str(exc)
        return provider_error_for_status(status, f"anthropic: HTTP {status}: {detail}")
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return provider_error_for_status(None, f"anthropic: {type(exc).__name__}: {exc}")
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ProviderError(f"anthropic: unexpected response: {exc}")
    if isinstance(exc, anthropic.APIError):
        return provider_error_for_status(None, f"anthropic: {type(exc).__name__}: {exc}")
    return ProviderError(f"anthropic: {type(exc).__name__}: {exc}")


def _error_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner
    return {}
