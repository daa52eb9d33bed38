"""A test fake for the embedding port: feature hashing, no model, no dependencies beyond NumPy."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from docket.embedding.port import Vectors
from docket.models import EmbeddingModelInfo

_WORD = re.compile(r"\w+")
_WORD_WEIGHT = 1.0
_TRIGRAM_WEIGHT = 0.5
_EMPTY_FEATURE = "\x00empty"


class HashingEmbedder:
    """FAKE embedder for unit tests: deterministic feature hashing, not a language model.

    Lowercased word tokens and their character trigrams (with word-boundary marks) are hashed
    with BLAKE2b (stable across processes, unlike ``hash()``) into ``dimension`` signed buckets,
    then L2-normalised. Texts that share words or word pieces get similar vectors, which is
    enough to exercise indexing and retrieval without the real model; it knows nothing of
    meaning. A text without any word gets a fixed unit vector so every output is normalised.
    """

    def __init__(self, dimension: int = 64) -> None:
        if dimension < 1:
            raise ValueError("dimension must be at least 1")
        self._model = EmbeddingModelInfo(name="docket/hashing", version="1", dimension=dimension)

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a sequence of texts, not one string")
        vectors = np.zeros((len(texts), self._model.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            vectors[row] = self._embed(text)
        return vectors

    def embed_query(self, text: str) -> Vectors:
        return self._embed(text)

    def _embed(self, text: str) -> Vectors:
        vector = np.zeros(self._model.dimension, dtype=np.float64)
        words = _WORD.findall(text.lower())
        for word in words:
            self._add(vector, "w:" + word, _WORD_WEIGHT)
            marked = f"<{word}>"
            for i in range(len(marked) - 2):
                self._add(vector, "c:" + marked[i : i + 3], _TRIGRAM_WEIGHT)
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no words, or every feature cancelled out
            vector[:] = 0.0
            self._add(vector, _EMPTY_FEATURE, 1.0)
            norm = 1.0
        return (vector / norm).astype(np.float32)

    def _add(self, vector: np.ndarray, feature: str, weight: float) -> None:
        digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
        sign = 1.0 if digest & 1 else -1.0
        vector[(digest >> 1) % self._model.dimension] += sign * weight
