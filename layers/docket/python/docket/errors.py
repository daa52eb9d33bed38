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


class StoreRejected(DocketError):
    """The table refused the write itself (an item over DynamoDB's 400 KB, an invalid
    attribute): sending the same write again cannot succeed."""

    code = "store_rejected"
    permanent = True


class ProviderError(DocketError):
    """An LLM provider failed (throttled, timed out, refused, answered nonsense).

    Chat adapters wrap their SDK's errors in it; the generative answerer falls back to the
    extractive answer rather than failing the query.
    """

    code = "provider_error"


class ProviderThrottled(ProviderError):
    """The provider rate-limited the call (HTTP 429): worth retrying after a backoff, or elsewhere.

    Adapters turn their SDK's retries off; ``retryable`` tells the routing layer what to retry.
    """

    code = "provider_throttled"
    retryable = True

    def __init__(self, message: str = "", *, status: int | None = 429) -> None:
        super().__init__(message)
        self.status = status


class ProviderUnavailable(ProviderError):
    """A 5xx, a timeout, a dropped connection or stream: transient, worth retrying."""

    code = "provider_unavailable"
    retryable = True

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderRejected(ProviderError):
    """A 4xx other than 429 (bad request, bad key, unknown model): the same call fails again."""

    code = "provider_rejected"
    permanent = True
    retryable = False

    def __init__(self, message: str = "", *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def provider_error_for_status(status: int | None, message: str) -> ProviderError:
    """The typed error for a provider's HTTP status: the one mapping every chat adapter shares.

    429 is throttling; 408, 5xx (and Anthropic's 529 "overloaded"), no status (the request never
    got an answer) and a failure inside a 200 stream are transient; any other 4xx is the
    request's own fault.
    """
    if status == 429:
        return ProviderThrottled(message, status=status)
    if status is None or status < 400 or status == 408 or status >= 500:
        return ProviderUnavailable(message, status=status)
    return ProviderRejected(message, status=status)


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


class RateLimited(DocketError):
    """Over a rate limit or quota (docket.access.limits): 429, with when to try again."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
