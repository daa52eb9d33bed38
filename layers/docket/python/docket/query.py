"""The ask path: retrieve (BM25 + k-NN, fused) under the caller's tenant and groups, then answer.

``ask`` returns the whole ``QueryResponse``; ``stream`` yields a ``retrieval`` event, the
answerer's ``delta`` events, then ``done`` with the same ``QueryResponse``. Both share retrieval and
the response's assembly; they differ only in calling the answerer's ``answer`` or ``stream``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from docket.answer.port import AnswerDelta, AnswerDone
from docket.config import Settings, get_settings
from docket.models import Answer, Citation, JsonInt, Principal, SearchFilter, SearchHit

if TYPE_CHECKING:
    from docket.answer.port import Answerer
    from docket.cache.service import AnswerCache
    from docket.rerank.port import Reranker
    from docket.search.retrieval import Retriever
    from docket.store.ports import DocumentStore

RetrievalMode = Literal["bm25", "dense", "hybrid"]


class QueryFilters(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    document_ids: list[str] | None = Field(default=None, max_length=100)
    sources: list[str] | None = Field(default=None, max_length=100)


class QueryRequest(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    question: str = Field(min_length=1, max_length=2000)
    top_k: JsonInt = Field(default=10, ge=1, le=50)
    mode: RetrievalMode = "hybrid"
    filters: QueryFilters | None = None
    rerank: bool = Field(
        default=True,
        description="rerank the fused candidates with the configured reranker, if there is one",
    )
    no_cache: bool = Field(
        default=False,
        description="answer afresh, without the answer cache (when the tenant has it on)",
    )


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
    cached: bool = Field(default=False, description="served from the answer cache")
    cache_age_s: float | None = Field(
        default=None, description="when cached: seconds since the answer was computed"
    )


class SearchResponse(BaseModel):
    """What was retrieved for a question, best first, without an answer: the MCP ``search``
    tool's result (the same chunks, in the same order, as ``QueryResponse.chunks``)."""

    question: str
    chunks: list[RetrievedChunk]
    mode: RetrievalMode
    embedding_model: str
    timings_ms: dict[str, float]


# --- the answer as events ------------------------------------------------------------------------


class RetrievedChunkRef(BaseModel):
    """A retrieved chunk without its text: what the ``retrieval`` event lists."""

    chunk_id: str
    document_id: str
    source: str
    title: str | None = None
    page_start: int
    page_end: int
    section: str | None = None
    score: float


class RetrievalEvent(BaseModel):
    """The first event: what was retrieved (best first), before any answer text."""

    model_config = ConfigDict(frozen=True)

    type: Literal["retrieval"] = "retrieval"
    mode: RetrievalMode
    embedding_model: str
    chunks: list[RetrievedChunkRef]
    timings_ms: dict[str, float]


class QueryDone(BaseModel):
    """The last event: the complete response, exactly what ``ask`` returns."""

    model_config = ConfigDict(frozen=True)

    type: Literal["done"] = "done"
    response: QueryResponse


# ``delta`` events are the answerer's own (docket.answer.port): text, unit, citation numbers.
QueryEvent = Annotated[RetrievalEvent | AnswerDelta | QueryDone, Field(discriminator="type")]


class _Stopwatch:
    """Milliseconds spent inside its ``with`` blocks: a stream's own work, not its consumer's."""

    def __init__(self) -> None:
        self.ms = 0.0
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.ms += (time.perf_counter() - self._started) * 1000


def _retrieved_chunk(hit: SearchHit) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=hit.chunk.chunk_id,
        document_id=hit.chunk.document_id,
        source=hit.chunk.source,
        title=hit.chunk.title,
        page_start=hit.chunk.page_start,
        page_end=hit.chunk.page_end,
        section=hit.chunk.section,
        text=hit.chunk.text,
        score=hit.score,
        ranks=hit.ranks,
        scores=hit.scores,
    )


def _chunk_ref(chunk: RetrievedChunk) -> RetrievedChunkRef:
    return RetrievedChunkRef(
        chunk_id=chunk.chunk_id,
        document_id=chunk.document_id,
        source=chunk.source,
        title=chunk.title,
        page_start=chunk.page_start,
        page_end=chunk.page_end,
        section=chunk.section,
        score=chunk.score,
    )


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in timings.items()}


@dataclass(frozen=True, slots=True)
class _Retrieval:
    hits: list[SearchHit]
    chunks: list[RetrievedChunk]
    timings: dict[str, float]
    embedding_model: str


class QueryService:
    def __init__(
        self,
        settings: Settings,
        retriever: Retriever | Callable[[], Retriever],
        answerer: Answerer,
        reranker: Reranker | None = None,
        cache: AnswerCache | None = None,
        documents: DocumentStore | None = None,
    ) -> None:
        self.settings = settings
        # a retriever, or a callable that gives the live generation's (docket.generations.live)
        self._retriever = retriever
        self.answerer = answerer
        self.reranker = reranker
        self.cache = cache
        self.document_store = documents  # the cache checks the documents a hit drew on

    @property
    def retriever(self) -> Retriever:
        """The retriever of the live generation: its model embeds the question and its index
        answers, both from one generation record, so a query never mixes models."""
        r = self._retriever
        if callable(r) and not hasattr(r, "retrieve"):
            return r()
        return r  # type: ignore[return-value]

    def answerer_for(self, principal: Principal) -> Answerer:
        """The tenant's answerer (strict citations for tenants configured so)."""
        from docket.answer.factory import answerer_for

        return answerer_for(self.answerer, principal.tenant)

    def search_filter(self, principal: Principal, filters: QueryFilters | None) -> SearchFilter:
        return SearchFilter(
            tenant=principal.tenant,
            groups=principal.groups,
            # an empty list filters to nothing (as the indexes take it), never to everything
            document_ids=frozenset(filters.document_ids)
            if filters and filters.document_ids is not None
            else None,
            sources=frozenset(filters.sources) if filters and filters.sources is not None else None,
        )

    def retrieve(
        self, principal: Principal, request: QueryRequest, vector: Any = None
    ) -> tuple[Any, dict[str, float]]:
        """Retrieval, then (when a reranker is configured and the request allows it) reranking
        of the best ``rerank_top_n_candidates`` down to ``top_k``; if the reranker fails the
        fused order stands and the response says so in ``timings_ms`` (no ``rerank`` entry)."""
        flt = self.search_filter(principal, request.filters)
        rerank = self.reranker is not None and request.rerank
        depth = (
            max(request.top_k, self.settings.rerank_top_n_candidates) if rerank else request.top_k
        )
        retriever = self.retriever
        # the question's embedding, when the answer cache already computed it with this
        # generation's model (a cutover in between: embedded again)
        tag = retriever.index.model.tag
        reuse = {"vector": vector[1]} if vector is not None and vector[0] == tag else {}
        result = retriever.retrieve(request.question, flt, top_k=depth, mode=request.mode, **reuse)
        result = result.model_copy(update={"embedding_model": retriever.index.model.tag})
        timings = dict(result.timings)
        if rerank and result.hits:
            from docket.observability import logger
            from docket.rerank.port import rerank_or_fallback

            started = time.perf_counter()
            hits, used = rerank_or_fallback(
                self.reranker, request.question, result.hits, request.top_k, logger
            )
            if used:
                timings["rerank"] = (time.perf_counter() - started) * 1000
            result = result.model_copy(update={"hits": hits})
        elif len(result.hits) > request.top_k:
            result = result.model_copy(update={"hits": result.hits[: request.top_k]})
        return result, timings

    def search(self, principal: Principal, request: QueryRequest) -> SearchResponse:
        """Retrieval (and reranking) alone: the chunks ``ask`` would answer from."""
        total = _Stopwatch()
        with total:
            retrieval = self._retrieval(principal, request)
        return SearchResponse(
            question=request.question,
            chunks=retrieval.chunks,
            mode=request.mode,
            embedding_model=retrieval.embedding_model,
            timings_ms=_rounded({**retrieval.timings, "total": total.ms}),
        )

    def ask(self, principal: Principal, request: QueryRequest) -> QueryResponse:
        """The whole response at once, from the answerer's ``answer`` (its non-streaming path),
        or from the answer cache when the tenant has it on (docket.cache.service)."""
        cache = self.cache
        # no_cache, and rerank: false (a diagnostic request for the fused order) bypass it
        bypass = request.no_cache or not request.rerank
        if cache is None or bypass or not cache.enabled_for(principal.tenant):
            return self._ask(principal, request)
        from docket.errors import DocketError
        from docket.observability import logger

        lookup = _Stopwatch()
        try:
            with lookup:
                retriever = self.retriever
                options = request.model_dump(
                    mode="json", include={"top_k", "mode", "filters", "rerank"}
                )
                partition = cache.partition(principal, retriever.index.model.tag, options)
                embedder = getattr(retriever, "embedder", None)
                embedded: list[Any] = []  # computed for the semantic tier, reused to retrieve

                def embed() -> Any:
                    if embedder is None or request.mode == "bm25":
                        return None
                    if not embedded:
                        embedded.append(embedder.embed_query(request.question))
                    return embedded[0]

                hit = cache.lookup(partition, request.question, embed)
        except DocketError as exc:  # the cache is an optimisation: answer without it
            logger.warning("answer cache unavailable", error=exc.message)
            return self._ask(principal, request)
        if hit is not None and self._still_there(principal, hit.documents):
            cached = QueryResponse.model_validate_json(hit.response)
            return cached.model_copy(
                update={
                    "question": request.question,
                    "cached": True,
                    "cache_age_s": round(hit.age_s, 1),
                    "timings_ms": _rounded({"cache": lookup.ms, "total": lookup.ms}),
                }
            )
        reuse = (retriever.index.model.tag, embedded[0]) if embedded else None
        response = self._ask(principal, request, reuse)
        if response.found:
            depends = [c.chunk_id for c in response.citations] + [
                c.chunk_id for c in response.chunks
            ]
            try:
                cache.store_answer(
                    partition,
                    principal,
                    request.question,
                    embed(),
                    response.model_dump_json(),
                    depends,
                    self._indexed(principal, response),
                )
            except DocketError as exc:
                logger.warning("answer not cached", error=exc.message)
        return response

    def _indexed(self, principal: Principal, response: QueryResponse) -> dict[str, str]:
        """The documents an answer drew on, each with the content hash it has indexed."""
        ids = dict.fromkeys(
            [c.document_id for c in response.citations] + [c.document_id for c in response.chunks]
        )
        if self.document_store is None or not ids:
            return {d: "" for d in ids}
        records = self.document_store.get_many([(principal.tenant, d) for d in ids])
        found = {d: records.get((principal.tenant, d)) for d in ids}
        return {d: (r.indexed_hash or "") if r else "" for d, r in found.items()}

    def _still_there(self, principal: Principal, documents: dict[str, str]) -> bool:
        """Every document a cached answer drew on is still indexed with the same content, not
        being deleted, and readable by the caller."""
        if self.document_store is None or not documents:
            return True
        from docket.models import DocumentStatus

        records = self.document_store.get_many([(principal.tenant, d) for d in documents])
        for document_id, indexed_hash in documents.items():
            doc = records.get((principal.tenant, document_id))
            if doc is None or doc.status == DocumentStatus.DELETING:
                return False
            if (doc.indexed_hash or "") != indexed_hash:
                return False
            if doc.acl_groups and not set(doc.acl_groups) & principal.groups:
                return False
        return True

    def _ask(
        self, principal: Principal, request: QueryRequest, vector: Any = None
    ) -> QueryResponse:
        total, answering = _Stopwatch(), _Stopwatch()
        with total:
            retrieval = self._retrieval(principal, request, vector)
            with answering:
                answer: Answer = self.answerer_for(principal).answer(
                    request.question, retrieval.hits
                )
        return self._response(principal, request, retrieval, answer, answering.ms, total.ms)

    def stream(self, principal: Principal, request: QueryRequest) -> Iterator[QueryEvent]:
        """``RetrievalEvent``, then ``AnswerDelta``s whose texts concatenate to the answer, then
        ``QueryDone``.

        Retrieval runs on the first ``next()``, so its errors (``ModelMismatch``...) raise before
        any event is out. Timings count the service's own work, not the time its consumer holds
        the stream (writing to a slow client is not "answer" time).
        """
        total, answering = _Stopwatch(), _Stopwatch()
        with total:
            retrieval = self._retrieval(principal, request)
            first = RetrievalEvent(
                mode=request.mode,
                embedding_model=retrieval.embedding_model,
                chunks=[_chunk_ref(chunk) for chunk in retrieval.chunks],
                timings_ms=_rounded(retrieval.timings),
            )
        yield first
        answer_events = iter(self.answerer_for(principal).stream(request.question, retrieval.hits))
        answer: Answer | None = None
        while answer is None:
            with total, answering:
                event = next(answer_events, None)
            if event is None:
                raise RuntimeError(f"{type(self.answerer).__name__} stream ended without done")
            if isinstance(event, AnswerDone):
                answer = event.answer
            else:
                yield event
        yield QueryDone(
            response=self._response(principal, request, retrieval, answer, answering.ms, total.ms)
        )

    def _with_uri(self, principal: Principal, citation: Citation) -> Citation:
        """Citations name the original upload: ``s3://{documents bucket}/tenants/{tenant}/...``."""
        if citation.source_uri:
            return citation
        from docket.ingest.keys import object_key

        uri = (
            f"s3://{self.settings.documents_bucket}/{object_key(principal.tenant, citation.source)}"
        )
        return citation.model_copy(update={"source_uri": uri})

    def _retrieval(
        self, principal: Principal, request: QueryRequest, vector: Any = None
    ) -> _Retrieval:
        result, timings = self.retrieve(principal, request, vector)
        return _Retrieval(
            hits=list(result.hits),
            chunks=[_retrieved_chunk(hit) for hit in result.hits],
            timings=timings,
            embedding_model=result.embedding_model or "",
        )

    def _response(
        self,
        principal: Principal,
        request: QueryRequest,
        retrieval: _Retrieval,
        answer: Answer,
        answer_ms: float,
        total_ms: float,
    ) -> QueryResponse:
        return QueryResponse(
            question=request.question,
            found=answer.found,
            answer=answer.text,
            confidence=answer.confidence,
            citations=[self._with_uri(principal, c) for c in answer.citations],
            chunks=retrieval.chunks,
            mode=request.mode,
            embedding_model=retrieval.embedding_model,
            timings_ms=_rounded({**retrieval.timings, "answer": answer_ms, "total": total_ms}),
        )


@cache
def get_query_service() -> QueryService:
    """The process's query service. Its answerer is ``build_answerers(settings)``: extractive, or
    the LLM answerer with its strict-citations twin (``answerer_for`` picks one per tenant). With
    DOCKET_LLM_PROVIDER=fake the "model" echoes the extractive answer through the LLM path, so the
    local cloud exercises prompt, streaming and verifier offline."""
    from docket.answer.factory import build_answerers
    from docket.embedding.factory import get_embedder
    from docket.generations.live import LiveGenerations, registry_for
    from docket.generations.models import generation_key
    from docket.rerank.factory import get_reranker
    from docket.search.factory import get_index
    from docket.search.retrieval import retriever_for

    settings = get_settings()
    generations = LiveGenerations(settings, registry_for(settings))
    retrievers: dict[Any, Any] = {}

    def live_retriever() -> Any:
        _, live = generations.live()
        key = generation_key(live)
        if key not in retrievers:  # one per generation; a process sees few
            retrievers[key] = retriever_for(live, get_index(live), get_embedder(live))
        return retrievers[key]

    from docket.cache.service import get_answer_cache

    cache = get_answer_cache(settings)
    documents = None
    if cache is not None:  # a hit is checked against the documents it drew on
        from docket.store.dynamodb import DynamoDocumentStore

        documents = DynamoDocumentStore(settings.documents_table)
    return QueryService(
        settings,
        live_retriever,
        build_answerers(settings),
        reranker=get_reranker(settings),
        cache=cache,
        documents=documents,
    )
