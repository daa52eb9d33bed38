"""The embedding port: every provider (local ONNX, Bedrock, SageMaker, OpenAI...) implements it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from docket.models import EmbeddingModelInfo

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    @property
    def model(self) -> EmbeddingModelInfo:
        """Name, version and dimension; stored with every vector and every index."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Shape (len(texts), dimension), float32, L2-normalised."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """Shape (dimension,), float32, L2-normalised."""
        ...
