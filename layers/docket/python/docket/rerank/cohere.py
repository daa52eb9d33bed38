"""Cohere's rerank API (v2) through the cohere SDK, imported on first use.

Tests drive the real SDK over an injected ``httpx.Client`` with a mock transport, so the request
body and the response parsing are the SDK's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from docket.errors import ConfigurationError, RerankUnavailable
from docket.rerank.base import DEFAULT_MAX_CHARS, ServiceReranker

if TYPE_CHECKING:
    import httpx

DEFAULT_COHERE_MODEL = "rerank-v3.5"


class CohereReranker(ServiceReranker):
    """Reranks with a Cohere rerank model.

    ``client`` (a ``cohere.ClientV2`` or anything with its ``rerank``) is used as given;
    otherwise a ClientV2 is built on first use from ``api_key`` and, when given, ``httpx_client``.
    The SDK retries 429 and 5xx itself (``max_retries`` times, with backoff): a query waits for
    at most a retry or two before falling back to the fused order.
    """

    def __init__(
        self,
        api_key: str | None = None,
        model: str = DEFAULT_COHERE_MODEL,
        *,
        client: Any | None = None,
        httpx_client: httpx.Client | None = None,
        base_url: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 1,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        super().__init__(max_chars)
        if client is None and not api_key:
            raise ConfigurationError("the Cohere reranker needs an API key (DOCKET_COHERE_API_KEY)")
        self.model = model
        self._client = client
        self._api_key = api_key
        self._httpx_client = httpx_client
        self._base_url = base_url
        self._timeout_seconds = timeout_seconds
        self._max_retries = max_retries

    @property
    def name(self) -> str:
        return f"cohere:{self.model}"

    @property
    def client(self) -> Any:
        if self._client is None:
            import cohere

            options: dict[str, Any] = {}
            if self._base_url is not None:
                options["base_url"] = self._base_url
            self._client = cohere.ClientV2(
                api_key=self._api_key,
                httpx_client=self._httpx_client,
                timeout=self._timeout_seconds,
                max_retries=self._max_retries,
                **options,
            )
        return self._client

    def _score(self, query: str, documents: Sequence[str], top_n: int) -> list[tuple[int, float]]:
        import httpx
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        try:
            response = self.client.rerank(
                model=self.model, query=query, documents=list(documents), top_n=top_n
            )
        except ApiError as exc:
            raise RerankUnavailable(
                f"cohere rerank failed: HTTP {exc.status_code}: {_message(exc.body)}"
            ) from exc
        except (ParsingError, httpx.HTTPError) as exc:
            raise RerankUnavailable(f"cohere rerank failed: {type(exc).__name__}: {exc}") from exc
        try:
            return [(int(r.index), float(r.relevance_score)) for r in response.results]
        except (AttributeError, TypeError, ValueError) as exc:
            raise RerankUnavailable("cohere rerank returned an unexpected response") from exc


def _message(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:300]
