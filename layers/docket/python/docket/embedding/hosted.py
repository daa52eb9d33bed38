"""What every hosted embedding adapter shares: batching to the provider's limits, and checking
and L2-normalising what comes back.

A provider that answers with the wrong number of vectors, a vector of another dimension than the
one declared, or a zero or non-finite vector is not trusted: those vectors would be indexed (and
the index's model check compares only the declared ``EmbeddingModelInfo``). A wrong dimension is
a configuration error (the declared dimension or model is wrong, retrying cannot help); the rest
is ``EmbeddingUnavailable``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from docket.embedding.port import Vectors
from docket.errors import ConfigurationError, EmbeddingUnavailable
from docket.models import EmbeddingModelInfo

InputType = Literal["document", "query"]

# Model dimensions the adapters know by name (a model not listed needs DOCKET_EMBEDDING_DIMENSIONS).
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "embed-v4.0": 1536,
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
    "amazon.titan-embed-text-v2:0": 1024,
    "amazon.titan-embed-text-v1": 1536,
    "sentence-transformers/all-MiniLM-L6-v2": 384,
    "BAAI/bge-small-en-v1.5": 384,
    "BAAI/bge-base-en-v1.5": 768,
    "BAAI/bge-large-en-v1.5": 1024,
}


def model_dimension(model: str, dimensions: int | None) -> int:
    """``dimensions`` when given, else the model's known dimension, else a ConfigurationError."""
    if dimensions is not None:
        if dimensions < 1:
            raise ConfigurationError(f"embedding dimensions must be positive, got {dimensions}")
        return dimensions
    known = KNOWN_DIMENSIONS.get(model)
    if known is None:
        raise ConfigurationError(
            f"the dimension of embedding model {model!r} is not known: "
            "set DOCKET_EMBEDDING_DIMENSIONS"
        )
    return known


class HostedEmbedder(ABC):
    """An ``Embedder`` over a remote model; subclasses send one batch (``_embed_batch``).

    ``batch_size`` caps the texts per request and ``max_batch_chars`` their total length (a
    provider's per-request token limit, estimated from characters); a single text longer than
    that still goes alone, for the provider to truncate or refuse.
    """

    provider: str = "hosted"

    def __init__(
        self,
        model: str,
        dimension: int,
        *,
        batch_size: int,
        max_batch_chars: int | None = None,
        version: str = "1",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_id = model
        self.batch_size = batch_size
        self.max_batch_chars = max_batch_chars
        self._model = EmbeddingModelInfo(
            name=f"{self.provider}:{model}", version=version, dimension=dimension
        )

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        dimension = self._model.dimension
        out = np.empty((len(texts), dimension), dtype=np.float32)
        start = 0
        for batch in self.batches(texts):
            out[start : start + len(batch)] = self._checked(
                self._embed_batch(batch, "document"), len(batch)
            )
            start += len(batch)
        return out

    def embed_query(self, text: str) -> Vectors:
        return self._checked(self._embed_batch([text], "query"), 1)[0]

    def batches(self, texts: Sequence[str]) -> Iterator[list[str]]:
        """``texts`` in order, cut at ``batch_size`` texts or ``max_batch_chars`` characters."""
        batch: list[str] = []
        chars = 0
        for text in texts:
            full = len(batch) >= self.batch_size
            too_long = self.max_batch_chars is not None and chars + len(text) > self.max_batch_chars
            if batch and (full or too_long):
                yield batch
                batch, chars = [], 0
            batch.append(text)
            chars += len(text)
        if batch:
            yield batch

    @abstractmethod
    def _embed_batch(self, texts: list[str], input_type: InputType) -> Any:
        """One request: a (len(texts), dimension) array-like of floats, raw from the provider."""

    def _checked(self, raw: Any, count: int) -> Vectors:
        try:
            matrix = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise EmbeddingUnavailable(f"{self._model.name} returned non-numeric vectors") from exc
        if matrix.ndim != 2 or matrix.shape[0] != count:
            raise EmbeddingUnavailable(
                f"{self._model.name} returned {matrix.shape} for {count} texts"
            )
        if matrix.shape[1] != self._model.dimension:
            raise ConfigurationError(
                f"{self._model.name} returned vectors of dimension {matrix.shape[1]}, "
                f"not the configured {self._model.dimension}"
            )
        return l2_normalised(matrix, self._model.name)


def l2_normalised(matrix: np.ndarray, name: str) -> Vectors:
    """Rows scaled to unit length as float32; a zero or non-finite row is the provider's error."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0.0):
        raise EmbeddingUnavailable(f"{name} returned a zero or non-finite vector")
    return (matrix / norms).astype(np.float32)
