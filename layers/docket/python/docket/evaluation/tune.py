"""``docket eval tune``: fit an index's fusion parameters on its owner's golden set.

The owner's questions and judgements come as a BEIR folder (``queries.jsonl``,
``qrels/SPLIT.tsv``; ``corpus.jsonl`` only with ``--build``). Each question is retrieved once
(BM25 and k-NN candidates at the query path's depth, and BM25's matched terms); every candidate
fusion then re-ranks those lists offline, so the grid costs no further searches.

Small golden sets overfit, so the fit is checked before it is kept: the questions are split into
two fixed halves (by a hash of their ids), the best candidate on one half is scored on the other
and vice versa, and the tuned parameters are stored only when this cross-validated figure beats
the defaults' on the same questions by ``min_gain``. Otherwise the index keeps (or returns to) the
defaults. What is stored travels with the index (the embedded index's manifest, OpenSearch's
``_meta``) and the query path reads it when it builds its retriever
(``docket.search.retrieval.fusion_for``).
"""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from docket.evaluation.beir import BeirDataset
from docket.evaluation.metrics import evaluate, per_query
from docket.evaluation.retrieval import documents_in_order
from docket.models import SearchFilter, SearchHit
from docket.search.fusion import Fusion, TermMatches, dense_level
from docket.search.retrieval import HybridRetriever

# A golden set smaller than this says too little to fit anything.
MIN_QUESTIONS = 20
# The cross-validated gain over the defaults (mean nDCG@10) a fit must show to be kept.
MIN_GAIN = 0.002

Progress = Callable[[int, int], None]


class TuneError(ValueError):
    """The golden set cannot be used to tune (too few questions, documents not in the index)."""


@dataclass(frozen=True)
class QueryLists:
    """One question's candidates, as the query path retrieves them before fusing."""

    bm25: list[SearchHit]
    knn: list[SearchHit]
    terms: TermMatches | None


def collect(
    retriever: HybridRetriever,
    dataset: BeirDataset,
    flt: SearchFilter,
    *,
    progress: Progress | None = None,
) -> dict[str, QueryLists]:
    """BM25 and k-NN candidates (the retriever's candidate depth) for every judged question."""
    retriever.check_model()
    index, depth = retriever.index, retriever.candidate_k
    out: dict[str, QueryLists] = {}
    for done, (query_id, text) in enumerate(dataset.queries.items(), start=1):
        bm25 = index.search_bm25(text, flt, depth) if text.strip() else []
        knn = (
            index.search_knn(retriever.embedder.embed_query(text), flt, depth)
            if text.strip()
            else []
        )
        terms = index.query_term_matches(text, bm25) if bm25 else None
        out[query_id] = QueryLists(bm25=bm25, knn=knn, terms=terms)
        if progress:
            progress(done, len(dataset.queries))
    return out


def fused_run(
    fusion: Fusion,
    lists: Mapping[str, QueryLists],
    depth: int,
    *,
    ignore_identical_ids: bool = False,
) -> dict[str, list[str]]:
    """Each question's documents (by their chunks' ``source``) in ``fusion``'s order."""
    run: dict[str, list[str]] = {}
    for query_id, item in lists.items():
        hits = fusion.fuse({"bm25": item.bm25, "knn": item.knn}, depth=depth, terms=item.terms)
        ranking = documents_in_order(hits, lambda hit: str(hit.chunk.source))
        if ignore_identical_ids:
            ranking = [doc for doc in ranking if doc != query_id]
        run[query_id] = ranking
    return run


def single_run(
    lists: Mapping[str, QueryLists], retriever: str, *, ignore_identical_ids: bool = False
) -> dict[str, list[str]]:
    """One retriever's own ranking (``bm25`` or ``knn``), for the table."""
    run = {}
    for query_id, item in lists.items():
        hits = item.bm25 if retriever == "bm25" else item.knn
        ranking = documents_in_order(hits, lambda hit: str(hit.chunk.source))
        run[query_id] = [d for d in ranking if not (ignore_identical_ids and d == query_id)]
    return run


def candidates(base: Fusion, lists: Mapping[str, QueryLists]) -> list[Fusion]:
    """The grid: the BM25 base weight, how strongly it follows k-NN's cosine level (and, for a
    model without a calibrated pivot, where that level is centred: the quartiles of this golden
    set's own levels), and coordination matching on or off."""
    if base.dense_pivot is not None:
        pivots: list[float | None] = [base.dense_pivot]
    else:
        levels = sorted(
            level for item in lists.values() if (level := dense_level(item.knn)) is not None
        )
        quartiles = statistics.quantiles(levels, n=4) if len(levels) >= 4 else []
        pivots = [None, *(round(q, 3) for q in quartiles)]
    grid = []
    for weight, slope, pivot, coordination in itertools.product(
        (0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
        (0.0, 1.0, 2.0, 4.0),
        pivots,
        sorted({0, base.coordination_max_documents or 10}),
    ):
        if pivot is None and slope:
            continue  # a slope needs a pivot
        grid.append(
            base.model_copy(
                update={
                    "bm25_weight": weight,
                    "dense_slope": slope,
                    "dense_pivot": pivot if slope else base.dense_pivot,
                    "coordination_max_documents": coordination,
                }
            )
        )
    unique = {f.model_dump_json(): f for f in grid}
    return list(unique.values())


def half_of(query_id: str) -> int:
    """A fixed half (0 or 1) for a question id: the same split in every run."""
    return int(hashlib.sha256(query_id.encode()).hexdigest(), 16) % 2


class TuneRow(BaseModel):
    name: str
    ndcg10: float
    recall100: float


class TuneReport(BaseModel):
    questions: int
    candidates: int
    default: dict[str, Any]
    best: dict[str, Any]
    table: list[TuneRow]
    cv_default: float = Field(description="mean nDCG@10 of the defaults, each half scored")
    cv_tuned: float = Field(
        description="mean nDCG@10 when each half is ranked by the fusion fitted on the other"
    )
    kept: bool = Field(description="the fit beat the defaults by min_gain across the halves")
    reason: str

    def stored(self, dataset: str) -> dict[str, Any]:
        """What goes with the index when the fit is kept."""
        return {
            "fusion": self.best,
            "golden_set": dataset,
            "questions": self.questions,
            "ndcg10_default": round(self.table[2].ndcg10, 4),
            "ndcg10_tuned": round(self.table[3].ndcg10, 4),
            "cv_default": round(self.cv_default, 4),
            "cv_tuned": round(self.cv_tuned, 4),
            "tuned_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def _mean(scores: Mapping[str, float], ids: Iterable[str]) -> float:
    values = [scores.get(q, 0.0) for q in ids]
    return statistics.fmean(values) if values else 0.0


def tune(
    lists: Mapping[str, QueryLists],
    qrels: Mapping[str, Mapping[str, int]],
    base: Fusion,
    depth: int,
    *,
    ignore_identical_ids: bool = False,
    min_gain: float = MIN_GAIN,
    min_questions: int = MIN_QUESTIONS,
) -> TuneReport:
    """Fit the fusion on the golden set and decide, by two-fold cross-validation, whether the
    fit is worth keeping over ``base`` (the defaults)."""
    judged = [q for q in lists if any(g > 0 for g in qrels.get(q, {}).values())]
    if len(judged) < min_questions:
        raise TuneError(
            f"the golden set has {len(judged)} questions with a relevant document; at least "
            f"{min_questions} are needed to fit fusion parameters"
        )
    lists = {q: lists[q] for q in judged}
    grid = candidates(base, lists)
    per: list[dict[str, float]] = []
    for fusion in grid:
        run = fused_run(fusion, lists, depth, ignore_identical_ids=ignore_identical_ids)
        per.append(per_query(run, qrels)["ndcg@10"])
    base_run = fused_run(base, lists, depth, ignore_identical_ids=ignore_identical_ids)
    base_scores = per_query(base_run, qrels)["ndcg@10"]
    halves = [[q for q in judged if half_of(q) == h] for h in (0, 1)]
    cv_tuned_parts: list[float] = []
    cv_default_parts: list[float] = []
    for fit, held in ((halves[0], halves[1]), (halves[1], halves[0])):
        if not fit or not held:
            continue
        chosen = max(range(len(grid)), key=lambda i: (_mean(per[i], fit), -i))
        cv_tuned_parts.extend(per[chosen].get(q, 0.0) for q in held)
        cv_default_parts.extend(base_scores.get(q, 0.0) for q in held)
    cv_tuned = statistics.fmean(cv_tuned_parts) if cv_tuned_parts else 0.0
    cv_default = statistics.fmean(cv_default_parts) if cv_default_parts else 0.0
    best_index = max(range(len(grid)), key=lambda i: (_mean(per[i], judged), -i))
    best = grid[best_index]
    kept = cv_tuned - cv_default >= min_gain
    reason = f"cross-validated nDCG@10 {cv_tuned:.4f} vs the defaults' {cv_default:.4f}: " + (
        "kept" if kept else f"a gain under {min_gain} is noise, the defaults stay"
    )

    def row(name: str, run: dict[str, list[str]]) -> TuneRow:
        metrics = evaluate(run, qrels)
        return TuneRow(name=name, ndcg10=metrics["ndcg@10"], recall100=metrics["recall@100"])

    table = [
        row("bm25", single_run(lists, "bm25", ignore_identical_ids=ignore_identical_ids)),
        row("dense", single_run(lists, "knn", ignore_identical_ids=ignore_identical_ids)),
        row("hybrid, defaults", base_run),
        row(
            "hybrid, tuned",
            fused_run(best, lists, depth, ignore_identical_ids=ignore_identical_ids),
        ),
    ]
    return TuneReport(
        questions=len(judged),
        candidates=len(grid),
        default=base.stored(),
        best=best.stored(),
        table=table,
        cv_default=cv_default,
        cv_tuned=cv_tuned,
        kept=kept,
        reason=reason,
    )
