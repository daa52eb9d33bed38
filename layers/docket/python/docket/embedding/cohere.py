"""Cohere embeddings (v2 embed API) through the ``cohere`` SDK, imported on first use.

Cohere's models embed documents and queries differently (``input_type`` search_document vs
search_query): the port's ``embed_documents``/``embed_query`` map onto them. At most 96 texts a
request (the API's limit); texts over the model's window are cut at the end (``truncate="END"``)
rather than refused. Tests drive the real SDK over an injected ``httpx.Client``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docket.embedding.hosted import HostedEmbedder, InputType, model_dimension
from docket.errors import ConfigurationError, EmbeddingUnavailable

if TYPE_CHECKING:
    import httpx

DEFAULT_COHERE_EMBEDDING_MODEL = "embed-english-v3.0"
MAX_TEXTS_PER_REQUEST = 96
_INPUT_TYPES = {"document": "search_document", "query": "search_query"}


class CohereEmbedder(HostedEmbedder):
    """Embeds with a Cohere embed model (float vectors).

    ``dimensions`` is sent as ``output_dimension`` (embed-v4.0 offers 256, 512, 1024, 1536) only
    when given. ``client`` (a ``cohere.ClientV2`` or anything with its ``embed``) is used as
    given; otherwise one is built on first use. The SDK retries 429 and 5xx itself.
    """

    provider = "cohere"

    def __init__(
        self,
        model: str = DEFAULT_COHERE_EMBEDDING_MODEL,
        *,
        api_key: str | None = None,
        dimensions: int | None = None,
        client: Any | None = None,
        httpx_client: httpx.Client | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
        batch_size: int = MAX_TEXTS_PER_REQUEST,
    ) -> None:
        if client is None and not api_key:
            raise ConfigurationError("Cohere embeddings need an API key (DOCKET_COHERE_API_KEY)")
        if not 1 <= batch_size <= MAX_TEXTS_PER_REQUEST:
            raise ValueError(f"batch_size must be in 1..{MAX_TEXTS_PER_REQUEST}")
        super().__init__(model, model_dimension(model, dimensions), batch_size=batch_size)
        self.dimensions = dimensions
        self._client = client
        self._api_key = api_key
        self._httpx_client = httpx_client
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._max_retries = max_retries

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
                timeout=self._timeout_s,
                max_retries=self._max_retries,
                **options,
            )
        return self._client

    def _embed_batch(self, texts: list[str], input_type: InputType) -> Any:
        import httpx
        from cohere.core.api_error import ApiError
        from cohere.core.parse_error import ParsingError

        options: dict[str, Any] = {}
        if self.dimensions is not None:
            options["output_dimension"] = self.dimensions
        try:
            response = self.client.embed(
                model=self.model_id,
                input_type=_INPUT_TYPES[input_type],
                texts=texts,
                embedding_types=["float"],
                truncate="END",
                **options,
            )
        except ApiError as exc:
            raise EmbeddingUnavailable(
                f"cohere embed failed: HTTP {exc.status_code}: {_message(exc.body)}"
            ) from exc
        except (ParsingError, httpx.HTTPError) as exc:
            raise EmbeddingUnavailable(f"cohere embed failed: {type(exc).__name__}: {exc}") from exc
        vectors = getattr(getattr(response, "embeddings", None), "float_", None)
        if vectors is None:
            raise EmbeddingUnavailable("cohere embed returned no float embeddings")
        return vectors


def _message(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:300]
