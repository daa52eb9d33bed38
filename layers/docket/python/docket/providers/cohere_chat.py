"""Cohere's Chat API (v2) through the ``cohere`` SDK's ``ClientV2``, imported on first use.

The SDK's retries are off (``max_retries=0``): the routing layer retries 429 and 5xx with jitter.
Tests drive the real SDK over an injected ``httpx.Client`` with a mock transport; ``stream`` is
the SDK's own server-sent-event stream.

Mapping notes:

- A Cohere reply that calls tools says what it is about to do in ``tool_plan``, not in
  ``content``: the reply's text is the plan followed by any content text, and an assistant
  message with tool calls is sent back with its text as the ``tool_plan``.
- v2 has no error flag on a tool result: a failed tool's result is sent as ``"Error: " +
  content`` so the model can tell. There is no prompt-cache control either: ``cache_system`` is
  ignored.
- Usage is ``tokens`` (the prompt as the model saw it, Cohere's own template included), which
  ``cached_tokens`` is a part of; ``billed_units`` (a little lower: the template is not billed)
  only when ``tokens`` is missing. Costs computed from it err on the high side.
- ``finish_reason`` ERROR or TIMEOUT means the model failed mid-reply: a retryable
  ``ProviderUnavailable``, not an answer.
"""

from __future__ import annotations

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

DEFAULT_COHERE_CHAT_MODEL = "command-a-03-2025"

_STOP_REASONS: dict[str, StopReason] = {
    "COMPLETE": "end_turn",
    "STOP_SEQUENCE": "stop_sequence",
    "MAX_TOKENS": "max_tokens",
    "TOOL_CALL": "tool_use",
}
_FAILED = {"ERROR", "TIMEOUT"}
TOOL_ERROR_PREFIX = "Error: "


class CohereChat:
    """A Command model behind the ``ChatModel`` port.

    ``http_client`` (an ``httpx.Client``) is handed to the SDK: tests pass one with a mock
    transport.
    """

    def __init__(
        self,
        model: str = DEFAULT_COHERE_CHAT_MODEL,
        *,
        api_key: str,
        timeout_s: float = 60.0,
        http_client: Any | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._http_client = http_client
        self._client: Any | None = None

    @property
    def name(self) -> str:
        return f"cohere:{self.model}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import cohere

            self._client = cohere.ClientV2(
                api_key=self._api_key,
                httpx_client=self._http_client,
                timeout=self._timeout_s,
                max_retries=0,
            )
        return self._client

    def complete(self, request: ChatRequest) -> ChatResponse:
        errors = _sdk_errors()
        try:
            reply = self.client.chat(**request_body(self.model, request))
        except errors as exc:
            raise wrap_error(exc) from exc
        return response_from_chat(reply, self.model)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        errors = _sdk_errors()
        try:
            yield from events_from_stream(
                self.client.chat_stream(**request_body(self.model, request)), self.model
            )
        except errors as exc:
            raise wrap_error(exc) from exc


# --- request ------------------------------------------------------------------------------------


def request_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The ``ClientV2.chat``/``chat_stream`` keyword arguments for ``request``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": cohere_messages(request),
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                },
            }
            for t in request.tools
        ]
    return body


def cohere_messages(request: ChatRequest) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(m) for m in request.messages)
    return messages


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        prefix = TOOL_ERROR_PREFIX if message.is_error else ""
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": prefix + message.content,
        }
    if message.role == "assistant" and message.tool_calls:
        out: dict[str, Any] = {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ],
        }
        if message.content:
            out["tool_plan"] = message.content
        return out
    return {"role": message.role, "content": message.content}


# --- response -----------------------------------------------------------------------------------


def response_from_chat(reply: Any, model: str) -> ChatResponse:
    finish = str(reply.finish_reason or "")
    if finish in _FAILED:
        raise provider_error_for_status(None, f"cohere: the reply ended with {finish}")
    try:
        message = reply.message
        texts = [message.tool_plan or ""] if message.tool_calls else []
        texts += [
            item.text
            for item in message.content or []
            if getattr(item, "type", None) == "text" and item.text
        ]
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in message.tool_calls or []
        ]
        prompt, output, cached = _usage(reply.usage)
        return ChatResponse(
            text="".join(texts),
            input_tokens=prompt,
            output_tokens=output,
            cached_input_tokens=cached,
            model=model,
            stop_reason=_STOP_REASONS.get(finish, "end_turn"),
            tool_calls=calls,
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise ProviderError(f"cohere: unexpected response: {exc}") from exc


def _usage(usage: Any) -> tuple[int, int, int]:
    if usage is None:
        return 0, 0, 0
    counted = usage.tokens or usage.billed_units
    prompt = int(getattr(counted, "input_tokens", None) or 0)
    output = int(getattr(counted, "output_tokens", None) or 0)
    cached = int(getattr(usage, "cached_tokens", None) or 0)
    return prompt, output, min(cached, prompt)


def events_from_stream(events: Any, model: str) -> Iterator[ChatEvent]:
    """v2 stream events as ``ChatDelta``s (plan and content text), then the ``ChatResponse``.

    Tool calls start with their id and name (``tool-call-start``) and grow by argument pieces
    (``tool-call-delta``) at the same ``index``; usage comes with ``message-end``.
    """
    texts: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish: str | None = None
    usage: Any = None
    for event in events:
        kind = getattr(event, "type", None)
        message: Any = getattr(getattr(event, "delta", None), "message", None)
        text = ""
        if kind == "tool-plan-delta":
            text = message.tool_plan or ""
        elif kind == "content-delta":
            text = getattr(message.content, "text", None) or ""
        elif kind == "tool-call-start":
            call = message.tool_calls
            tools[event.index] = {
                "id": call.id,
                "name": call.function.name,
                "arguments": [call.function.arguments or ""],
            }
        elif kind == "tool-call-delta" and event.index in tools:
            tools[event.index]["arguments"].append(message.tool_calls.function.arguments or "")
        elif kind == "message-end":
            finish = str(event.delta.finish_reason or "COMPLETE")
            usage = event.delta.usage
            if finish in _FAILED:
                detail = event.delta.error or finish
                raise provider_error_for_status(None, f"cohere: the reply failed: {detail}")
        if text:
            texts.append(text)
            yield ChatDelta(text=text)
    if finish is None:
        raise provider_error_for_status(None, "cohere: the stream ended before the message did")
    prompt, output, cached = _usage(usage)
    yield ChatResponse(
        text="".join(texts),
        input_tokens=prompt,
        output_tokens=output,
        cached_input_tokens=cached,
        model=model,
        stop_reason=_STOP_REASONS.get(finish, "end_turn"),
        tool_calls=[
            ToolCall(id=t["id"], name=t["name"], arguments="".join(t["arguments"]) or "{}")
            for _, t in sorted(tools.items())
        ],
    )


# --- errors -------------------------------------------------------------------------------------


def _sdk_errors() -> tuple[type[BaseException], ...]:
    import httpx
    from cohere.core.api_error import ApiError
    from cohere.core.parse_error import ParsingError

    return (ApiError, ParsingError, httpx.HTTPError)


def wrap_error(exc: BaseException) -> ProviderError:
    """The SDK's exception as a typed ``ProviderError`` (raise it ``from exc``)."""
    import httpx
    from cohere.core.api_error import ApiError

    if isinstance(exc, ApiError):
        body = exc.body
        detail = body.get("message") if isinstance(body, dict) else None
        return provider_error_for_status(
            exc.status_code, f"cohere: HTTP {exc.status_code}: {detail or str(body)[:300]}"
        )
    if isinstance(exc, httpx.HTTPError):  # timeouts, refused and dropped connections
        return provider_error_for_status(None, f"cohere: {type(exc).__name__}: {exc}")
    return ProviderError(f"cohere: unexpected response: {type(exc).__name__}: {exc}")
