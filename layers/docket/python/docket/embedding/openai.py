"""OpenAI embeddings (or any OpenAI-compatible server: vLLM, TEI's /v1) through the ``openai``
SDK, imported on first use.

Requests carry at most 2048 inputs (the API's limit) and, by default, about 600k characters: the
API also caps a request at 300k tokens, and 2048 chunks of 256 tokens would exceed it.
``encoding_format="float"`` is explicit, so a compatible server that knows no base64 works too.
Tests drive the real SDK over an injected ``http_client`` with a mock transport.
"""

from __future__ import annotations

from typing import Any

from docket.embedding.hosted import HostedEmbedder, InputType, model_dimension
from docket.errors import ConfigurationError, EmbeddingUnavailable

DEFAULT_OPENAI_EMBEDDING_MODEL = "text-embedding-3-small"
MAX_INPUTS_PER_REQUEST = 2048
DEFAULT_MAX_BATCH_CHARS = 600_000


class OpenAIEmbedder(HostedEmbedder):
    """Embeds with an OpenAI embedding model.

    ``dimensions`` asks a text-embedding-3 model for shorter vectors (and is sent only when
    given); without it the model's known dimension is declared. ``client`` (an ``openai.OpenAI``
    or anything with its ``embeddings.create``) is used as given; otherwise one is built on first
    use from ``api_key``, ``base_url`` and ``http_client``. The SDK retries 429 and 5xx itself.
    """

    provider = "openai"

    def __init__(
        self,
        model: str = DEFAULT_OPENAI_EMBEDDING_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        client: Any | None = None,
        http_client: Any | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        batch_size: int = MAX_INPUTS_PER_REQUEST,
        max_batch_chars: int = DEFAULT_MAX_BATCH_CHARS,
    ) -> None:
        if client is None and not api_key and base_url is None:
            raise ConfigurationError("OpenAI embeddings need an API key (DOCKET_OPENAI_API_KEY)")
        if not 1 <= batch_size <= MAX_INPUTS_PER_REQUEST:
            raise ValueError(f"batch_size must be in 1..{MAX_INPUTS_PER_REQUEST}")
        super().__init__(
            model,
            model_dimension(model, dimensions),
            batch_size=batch_size,
            max_batch_chars=max_batch_chars,
        )
        self.dimensions = dimensions
        self._client = client
        # a compatible server without auth still needs some key for the SDK
        self._api_key = api_key or "unused"
        self._base_url = base_url
        self._http_client = http_client
        self._timeout_s = timeout_s
        self._max_retries = max_retries

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

    def _embed_batch(self, texts: list[str], input_type: InputType) -> Any:
        import openai

        options: dict[str, Any] = {}
        if self.dimensions is not None:
            options["dimensions"] = self.dimensions
        try:
            response = self.client.embeddings.create(
                model=self.model_id, input=texts, encoding_format="float", **options
            )
        except openai.APIStatusError as exc:
            raise EmbeddingUnavailable(
                f"openai embeddings failed: HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.OpenAIError as exc:
            raise EmbeddingUnavailable(
                f"openai embeddings failed: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            rows = sorted(response.data, key=lambda item: item.index)
            return [row.embedding for row in rows]
        except (AttributeError, TypeError) as exc:
            raise EmbeddingUnavailable("openai embeddings returned an unexpected response") from exc
