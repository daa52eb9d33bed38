"""Domain exceptions, one module, mapped to HTTP status and to ASL Retry/Catch names in one place each.

Each error carries a stable machine-readable ``code``; ``permanent`` errors are never retried
(a corrupt file stays corrupt) and go straight to the dead-letter queue with their reason.
"""

from __future__ import annotations


class DocketError(Exception):
    code = "internal_error"
    permanent = False

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__name__)
        self.message = message or self.__class__.__name__

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- extraction (permanent: the same bytes always fail the same way) ---------------------------


class ExtractionError(DocketError):
    code = "extraction_failed"
    permanent = True


class UnsupportedFormat(ExtractionError):
    code = "unsupported_format"


class CorruptDocument(ExtractionError):
    code = "corrupt_document"


class EncryptedDocument(ExtractionError):
    code = "encrypted_document"


class EmptyDocument(ExtractionError):
    code = "empty_document"


class NoTextLayer(ExtractionError):
    """A scanned or image-only document: it has pages but no extractable text."""

    code = "no_text_layer"


class FileTooLarge(ExtractionError):
    code = "file_too_large"


# --- requests -----------------------------------------------------------------------------------


class Unauthorized(DocketError):
    code = "unauthorized"
    permanent = True


class Forbidden(DocketError):
    code = "forbidden"
    permanent = True


class NotFound(DocketError):
    code = "not_found"
    permanent = True


class InvalidRequest(DocketError):
    code = "invalid_request"
    permanent = True


class Conflict(DocketError):
    code = "conflict"
    permanent = True


# --- search and models ----------------------------------------------------------------------------


class ModelMismatch(DocketError):
    """The query embedder's model differs from the model the index was built with."""

    code = "embedding_model_mismatch"
    permanent = True


class IndexUnavailable(DocketError):
    code = "index_unavailable"


class EmbeddingUnavailable(DocketError):
    code = "embedding_unavailable"


class StoreUnavailable(DocketError):
    code = "store_unavailable"


class ProviderError(DocketError):
    """An LLM provider failed (throttled, timed out, refused, answered nonsense).

    Chat adapters wrap their SDK's errors in it; the generative answerer falls back to the
    extractive answer rather than failing the query.
    """

    code = "provider_error"


class RerankUnavailable(DocketError):
    """The reranking service failed or answered nonsense; the query path keeps the fused order."""

    code = "rerank_unavailable"


# --- configuration (permanent: the same settings fail the same way until someone fixes them) ---


class ConfigurationError(DocketError):
    code = "configuration_error"
    permanent = True


# --- the agent (tool errors become tool results the model sees; they never crash the loop) ----


class ToolError(DocketError):
    """A tool call that cannot run or failed; its message is shown to the model as the result."""

    code = "tool_error"
    permanent = True


class UnknownTool(ToolError):
    code = "unknown_tool"


class InvalidToolArguments(ToolError):
    """The model's arguments are not JSON, or fail the tool's input schema."""

    code = "invalid_tool_arguments"


class ToolTimeout(ToolError):
    code = "tool_timeout"
    permanent = False


class ToolUnavailable(ToolError):
    """An external service the tool calls failed (a 5xx, a connection error)."""

    code = "tool_unavailable"
    permanent = False


class DestinationNotAllowed(ToolError):
    """A URL, host, recipient or table outside the allow-lists (or a private address)."""

    code = "destination_not_allowed"


class EffectInDoubt(ToolError):
    """A side effect was started but its outcome was never recorded: it is not attempted again."""

    code = "effect_in_doubt"


class ApprovalClosed(Conflict):
    """The approval was already decided, expired, or its task has ended."""

    code = "approval_closed"


class InvalidSignature(Unauthorized):
    """A forged, tampered or expired approval link, or a Slack request that fails verification."""

    code = "invalid_signature"
