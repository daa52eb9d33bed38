"""The ask path: retrieve (BM25 + k-NN, fused) under the caller's tenant and groups, then answer."""

from __future__ import annotations

import time
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from docket.config import Settings, get_settings
from docket.models import Answer, Citation, Principal, SearchFilter

RetrievalMode = Literal["bm25", "dense", "hybrid"]


class QueryFilters(BaseModel):
    document_ids: list[str] | None = Field(default=None, max_length=100)
    sources: list[str] | None = Field(default=None, max_length=100)


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=10, ge=1, le=50)
    mode: RetrievalMode = "hybrid"
    filters: QueryFilters | None = None


class RetrievedChunk(BaseModel):
    chunk_id: str
    document_id: str
    source: str
    title: str | None = None
    page_start: int
    page_end: int
    section: str | None = None
    text: str
    score: float
    ranks: dict[str, int] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)


class QueryResponse(BaseModel):
    question: str
    found: bool
    answer: str
    confidence: float
    citations: list[Citation]
    chunks: list[RetrievedChunk]
    mode: RetrievalMode
    embedding_model: str
    timings_ms: dict[str, float]


class QueryService:
    def __init__(self, settings: Settings, retriever: Any, answerer: Any) -> None:
        self.settings = settings
        self.retriever = retriever
        self.answerer = answerer

    def search_filter(self, principal: Principal, filters: QueryFilters | None) -> SearchFilter:
        return SearchFilter(
            tenant=principal.tenant,
            groups=principal.groups,
            document_ids=frozenset(filters.document_ids)
            if filters and filters.document_ids
            else None,
            sources=frozenset(filters.sources) if filters and filters.sources else None,
        )

    def retrieve(self, principal: Principal, request: QueryRequest) -> tuple[Any, dict[str, float]]:
        flt = self.search_filter(principal, request.filters)
        result = self.retriever.retrieve(
            request.question, flt, top_k=request.top_k, mode=request.mode
        )
        return result, dict(result.timings)

    def ask(self, principal: Principal, request: QueryRequest) -> QueryResponse:
        started = time.perf_counter()
        result, timings = self.retrieve(principal, request)
        t0 = time.perf_counter()
        answer: Answer = self.answerer.answer(request.question, result.hits)
        timings["answer"] = (time.perf_counter() - t0) * 1000
        timings["total"] = (time.perf_counter() - started) * 1000
        return QueryResponse(
            question=request.question,
            found=answer.found,
            answer=answer.text,
            confidence=answer.confidence,
            citations=answer.citations,
            chunks=[
                RetrievedChunk(
                    chunk_id=h.chunk.chunk_id,
                    document_id=h.chunk.document_id,
                    source=h.chunk.source,
                    title=h.chunk.title,
                    page_start=h.chunk.page_start,
                    page_end=h.chunk.page_end,
                    section=h.chunk.section,
                    text=h.chunk.text,
                    score=h.score,
                    ranks=h.ranks,
                    scores=h.scores,
                )
                for h in result.hits
            ],
            mode=request.mode,
            embedding_model=self.retriever.index.model.tag,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
        )


@cache
def get_query_service() -> QueryService:
    from docket.answer.extractive import ExtractiveAnswerer
    from docket.embedding.factory import get_embedder
    from docket.search.factory import get_index
    from docket.search.retrieval import HybridRetriever

    settings = get_settings()
    retriever = HybridRetriever(
        get_index(settings),
        get_embedder(settings),
        rrf_k=settings.rrf_k,
        candidate_k=settings.candidate_k,
    )
    return QueryService(
        settings, retriever, ExtractiveAnswerer(min_score=settings.min_answer_score)
    )
