"""Model providers behind provider-neutral ports: chat models (answers, the agent loop)."""

from docket.providers.fake import ScriptedChatModel, ToolUse
from docket.providers.llm import (
    ChatDelta,
    ChatEvent,
    ChatMessage,
    ChatModel,
    ChatRequest,
    ChatResponse,
    StopReason,
    ToolCall,
    ToolSpec,
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
    "ToolCall",
    "ToolSpec",
    "ToolUse",
    "collect_chat",
]
