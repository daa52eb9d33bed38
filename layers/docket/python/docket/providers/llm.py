"""The chat port: one provider-neutral request/response shape for every LLM the service talks to.

Answers use it now, an agent loop later. Real adapters (Anthropic, OpenAI, Bedrock) map these
models onto their SDK and wrap the SDK's errors: ``raise ProviderError(...) from exc``. Nothing
here imports an SDK.

Streaming: ``ChatModel.stream`` yields zero or more ``ChatDelta`` (text as the model produces it)
and then exactly one ``ChatResponse``, last, whose ``text`` is the deltas' texts concatenated and
which carries the usage and the stop reason (usage is only known when the stream ends). A consumer
that wants only text filters on ``ChatDelta``; ``collect_chat`` folds a stream into its response.

Tool calling (the agent loop): ``ChatRequest.tools`` offers tools (name, description, JSON Schema
of the input); a reply that calls tools carries ``ChatResponse.tool_calls`` and stop reason
``"tool_use"``. Each call's ``arguments`` is the raw JSON text the model produced: it is parsed and
validated by the tool registry, never trusted here, so a model that emits broken JSON is a typed
tool error, not a crash. The conversation goes on with an ``assistant`` message carrying those
``tool_calls`` and one ``tool`` message per call (``tool_call_id``, the result as text,
``is_error``). All of it is additive: callers that use no tools are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "assistant", "tool"]

# Adapters normalise their SDK's reasons onto these: Anthropic end_turn/max_tokens/stop_sequence,
# OpenAI stop/length, Bedrock Converse end_turn/max_tokens/stop_sequence.
StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class ToolSpec(BaseModel):
    """A tool offered to the model: what the provider's tool definition is built from."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str
    input_schema: dict[str, Any] = Field(description="JSON Schema of the arguments (an object)")


class ToolCall(BaseModel):
    """One tool call as the model made it. ``arguments`` is raw JSON text, unvalidated."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=128)
    name: str = Field(max_length=256)
    arguments: str = Field(description="the model's JSON text for the arguments, as produced")


class ChatMessage(BaseModel):
    """One turn of the conversation; the system prompt is not a message (``ChatRequest.system``).

    ``assistant`` turns may carry ``tool_calls``; a ``tool`` turn answers one call
    (``tool_call_id``) with its result as text, flagged ``is_error`` when the tool failed.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    is_error: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    system: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int = Field(gt=0, description="the most output tokens the model may produce")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    cache_system: bool = Field(
        default=False,
        description="a hint: the system prompt (instructions and sources) is worth caching, e.g. "
        "Anthropic cache_control or Bedrock cachePoint; providers without caching ignore it",
    )
    stop: list[str] | None = Field(
        default=None, description="sequences that end the reply; not included in the text"
    )
    tools: list[ToolSpec] = Field(default_factory=list, description="tools the model may call")


class ChatResponse(BaseModel):
    """The whole reply, with the usage the provider reported (or, for fakes, an estimate)."""

    model_config = ConfigDict(frozen=True)

    text: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(
        default=0, ge=0, description="the part of input_tokens read from the prompt cache"
    )
    model: str = Field(description="the model that answered, as the provider names it")
    stop_reason: StopReason = "end_turn"
    tool_calls: list[ToolCall] = Field(default_factory=list)

    @property
    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
        }


class ChatDelta(BaseModel):
    """A piece of reply text, as the provider streams it (a few tokens)."""

    model_config = ConfigDict(frozen=True)

    text: str


ChatEvent = ChatDelta | ChatResponse


@runtime_checkable
class ChatModel(Protocol):
    """A chat model behind some provider. Raises ``docket.errors.ProviderError`` when it fails."""

    @property
    def name(self) -> str:
        """The model as configured (e.g. "anthropic:claude-..."), for logs and ``Answer``."""
        ...

    def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        """``ChatDelta`` events as text arrives, then exactly one ``ChatResponse``, last."""
        ...


def collect_chat(events: Iterable[ChatEvent]) -> ChatResponse:
    """The final response of a stream (a provider that only streams can implement ``complete``)."""
    for event in events:
        if isinstance(event, ChatResponse):
            return event
    raise ValueError("chat stream ended without a response")
