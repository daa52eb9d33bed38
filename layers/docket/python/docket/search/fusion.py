"""Reciprocal-rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

RRF needs only ranks, so BM25 scores (unbounded) and cosine similarities (in [-1, 1]) fuse
without calibration: ``score(chunk) = sum over retrievers r of weight_r / (k + rank_r(chunk))``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from docket.models import SearchHit

HYBRID_RETRIEVER = "hybrid"


def rrf_fuse(
    result_lists: Mapping[str, list[SearchHit]],
    k: int = 60,
    weights: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[SearchHit]:
    """Fuse ranked lists keyed by retriever name into one list of ``retriever="hybrid"`` hits.

    A hit's rank in a list is its position (1-based); a chunk listed twice by one retriever
    counts once, at its best position. Retrievers missing from ``weights`` weigh 1.0. Each
    fused hit carries every contributing retriever's rank and raw score in ``ranks`` and
    ``scores``. Ties (equal fused scores) go to the chunk with the better best rank, then to
    the lower (tenant, chunk id), so the order never depends on dict or thread ordering.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    weights = weights or {}
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError(f"weights must be finite and >= 0, got {dict(weights)}")
    if limit is not None and limit <= 0:
        return []

    chunks: dict[tuple[str, str], SearchHit] = {}
    ranks: dict[tuple[str, str], dict[str, int]] = {}
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for retriever in sorted(result_lists):
        for position, hit in enumerate(result_lists[retriever], start=1):
            key = (hit.chunk.tenant, hit.chunk.chunk_id)
            seen = ranks.setdefault(key, {})
            if retriever in seen:
                continue
            seen[retriever] = position
            scores.setdefault(key, {})[retriever] = hit.score
            chunks.setdefault(key, hit)

    fused: list[tuple[float, int, tuple[str, str]]] = []
    for key, by_retriever in ranks.items():
        # fsum is exactly rounded, so equal rank multisets give bit-equal scores in any order
        score = math.fsum(weights.get(r, 1.0) / (k + rank) for r, rank in by_retriever.items())
        fused.append((score, min(by_retriever.values()), key))
    fused.sort(key=lambda item: (-item[0], item[1], item[2]))
    if limit is not None:
        fused = fused[:limit]
    return [
        SearchHit(
            chunk=chunks[key].chunk,
            score=score,
            retriever=HYBRID_RETRIEVER,
            rank=position,
            ranks=dict(sorted(ranks[key].items())),
            scores=dict(sorted(scores[key].items())),
        )
        for position, (score, _, key) in enumerate(fused, start=1)
    ]
