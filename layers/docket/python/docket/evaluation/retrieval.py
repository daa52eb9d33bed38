"""``docket eval retrieval``: every mode of the query path over a BEIR dataset, with metrics.

Modes are the query path's own: ``bm25``, ``dense``, ``hybrid`` (both, fused) and
``hybrid+rerank`` (the configured reranker over the fused candidates; reported as skipped when
none is configured, never with a made-up score). Each query is retrieved under the eval tenant's
filter exactly as ``POST /query`` would, ``depth`` chunks deep; chunks are mapped to their corpus
documents, keeping each document's best position, and the document ranking is scored.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from docket.evaluation.beir import BeirDataset
from docket.evaluation.metrics import evaluate, per_query
from docket.models import SearchFilter, SearchHit
from docket.search.retrieval import HybridRetriever

MODES: tuple[str, ...] = ("bm25", "dense", "hybrid", "hybrid+rerank")
# Chunks retrieved per query: SciFact documents are ~1.8 chunks, so 300 chunks give the 100+
# distinct documents that Recall@100 needs.
DEFAULT_DEPTH = 300


class ModeResult(BaseModel):
    mode: str
    skipped: str | None = None  # why the mode did not run
    metrics: dict[str, float] = Field(default_factory=dict)
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None
    # the same, without embedding the query (search + fusion + rerank only)
    search_ms_p50: float | None = None
    search_ms_p95: float | None = None
    per_query: dict[str, dict[str, float]] = Field(default_factory=dict, exclude=True)
    run: dict[str, list[str]] = Field(default_factory=dict, exclude=True)

    def flat(self) -> dict[str, Any]:
        """The shape of ``--json``'s ``modes.<mode>``."""
        if self.skipped:
            return {"skipped": self.skipped}
        out: dict[str, Any] = {k: round(v, 4) for k, v in self.metrics.items()}
        for key in ("latency_ms_p50", "latency_ms_p95", "search_ms_p50", "search_ms_p95"):
            out[key] = round(getattr(self, key), 2)
        return out


def documents_in_order(
    hits: Sequence[SearchHit], corpus_id: Callable[[SearchHit], str]
) -> list[str]:
    """Corpus ids by their best chunk's position (a document is as good as its best chunk)."""
    seen: dict[str, None] = {}
    for hit in hits:
        seen.setdefault(corpus_id(hit), None)
    return list(seen)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def run_mode(
    mode: str,
    dataset: BeirDataset,
    retriever: HybridRetriever,
    flt: SearchFilter,
    corpus_id: Callable[[SearchHit], str],
    *,
    depth: int = DEFAULT_DEPTH,
    reranker: Any = None,
    rerank_candidates: int = 50,
    ignore_identical_ids: bool = False,
) -> ModeResult:
    """One mode over every query. ``ignore_identical_ids`` (BEIR's rule for corpora whose
    queries are documents too, such as ArguAna): a retrieved document whose id equals the query
    id is dropped from the ranking before scoring."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == "hybrid+rerank" and reranker is None:
        return ModeResult(
            mode=mode,
            skipped="no reranker configured (DOCKET_RERANK_PROVIDER=cohere|bedrock|sagemaker)",
        )
    base_mode = "hybrid" if mode == "hybrid+rerank" else mode
    run: dict[str, list[str]] = {}
    total: list[float] = []
    search: list[float] = []
    for query_id, text in dataset.queries.items():
        started = time.perf_counter()
        # hybrid fuses the query path's own candidate depth (candidate_k per retriever), and
        # the harness keeps the whole fused list (up to twice that) for Recall@100
        result = retriever.retrieve(
            text,
            flt,
            top_k=depth,
            mode=base_mode,  # type: ignore[arg-type]
            candidates=retriever.candidate_k if base_mode == "hybrid" else None,
        )
        hits = result.hits
        rerank_ms = 0.0
        if reranker is not None and mode == "hybrid+rerank":
            t0 = time.perf_counter()
            head = reranker.rerank(text, hits[:rerank_candidates], top_n=rerank_candidates)
            rerank_ms = (time.perf_counter() - t0) * 1000
            hits = head + hits[rerank_candidates:]
        total.append((time.perf_counter() - started) * 1000)
        search.append(total[-1] - result.timings.get("embed", 0.0))
        ranking = documents_in_order(hits, corpus_id)
        if ignore_identical_ids:
            ranking = [doc for doc in ranking if doc != query_id]
        run[query_id] = ranking
        del rerank_ms
    scores = per_query(run, dataset.qrels)
    return ModeResult(
        mode=mode,
        metrics=evaluate(run, dataset.qrels),
        latency_ms_p50=statistics.median(total),
        latency_ms_p95=percentile(total, 0.95),
        search_ms_p50=statistics.median(search),
        search_ms_p95=percentile(search, 0.95),
        per_query=scores,
        run=run,
    )
