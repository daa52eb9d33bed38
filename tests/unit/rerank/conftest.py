"""Fixtures for the rerank suite: four fused hits and the services' recorded responses.

The files under recorded/ follow each API's documented wire format (Cohere v2 /rerank, the
Bedrock Rerank output shape, TEI's /rerank body); they are fixtures, not live captures, and the
same four candidates run through every adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from docket.models import ChunkRecord, SearchHit, chunk_id_for, document_id_for
from docket.rerank.factory import reset_rerankers

RECORDED = Path(__file__).parent / "recorded"
QUERY = "how much is reimbursed for meals on business trips?"

# (source, title, section, text): fused order A, B, C, D
CANDIDATES = [
    (
        "handbook.pdf",
        "Employee Handbook",
        "Leave",
        "Employees accrue 25 days of paid leave per year.",
    ),
    ("handbook.pdf", "Employee Handbook", None, "The office is closed on public holidays."),
    (
        "travel.pdf",
        "Travel Policy",
        "Per diem",
        "Meals abroad are reimbursed up to 60 EUR per day.",
    ),
    ("parking.txt", None, None, "Parking permits are issued by facilities."),
]
# what every adapter sends for CANDIDATES: the contextual header over the text
DOCUMENTS = [
    "Employee Handbook\nLeave\n\nEmployees accrue 25 days of paid leave per year.",
    "Employee Handbook\n\nThe office is closed on public holidays.",
    "Travel Policy\nPer diem\n\nMeals abroad are reimbursed up to 60 EUR per day.",
    "Parking permits are issued by facilities.",
]


def make_hit(
    text: str,
    *,
    rank: int,
    title: str | None = None,
    section: str | None = None,
    source: str = "doc.txt",
    tenant: str = "acme",
) -> SearchHit:
    """A fused ("hybrid") hit at ``rank``, as rrf_fuse makes them."""
    document_id = document_id_for(tenant, source)
    chunk = ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_id=chunk_id_for(document_id, text),
        ordinal=rank,
        text=text,
        page_start=1,
        page_end=1,
        section=section,
        source=source,
        title=title,
    )
    return SearchHit(
        chunk=chunk,
        score=1.0 / (60 + rank),
        retriever="hybrid",
        rank=rank,
        ranks={"bm25": rank, "knn": rank + 1},
        scores={"bm25": 10.0 - rank, "knn": 0.9 - rank / 10},
    )


@pytest.fixture
def hits() -> list[SearchHit]:
    return [
        make_hit(text, rank=i, title=title, section=section, source=source)
        for i, (source, title, section, text) in enumerate(CANDIDATES, start=1)
    ]


@pytest.fixture
def recorded() -> Callable[[str], Any]:
    """``recorded("cohere_rerank_v2")``: the parsed JSON of recorded/<name>.json."""

    def load(name: str) -> Any:
        return json.loads((RECORDED / f"{name}.json").read_text())

    return load


@pytest.fixture(autouse=True)
def _fresh_rerankers():
    reset_rerankers()
    yield
    reset_rerankers()


def texts(result: list[SearchHit]) -> list[str]:
    return [h.chunk.text for h in result]
