"""Amazon Bedrock's Converse API through boto3 (``bedrock-runtime``), created on first use.

Converse is one request shape for every Bedrock chat model, tool use included. botocore's own
retries are off (one attempt): the routing layer retries throttling and 5xx with jitter.

Mapping notes:

- ``cache_system`` appends a ``cachePoint`` block after the system text. Only models with prompt
  caching on Bedrock accept it (Claude, Nova): route others with ``cache_system`` off.
- Tool results are ``toolResult`` blocks in a user turn (``status: "error"`` for a failed tool);
  consecutive user-side messages are merged into one turn, as Converse requires.
- A conversation that holds toolUse/toolResult blocks needs a ``toolConfig``: the agent always
  offers its tools, so requests with tool history carry one.
- ``temperature`` is not sent to Claude models: Claude 4.7 and later refuse it ("temperature is
  deprecated for this model") and the others answer well with their default.
- Converse's ``inputTokens`` excludes cache reads and writes; ``ChatResponse.input_tokens`` sums
  them, and ``cached_input_tokens`` is ``cacheReadInputTokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from docket.errors import (
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    provider_error_for_status,
)
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    StopReason,
    ToolCall,
)

# the global cross-region inference profile: on-demand Claude models on Bedrock are reached
# through an inference profile, and "global." works from every commercial region
DEFAULT_BEDROCK_MODEL = "global.anthropic.claude-sonnet-5-5"

_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "model_context_window_exceeded": "max_tokens",
}
# stop reasons that are not an answer: content blocked (retrying sends the same content) or
# broken output (a retry may come out well)
_REFUSED_STOPS = {"guardrail_intervened", "content_filtered"}
_BROKEN_STOPS = {"malformed_tool_use", "malformed_model_output"}


def _stop_reason(value: str) -> StopReason:
    """Converse's stop reason; a blocked or malformed reply raises rather than pass as final."""
    if value in _REFUSED_STOPS:
        raise ProviderRejected(f"bedrock: the reply was blocked ({value})")
    if value in _BROKEN_STOPS:
        raise ProviderUnavailable(f"bedrock: the model's reply was malformed ({value})")
    return _STOP_REASONS.get(value, "end_turn")


# error codes whose HTTP status says less than the code (and in-stream errors have none)
_CODE_STATUS = {
    "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429,
    "ModelNotReadyException": 503,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelStreamErrorException": 502,
    "ModelErrorException": 502,
    "ModelTimeoutException": 408,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
}
# the in-stream exception events of ConverseStream, by their member name
_STREAM_EXCEPTIONS = {
    "internalServerException": "InternalServerException",
    "modelStreamErrorException": "ModelStreamErrorException",
    "validationException": "ValidationException",
    "throttlingException": "ThrottlingException",
    "serviceUnavailableException": "ServiceUnavailableException",
}


class BedrockConverseChat:
    """A Bedrock model behind the ``ChatModel`` port; ``client`` (a ``bedrock-runtime`` client,
    e.g. under a botocore Stubber) is used as given."""

    def __init__(
        self,
        model_id: str = DEFAULT_BEDROCK_MODEL,
        *,
        client: Any | None = None,
        region: str = "us-east-1",
        timeout_s: float = 60.0,
    ) -> None:
        self.model_id = model_id
        self._client = client
        self._region = region
        self._timeout_s = timeout_s

    @property
    def name(self) -> str:
        return f"bedrock:{self.model_id}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "bedrock-runtime",
                region_name=self._region,
                config=Config(
                    retries={"total_max_attempts": 1, "mode": "standard"},
                    connect_timeout=min(self._timeout_s, 10.0),
                    read_timeout=self._timeout_s,
                ),
            )
        return self._client

    def complete(self, request: ChatRequest) -> ChatResponse:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.converse(**request_body(self.model_id, request))
        except (BotoCoreError, ClientError) as exc:
            raise wrap_error(exc) from exc
        return response_from_converse(answer, self.model_id)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self.client.converse_stream(**request_body(self.model_id, request))
            yield from events_from_stream(answer["stream"], self.model_id)
        except (BotoCoreError, ClientError) as exc:
            raise wrap_error(exc) from exc


# --- request ------------------------------------------------------------------------------------


def request_body(model_id: str, request: ChatRequest) -> dict[str, Any]:
    """The ``converse``/``converse_stream`` keyword arguments for ``request``."""
    inference: dict[str, Any] = {"maxTokens": request.max_tokens}
    if "anthropic.claude" not in model_id:
        inference["temperature"] = request.temperature
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    body: dict[str, Any] = {
        "modelId": model_id,
        "messages": converse_messages(request.messages),
        "inferenceConfig": inference,
    }
    if request.system:
        body["system"] = [{"text": request.system}]
        if request.cache_system:
            body["system"].append({"cachePoint": {"type": "default"}})
    if request.tools:
        body["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": t.input_schema},
                    }
                }
                for t in request.tools
            ]
        }
    return body


def converse_messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Port messages as Converse turns; consecutive user-side messages share one turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # tool results open their user turn
        turn["content"].sort(key=lambda b: "toolResult" not in b)
    return turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "toolResult": {
                    "toolUseId": message.tool_call_id or "",
                    "content": [{"text": message.content}],
                    "status": "error" if message.is_error else "success",
                }
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content or not message.tool_calls:  # Converse refuses blank text blocks
        blocks.append({"text": message.content})
    blocks.extend(
        {"toolUse": {"toolUseId": c.id, "name": c.name, "input": _tool_input(c.arguments)}}
        for c in message.tool_calls
    )
    return blocks


def _tool_input(arguments: str) -> dict[str, Any]:
    """A past call's arguments as the JSON object Converse wants back; ``{}`` for broken JSON
    (that call was answered with a tool error the model sees)."""
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --- response -----------------------------------------------------------------------------------


def response_from_converse(answer: Mapping[str, Any], model_id: str) -> ChatResponse:
    try:
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in answer["output"]["message"]["content"]:
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(
                    ToolCall(
                        id=use["toolUseId"],
                        name=use["name"],
                        arguments=json.dumps(use.get("input", {})),
                    )
                )
        usage = answer.get("usage", {})
        return ChatResponse(
            text="".join(texts),
            input_tokens=_prompt_tokens(usage),
            output_tokens=usage.get("outputTokens", 0),
            cached_input_tokens=usage.get("cacheReadInputTokens", 0),
            model=model_id,
            stop_reason=_stop_reason(answer.get("stopReason", "")),
            tool_calls=calls,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(f"bedrock: unexpected response: {exc}") from exc


def _prompt_tokens(usage: Mapping[str, Any]) -> int:
    return (
        usage.get("inputTokens", 0)
        + usage.get("cacheReadInputTokens", 0)
        + usage.get("cacheWriteInputTokens", 0)
    )


def events_from_stream(events: Iterable[Mapping[str, Any]], model_id: str) -> Iterator[ChatEvent]:
    """ConverseStream events (as botocore yields them: one-key dicts) as ``ChatDelta``s, then the
    assembled ``ChatResponse``. Tool calls are assembled from their ``toolUse.input`` fragments
    per content block; usage arrives in the last event, ``metadata``."""
    texts: list[str] = []
    tools: dict[int, dict[str, Any]] = {}
    stop_reason: str | None = None
    usage: Mapping[str, Any] = {}
    for event in events:
        for member, code in _STREAM_EXCEPTIONS.items():
            if member in event:
                message = event[member].get("message", code)
                raise provider_error_for_status(_CODE_STATUS[code], f"bedrock: {code}: {message}")
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = start.get("start", {}).get("toolUse")
            if use is not None:
                tools[start["contentBlockIndex"]] = {
                    "id": use["toolUseId"],
                    "name": use["name"],
                    "input": [],
                }
        elif "contentBlockDelta" in event:
            block = event["contentBlockDelta"]
            delta = block.get("delta", {})
            if delta.get("text"):
                texts.append(delta["text"])
                yield ChatDelta(text=delta["text"])
            elif "toolUse" in delta and block.get("contentBlockIndex") in tools:
                tools[block["contentBlockIndex"]]["input"].append(delta["toolUse"]["input"])
        elif "messageStop" in event:
            stop_reason = event["messageStop"].get("stopReason", "end_turn")
        elif "metadata" in event:
            usage = event["metadata"].get("usage", {})
    if stop_reason is None:
        raise provider_error_for_status(None, "bedrock: the stream ended before the message did")
    yield ChatResponse(
        text="".join(texts),
        input_tokens=_prompt_tokens(usage),
        output_tokens=usage.get("outputTokens", 0),
        cached_input_tokens=usage.get("cacheReadInputTokens", 0),
        model=model_id,
        stop_reason=_stop_reason(stop_reason),
        tool_calls=[
            ToolCall(id=t["id"], name=t["name"], arguments="".join(t["input"]) or "{}")
            for _, t in sorted(tools.items())
        ],
    )


# --- errors -------------------------------------------------------------------------------------


def wrap_error(exc: BaseException) -> ProviderError:
    """botocore's exception as a typed ``ProviderError`` (raise it ``from exc``)."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        code = _STREAM_EXCEPTIONS.get(code, code)  # in-stream errors use the member name
        http_status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        status = _CODE_STATUS.get(code) or http_status
        message = error.get("Message") or str(exc)
        label = code or f"HTTP {status}"
        return provider_error_for_status(status, f"bedrock: {label}: {message}")
    if isinstance(exc, ConnectionError | HTTPClientError):  # timeouts, refused, reset
        return provider_error_for_status(None, f"bedrock: {type(exc).__name__}: {exc}")
    # NoCredentialsError, ParamValidationError...: the same call fails again
    return ProviderRejected(f"bedrock: {type(exc).__name__}: {exc}")
