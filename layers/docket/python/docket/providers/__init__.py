"""Model providers behind provider-neutral ports: chat models (answers now, an agent loop later)."""

from docket.providers.fake import ScriptedChatModel
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    StopReason,
    collect_chat,
)

__all__ = [
    "ChatDelta",
    "ChatEvent",
    "ChatMessage",
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "ScriptedChatModel",
    "StopReason",
    "collect_chat",
]
