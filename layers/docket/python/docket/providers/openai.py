"""OpenAI Chat Completions through the ``openai`` SDK, imported on first use; ``base_url`` points
it at any OpenAI-compatible server (vLLM, a gateway).

The SDK's retries are off (``max_retries=0`` by default): the routing layer retries 429 and 5xx
with jitter. Tests drive the real SDK over an injected ``http_client`` with a mock transport.

Mapping notes:

- To OpenAI itself the output limit goes as ``max_completion_tokens`` (``max_tokens`` is
  deprecated there and refused by reasoning models; for those the limit includes reasoning
  tokens) and ``temperature`` is not sent (the GPT-5 reasoning models accept only their
  default). A compatible server (``base_url``) gets the classic ``max_tokens`` and
  ``temperature``, which vLLM and most gateways honour.
- Chat Completions has no error flag on a tool result: a failed tool's result is sent as
  ``"Error: " + content`` so the model can tell.
- ``finish_reason`` "stop" covers both a natural end and a stop sequence; it maps to end_turn.
- OpenAI caches long prompt prefixes by itself; ``cache_system`` needs no field here.
  ``prompt_tokens`` includes cached tokens; ``prompt_tokens_details.cached_tokens`` is that part.
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

DEFAULT_OPENAI_MODEL = "gpt-5.5"

_STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "end_turn",
}
TOOL_ERROR_PREFIX = "Error: "


class OpenAIChat:
    """A chat model behind OpenAI's (or a compatible server's) Chat Completions API.

    ``http_client`` is handed to the SDK as is (an ``httpx2.Client`` for SDK 3.x, an
    ``httpx.Client`` for older ones): tests pass one with a mock transport.
    """

    def __init__(
        self,
        model: str = DEFAULT_OPENAI_MODEL,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 0,
        http_client: Any | None = None,
    ) -> None:
        self.model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._http_client = http_client
        self._client: Any | None = None

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self._api_key,
                base_url=self._base_url,
                timeout=self._timeout_s,
                max_retries=self._max_retries,
                http_client=self._http_client,
            )
        return self._client

    def complete(self, request: ChatRequest) -> ChatResponse:
        from openai import OpenAIError

        try:
            completion = self.client.chat.completions.create(**self._body(request))
        except OpenAIError as exc:
            raise wrap_error(exc) from exc
        return response_from_completion(completion)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        from openai import OpenAIError

        body = self._body(request) | {"stream": True, "stream_options": {"include_usage": True}}
        try:
            with self.client.chat.completions.create(**body) as chunks:
                yield from events_from_chunks(chunks)
        except OpenAIError as exc:
            raise wrap_error(exc) from exc

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        if self._base_url:  # a compatible server: the classic fields
            return request_body(
                self.model, request, max_tokens_field="max_tokens", send_temperature=True
            )
        return request_body(self.model, request)


# --- request ------------------------------------------------------------------------------------


def request_body(
    model: str,
    request: ChatRequest,
    *,
    max_tokens_field: str = "max_completion_tokens",
    send_temperature: bool = False,
) -> dict[str, Any]:
    """The ``chat.completions.create`` keyword arguments for ``request``."""
    body: dict[str, Any] = {
        "model": model,
        "messages": openai_messages(request),
        max_tokens_field: request.max_tokens,
    }
    if send_temperature:
        body["temperature"] = request.temperature
    if request.stop:
        body["stop"] = list(request.stop)
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


def openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
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
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


# --- response -----------------------------------------------------------------------------------


def response_from_completion(completion: Any) -> ChatResponse:
    try:
        choice = completion.choices[0]
        message = choice.message
        calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "{}")
            for c in message.tool_calls or []
            if getattr(c, "function", None) is not None
        ]
        prompt, output, cached = _usage(completion.usage)
        return ChatResponse(
            text=message.content or "",
            input_tokens=prompt,
            output_tokens=output,
            cached_input_tokens=cached,
            model=completion.model,
            stop_reason=_STOP_REASONS.get(choice.finish_reason or "", "end_turn"),
            tool_calls=calls,
        )
    except (AttributeError, IndexError, TypeError, ValueError) as exc:
        raise ProviderError(f"openai: unexpected response: {exc}") from exc


def _usage(usage: Any) -> tuple[int, int, int]:
    if usage is None:  # a compatible server may not report it
        return 0, 0, 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return usage.prompt_tokens or 0, usage.completion_tokens or 0, cached


def events_from_chunks(chunks: Any) -> Iterator[ChatEvent]:
    """Streamed chunks as ``ChatDelta``s, then the assembled ``ChatResponse``.

    Tool calls arrive as fragments keyed by ``index``: the first carries the id and name, the
    rest pieces of the arguments. Usage comes in a last chunk with no choices
    (``stream_options.include_usage``).
    """
    model = ""
    texts: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    finish_reason: str | None = None
    usage: Any = None
    for chunk in chunks:
        model = chunk.model or model
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices or []:
            delta = choice.delta
            if delta is not None and delta.content:
                texts.append(delta.content)
                yield ChatDelta(text=delta.content)
            for fragment in (delta.tool_calls if delta is not None else None) or []:
                tool = tools.setdefault(fragment.index, {"id": "", "name": "", "arguments": []})
                tool["id"] = fragment.id or tool["id"]
                if fragment.function is not None:
                    tool["name"] = fragment.function.name or tool["name"]
                    tool["arguments"].append(fragment.function.arguments or "")
            finish_reason = choice.finish_reason or finish_reason
    if finish_reason is None:
        raise provider_error_for_status(None, "openai: the stream ended before the reply did")
    prompt, output, cached = _usage(usage)
    yield ChatResponse(
        text="".join(texts),
        input_tokens=prompt,
        output_tokens=output,
        cached_input_tokens=cached,
        model=model,
        stop_reason=_STOP_REASONS.get(finish_reason, "end_turn"),
        tool_calls=[
            ToolCall(id=t["id"], name=t["name"], arguments="".join(t["arguments"]) or "{}")
            for _, t in sorted(tools.items())
        ],
    )


# --- errors -------------------------------------------------------------------------------------


def wrap_error(exc: BaseException) -> ProviderError:
    """The SDK's exception as a typed ``ProviderError`` (raise it ``from exc``)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        detail = _detail(exc.body) or str(exc)
        return provider_error_for_status(
            exc.status_code, f"openai: HTTP {exc.status_code}: {detail}"
        )
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return provider_error_for_status(None, f"openai: {type(exc).__name__}: {exc}")
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderError(f"openai: unexpected response: {exc}")
    if isinstance(exc, openai.APIError):  # an error event inside the stream
        return provider_error_for_status(None, f"openai: {type(exc).__name__}: {exc}")
    return ProviderError(f"openai: {type(exc).__name__}: {exc}")


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return ""
