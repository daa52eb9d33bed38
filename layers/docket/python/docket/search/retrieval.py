"""Hybrid retrieval: BM25 and k-NN candidates under one filter, fused (search/fusion.py)."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from docket.config import Settings
from docket.embedding.port import Embedder, Vectors
from docket.errors import ModelMismatch
from docket.models import EmbeddingModelInfo, SearchFilter, SearchHit
from docket.search.fusion import Fusion, default_pivot
from docket.search.port import SearchIndex

RetrievalMode = Literal["bm25", "dense", "hybrid"]


class RetrievalResult(BaseModel):
    hits: list[SearchHit]
    mode: RetrievalMode
    # milliseconds per stage: embed, bm25, knn, fuse (0.0 for a stage the mode skips)
    timings: dict[str, float] = Field(default_factory=dict)
    embedding_model: str | None = None  # the model tag of the index that answered


def _same_model(a: EmbeddingModelInfo, b: EmbeddingModelInfo) -> bool:
    return (a.name, a.version, a.dimension) == (b.name, b.version, b.dimension)


class Retriever(Protocol):
    """What the query path asks of retrieval (``HybridRetriever``): ranked hits from the index
    the retriever reads, for one caller's filter."""

    index: SearchIndex

    def retrieve(
        self,
        query: str,
        flt: SearchFilter,
        top_k: int,
        mode: RetrievalMode = "hybrid",
        candidates: int | None = None,
        vector: Vectors | None = None,
    ) -> RetrievalResult: ...


class HybridRetriever:
    """Runs the retrievers a mode needs; the filter applies inside each one, before ranking.

    Each retriever returns ``candidate_k`` (at least ``top_k``) candidates for fusion, so a
    chunk ranked low by one retriever and high by the other can still reach the top.
    """

    def __init__(
        self,
        index: SearchIndex,
        embedder: Embedder,
        rrf_k: int = 60,
        candidate_k: int = 100,
        fusion: Fusion | None = None,
        server_side: bool = False,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.fusion = fusion or Fusion(rrf_k=rrf_k)
        self.candidate_k = candidate_k
        # OpenSearch's hybrid query with its RRF pipeline, when the index offers it
        self.server_side = server_side and hasattr(index, "search_hybrid")

    def check_model(self) -> None:
        """Vectors from two different models are not comparable: refuse rather than rank noise."""
        index_model, query_model = self.index.model, self.embedder.model
        if not _same_model(index_model, query_model):
            raise ModelMismatch(
                f"the index holds {index_model.tag} vectors (dimension {index_model.dimension}) "
                f"but queries are embedded with {query_model.tag} (dimension "
                f"{query_model.dimension})"
            )

    def retrieve(
        self,
        query: str,
        flt: SearchFilter,
        top_k: int,
        mode: RetrievalMode = "hybrid",
        candidates: int | None = None,
        vector: Vectors | None = None,
    ) -> RetrievalResult:
        """``top_k`` hits for ``mode``. Hybrid asks each retriever for ``candidates`` chunks
        (default ``max(candidate_k, top_k)``) and fuses them, so it returns at most twice that.
        ``vector``: the query's embedding by this retriever's embedder, when already computed
        (the answer cache's lookup did)."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.check_model()
        timings = {"embed": 0.0, "bm25": 0.0, "knn": 0.0, "fuse": 0.0}
        if not query.strip():
            return RetrievalResult(hits=[], mode=mode, timings=timings)
        if mode == "bm25":
            started = time.perf_counter()
            hits = self.index.search_bm25(query, flt, top_k)
            timings["bm25"] = _ms_since(started)
            return RetrievalResult(hits=hits, mode=mode, timings=timings)

        started = time.perf_counter()
        if vector is None:
            vector = self.embedder.embed_query(query)
        timings["embed"] = _ms_since(started)
        if mode == "dense":
            started = time.perf_counter()
            hits = self.index.search_knn(vector, flt, top_k)
            timings["knn"] = _ms_since(started)
            return RetrievalResult(hits=hits, mode=mode, timings=timings)

        candidates = candidates or max(self.candidate_k, top_k)
        if self.server_side:
            started = time.perf_counter()
            # each sub-query reaches the candidate depth, as in client-side fusion
            hybrid = self.index.search_hybrid  # type: ignore[attr-defined]
            hits = hybrid(query, vector, flt, candidates)[:top_k]
            timings["fuse"] = _ms_since(started)  # one round trip: retrieval and fusion
            return RetrievalResult(hits=hits, mode=mode, timings=timings)
        started = time.perf_counter()
        lexical = self.index.search_bm25(query, flt, candidates)
        timings["bm25"] = _ms_since(started)
        started = time.perf_counter()
        dense = self.index.search_knn(vector, flt, candidates)
        timings["knn"] = _ms_since(started)
        started = time.perf_counter()
        terms = None
        if self.fusion.coordination_max_documents and lexical:
            terms = self.index.query_term_matches(query, lexical)
        hits = self.fusion.fuse(
            {"bm25": lexical, "knn": dense}, depth=candidates, limit=top_k, terms=terms
        )
        timings["fuse"] = _ms_since(started)
        return RetrievalResult(hits=hits, mode=mode, timings=timings)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


# Settings field -> Fusion parameter
_FUSION_SETTINGS = {
    "fusion_method": "method",
    "fusion_bm25_weight": "bm25_weight",
    "rrf_k": "rrf_k",
    "fusion_coordination_max_documents": "coordination_max_documents",
    "fusion_dense_pivot": "dense_pivot",
    "fusion_dense_slope": "dense_slope",
    "fusion_min_weight": "min_weight",
}


def fusion_for(settings: Settings, index: SearchIndex, *, use_tuning: bool = True) -> Fusion:
    """The fusion the query path uses for ``index``, from three layers, later ones winning:
    the defaults (with the index model's calibrated pivot), what ``docket eval tune`` stored
    with the index (left out with ``use_tuning=False``), and settings given explicitly
    (environment, constructor)."""
    params: dict[str, Any] = {
        field: getattr(settings, name) for name, field in _FUSION_SETTINGS.items()
    }
    if settings.fusion_dense_pivot is None:
        params["dense_pivot"] = default_pivot(index.model.name)
    tuned = index.tuned_fusion() if use_tuning else None
    if tuned and isinstance(tuned.get("fusion"), dict):
        known = {k: v for k, v in tuned["fusion"].items() if k in Fusion.model_fields}
        params.update(known)
    params.update(
        {
            field: getattr(settings, name)
            for name, field in _FUSION_SETTINGS.items()
            if name in settings.model_fields_set
        }
    )
    return Fusion(**params)


def retriever_for(settings: Settings, index: SearchIndex, embedder: Embedder) -> HybridRetriever:
    """The query path's retriever as configured (fusion, candidate depth) for ``index``."""
    return HybridRetriever(
        index,
        embedder,
        candidate_k=settings.candidate_k,
        fusion=fusion_for(settings, index),
        server_side=settings.search_backend == "opensearch"
        and settings.opensearch_hybrid == "server",
    )
