"""Builders for the answer suite: chunks and search hits with the fields the answerer reads."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from docket.models import ChunkRecord, SearchHit, chunk_id_for, document_id_for

TENANT = "acme"

MakeHit = Callable[..., SearchHit]


def make_chunk(
    text: str,
    *,
    source: str = "handbook.pdf",
    title: str | None = "Employee handbook",
    page_start: int = 1,
    page_end: int | None = None,
    ordinal: int = 0,
) -> ChunkRecord:
    document_id = document_id_for(TENANT, source)
    return ChunkRecord(
        tenant=TENANT,
        document_id=document_id,
        chunk_id=chunk_id_for(document_id, text),
        ordinal=ordinal,
        text=text,
        page_start=page_start,
        page_end=page_end if page_end is not None else page_start,
        source=source,
        title=title,
    )


def make_hit(
    text: str,
    *,
    rank: int = 1,
    bm25: float | None = None,
    knn: float | None = None,
    bm25_rank: int | None = None,
    knn_rank: int | None = None,
    **chunk_fields: object,
) -> SearchHit:
    """A fused hit as the search layer returns it: raw scores and 1-based ranks per retriever."""
    scores = {name: value for name, value in (("bm25", bm25), ("knn", knn)) if value is not None}
    ranks = {
        name: value for name, value in (("bm25", bm25_rank), ("knn", knn_rank)) if value is not None
    }
    return SearchHit(
        chunk=make_chunk(text, **chunk_fields),  # type: ignore[arg-type]
        score=1.0 / (60 + rank),
        retriever="hybrid",
        rank=rank,
        ranks=ranks,
        scores=scores,
    )


@pytest.fixture
def hit() -> MakeHit:
    return make_hit
