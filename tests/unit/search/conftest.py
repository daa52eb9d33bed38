"""Fixtures for the search suite: a deterministic fake embedder, chunk builders, index factories.

The contract suite asks for ``open_index``; a new SearchIndex adapter joins it by adding its
name to ``INDEX_KINDS`` and a branch in ``_open``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from docket.embedding.port import Vectors
from docket.models import ChunkRecord, EmbeddingModelInfo, chunk_id_for, document_id_for
from docket.search.port import SearchIndex

MODEL = EmbeddingModelInfo(name="test-bag-of-words", version="1", dimension=64)
INDEX_KINDS = ["embedded"]

OpenIndex = Callable[..., SearchIndex]
MakeChunk = Callable[..., ChunkRecord]


class BagOfWordsEmbedder:
    """Signed feature hashing of lowercase words: texts that share words get a higher cosine."""

    def __init__(self, model: EmbeddingModelInfo = MODEL) -> None:
        self._model = model

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._model.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_query(text)
        return out

    def embed_query(self, text: str) -> Vectors:
        vector = np.zeros(self._model.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self._model.dimension] += 1.0 if (value >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def make_chunk_record(
    tenant: str,
    source: str,
    text: str,
    *,
    groups: Sequence[str] = (),
    ordinal: int = 0,
    title: str | None = None,
    section: str | None = None,
    chunk_id: str | None = None,
) -> ChunkRecord:
    document_id = document_id_for(tenant, source)
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_id=chunk_id or chunk_id_for(document_id, text),
        ordinal=ordinal,
        text=text,
        page_start=1,
        page_end=1,
        section=section,
        token_count=len(text.split()),
        source=source,
        title=title,
        acl_groups=list(groups),
    )


@pytest.fixture
def model() -> EmbeddingModelInfo:
    return MODEL


@pytest.fixture
def embedder() -> BagOfWordsEmbedder:
    return BagOfWordsEmbedder()


@pytest.fixture
def make_chunk() -> MakeChunk:
    return make_chunk_record


def _open(kind: str, root: Path, name: str, model: EmbeddingModelInfo) -> SearchIndex:
    if kind == "embedded":
        from docket.search.embedded import EmbeddedIndex

        return EmbeddedIndex(root / name, model)
    raise AssertionError(f"unknown index kind {kind}")


@pytest.fixture(params=INDEX_KINDS)
def open_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenIndex]:
    """``open_index(name="main", model=MODEL)`` opens (or reopens) the named index's storage."""
    opened: list[SearchIndex] = []

    def factory(name: str = "main", model: EmbeddingModelInfo = MODEL) -> SearchIndex:
        index = _open(request.param, tmp_path, name, model)
        opened.append(index)
        return index

    yield factory
    for index in opened:
        with contextlib.suppress(Exception):
            index.close()


@pytest.fixture
def index(open_index: OpenIndex) -> SearchIndex:
    return open_index()
