"""Fusing ranked lists from BM25 and k-NN into one.

Two methods:

- Reciprocal-rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009) needs only ranks, so BM25
  scores (unbounded) and cosine similarities (in [-1, 1]) fuse without calibration:
  ``score(chunk) = sum over retrievers r of weight_r / (k + rank_r(chunk))``. It ignores how far
  apart the scores are, so a weak retriever's confident-looking noise counts as much as the other
  one's clear winner: on corpora where one retriever is much weaker, RRF falls below the better
  retriever alone.
- Distribution-based score fusion (the default) normalises each retriever's scores by their mean
  and spread for this very query and adds them, weighted: score-aware and adaptive per query.

docs/retrieval.md has the measurements behind the default.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

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


# Retrievers whose score for a chunk they did not return is known: BM25 gives 0 to a chunk that
# shares no term with the query. Their candidate lists are padded with that score to full depth
# before normalising, so a query that only a handful of chunks match (a rare identifier) keeps
# those chunks far above the rest instead of being normalised into an ordinary spread.
KNOWN_FLOORS: dict[str, float] = {"bm25": 0.0}


def dbsf_fuse(
    result_lists: Mapping[str, list[SearchHit]],
    depth: int,
    weights: Mapping[str, float] | None = None,
    floors: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[SearchHit]:
    """Distribution-based score fusion: each retriever's scores are normalised by their own
    spread for this query, ``(s - (mean - 3 sd)) / (6 sd)``, and the weighted sum ranks.

    Unlike RRF, the fused order sees *how much* better a chunk scored than its competitors: a
    retriever whose top hit stands far above its other candidates (a confident match) outweighs
    one whose candidates are all alike (no real match), query by query. A chunk missing from a
    list gets nothing from it. ``depth`` is the candidate depth each retriever was asked for;
    lists of retrievers in ``floors`` are padded to it with their floor score (see
    ``KNOWN_FLOORS``). Ties, hit fields and ordering rules are as in ``rrf_fuse``.
    """
    weights = weights or {}
    floors = KNOWN_FLOORS if floors is None else floors
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError(f"weights must be finite and >= 0, got {dict(weights)}")
    if limit is not None and limit <= 0:
        return []

    chunks: dict[tuple[str, str], SearchHit] = {}
    ranks: dict[tuple[str, str], dict[str, int]] = {}
    scores: dict[tuple[str, str], dict[str, float]] = {}
    fused: dict[tuple[str, str], list[float]] = {}
    for retriever in sorted(result_lists):
        hits = result_lists[retriever]
        if not hits:
            continue
        values = [hit.score for hit in hits]
        if retriever in floors and len(values) < depth:
            values += [floors[retriever]] * (depth - len(values))
        mean = math.fsum(values) / len(values)
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
        if sd <= 0.0 or not math.isfinite(sd):
            sd = 1.0  # all candidates alike: every one gets the same middle score
        low = mean - 3.0 * sd
        weight = weights.get(retriever, 1.0)
        for position, hit in enumerate(hits, start=1):
            key = (hit.chunk.tenant, hit.chunk.chunk_id)
            seen = ranks.setdefault(key, {})
            if retriever in seen:
                continue
            seen[retriever] = position
            scores.setdefault(key, {})[retriever] = hit.score
            chunks.setdefault(key, hit)
            fused.setdefault(key, []).append(weight * (hit.score - low) / (6.0 * sd))

    ordered = sorted(
        ((math.fsum(parts), min(ranks[key].values()), key) for key, parts in fused.items()),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    if limit is not None:
        ordered = ordered[:limit]
    return [
        SearchHit(
            chunk=chunks[key].chunk,
            score=score,
            retriever=HYBRID_RETRIEVER,
            rank=position,
            ranks=dict(sorted(ranks[key].items())),
            scores=dict(sorted(scores[key].items())),
        )
        for position, (score, _, key) in enumerate(ordered, start=1)
    ]


class TermMatches(BaseModel):
    """Which query terms each BM25 hit contains, for coordination-level matching.

    ``weights``: every analysed query term the index knows, with its IDF (a term no chunk holds
    is left out, so a typo does not make full coverage impossible). ``matched[i]``: the query
    terms that the i-th BM25 hit contains (its header and text).
    """

    model_config = ConfigDict(frozen=True)

    weights: dict[str, float]
    matched: list[frozenset[str]]


def fully_covered_documents(
    bm25_hits: list[SearchHit], terms: TermMatches, max_documents: int
) -> set[tuple[str, str]]:
    """(tenant, document id) of the documents whose BM25 candidates, together, contain every
    query term, when there are between 1 and ``max_documents`` of them; otherwise none.

    Coordination-level matching (Salton): a document that contains every term of a
    multi-term query is, for an exact-term look-up, better evidence than any score. When only
    a few do, they are what the query names; when many do, the signal says nothing. Chunks of
    one document pool their terms, since a document's terms are often split across chunks.
    """
    if max_documents <= 0 or len(terms.weights) < 2 or not bm25_hits:
        return set()
    pooled: dict[tuple[str, str], set[str]] = {}
    for hit, matched in zip(bm25_hits, terms.matched, strict=False):
        pooled.setdefault((hit.chunk.tenant, hit.chunk.document_id), set()).update(matched)
    wanted = set(terms.weights)
    full = {doc for doc, found in pooled.items() if wanted <= found}
    return full if 1 <= len(full) <= max_documents else set()


def _promote(hits: list[SearchHit], documents: set[tuple[str, str]]) -> list[SearchHit]:
    """Hits of ``documents`` first (each side keeps its order), ranks renumbered."""
    if not documents:
        return hits
    first = [h for h in hits if (h.chunk.tenant, h.chunk.document_id) in documents]
    rest = [h for h in hits if (h.chunk.tenant, h.chunk.document_id) not in documents]
    return [h.model_copy(update={"rank": i}) for i, h in enumerate(first + rest, start=1)]


FusionMethod = Literal["dbsf", "rrf"]

# The k-NN cosine level (mean of the best LEVEL_DEPTH chunks) at which the base weights apply,
# per embedding model: where a model's best matches sit above it, the query is one the model
# reads well and k-NN gets more weight; below it (bags of rare words, typos, jargon the model
# never saw) BM25 does. A cosine level means something only for the model that produced it, so
# a model without an entry gets fixed weights unless `docket eval tune` fits one for its index.
# Fit on SciFact train, the derived SciFact sets and a fixed half of ArguAna and MS MARCO mini
# (bench/fusion_study.py, docs/retrieval.md).
DENSE_PIVOTS: dict[str, float] = {
    "sentence-transformers/all-MiniLM-L6-v2": 0.55,
}
LEVEL_DEPTH = 10


def dense_level(knn_hits: list[SearchHit], depth: int = LEVEL_DEPTH) -> float | None:
    """Mean raw k-NN score (cosine) of the best ``depth`` hits, or None without hits."""
    scores = [hit.score for hit in knn_hits[:depth]]
    return math.fsum(scores) / len(scores) if scores else None


class Fusion(BaseModel):
    """How the query path fuses BM25 and k-NN candidates (see docs/retrieval.md for the
    measurements on SciFact, ArguAna and MS MARCO mini, and what else was tried).

    The BM25 weight is set per query: ``bm25_weight - dense_slope * (level - dense_pivot)``,
    clipped to ``[min_weight, 1 - min_weight]``, where ``level`` is the mean cosine of k-NN's
    best ten chunks. Without a pivot (an embedding model with no calibration) the weights are
    fixed at ``bm25_weight``.
    """

    model_config = ConfigDict(frozen=True)

    method: FusionMethod = "dbsf"
    bm25_weight: float = Field(default=0.5, ge=0.0, le=1.0)  # k-NN gets 1 - bm25_weight
    rrf_k: int = Field(default=60, ge=1)
    # coordination-level matching: when 1..N documents contain every query term, they go first
    # (0 turns it off); see fully_covered_documents
    coordination_max_documents: int = Field(default=10, ge=0)
    # per-query weights from the k-NN cosine level (None: fixed weights)
    dense_pivot: float | None = Field(default=None, ge=-1.0, le=1.0)
    dense_slope: float = Field(default=2.0, ge=0.0, le=20.0)
    min_weight: float = Field(default=0.1, ge=0.0, le=0.5)

    @property
    def weights(self) -> dict[str, float]:
        return {"bm25": self.bm25_weight, "knn": 1.0 - self.bm25_weight}

    def weights_for(self, knn_hits: list[SearchHit]) -> dict[str, float]:
        """This query's weights: adapted to the k-NN cosine level when a pivot is set."""
        level = dense_level(knn_hits) if self.dense_pivot is not None else None
        if level is None or self.dense_pivot is None or self.dense_slope == 0.0:
            return self.weights
        raw = self.bm25_weight - self.dense_slope * (level - self.dense_pivot)
        bm25 = min(1.0 - self.min_weight, max(self.min_weight, raw))
        return {"bm25": bm25, "knn": 1.0 - bm25}

    def fuse(
        self,
        result_lists: Mapping[str, list[SearchHit]],
        depth: int,
        limit: int | None = None,
        terms: TermMatches | None = None,
    ) -> list[SearchHit]:
        """Fused hits; ``terms`` (BM25's matched query terms) enables coordination promotion."""
        promote = (
            fully_covered_documents(
                result_lists.get("bm25", []), terms, self.coordination_max_documents
            )
            if terms is not None
            else set()
        )
        cut = None if promote else limit
        weights = self.weights_for(result_lists.get("knn", []))
        if self.method == "rrf":
            # RRF's weights are relative: 0.5/0.5 is plain RRF scaled, the same order
            fused = rrf_fuse(result_lists, k=self.rrf_k, weights=weights, limit=cut)
        else:
            fused = dbsf_fuse(result_lists, depth=depth, weights=weights, limit=cut)
        fused = _promote(fused, promote)
        return fused[:limit] if limit is not None else fused

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {
            "method": self.method,
            "bm25_weight": self.bm25_weight,
            "coordination_max_documents": self.coordination_max_documents,
            "dense_pivot": self.dense_pivot,
        }
        if self.dense_pivot is not None:
            out["dense_slope"] = self.dense_slope
            out["min_weight"] = self.min_weight
        if self.method == "rrf":
            out["rrf_k"] = self.rrf_k
        return out

    def stored(self) -> dict[str, object]:
        """Every parameter, as kept with an index (``docket eval tune``)."""
        return self.model_dump()


def default_pivot(model_name: str) -> float | None:
    """The calibrated k-NN cosine pivot of an embedding model, None when it has none."""
    return DENSE_PIVOTS.get(model_name)
