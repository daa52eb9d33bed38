"""Fixtures for the search suite: a deterministic fake embedder, chunk builders, index factories.

The contract suite (tests/search_contract.py) asks for ``open_index`` and ``index_backend``; an
in-process SearchIndex adapter joins it by adding its name to ``INDEX_KINDS`` and a branch in
``_open``. Adapters that need a server run it under tests/integration (sockets are blocked here).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.search_contract import (
    MODEL,
    Backend,
    BagOfWordsEmbedder,
    MakeChunk,
    OpenIndex,
    make_chunk_record,
)

from docket.models import EmbeddingModelInfo
from docket.search.port import SearchIndex

__all__ = ["MODEL", "BagOfWordsEmbedder", "MakeChunk", "OpenIndex", "make_chunk_record"]

INDEX_KINDS = ["embedded"]


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


@pytest.fixture
def index_backend() -> Backend:
    return Backend("embedded")
