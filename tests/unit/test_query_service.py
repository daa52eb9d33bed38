"""QueryService's own choices: reranking (and its fallback), per-tenant answerers, source URIs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from docket.answer.extractive import ExtractiveAnswerer
from docket.config import Settings
from docket.errors import RerankUnavailable
from docket.models import Answer, ChunkRecord, Principal, SearchHit, chunk_id_for, document_id_for
from docket.query import QueryRequest, QueryService
from docket.search.retrieval import HybridRetriever

from .fakes import FakeEmbedder, FakeIndex

TEXTS = [  # every one shares "moon" and "tides" with the question (the fake BM25 splits on spaces)
    "tides rise twice a day because of the moon and the tides follow it",
    "the moon pulls the oceans into tides every day",
    "spring tides come at full and new moon phases",
]
ALICE = Principal(tenant="acme", subject="alice", groups=frozenset())


def chunk(text: str, ordinal: int) -> ChunkRecord:
    document_id = document_id_for("acme", "tides.txt")
    return ChunkRecord(
        tenant="acme",
        document_id=document_id,
        chunk_id=chunk_id_for(document_id, text),
        ordinal=ordinal,
        text=text,
        page_start=1,
        page_end=1,
        source="tides.txt",
    )


class ReverseReranker:
    """Reverses whatever it gets (so its effect is visible), or fails like a service outage."""

    name = "reverse"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[int] = []

    def rerank(self, query: str, hits: Sequence[SearchHit], top_n: int) -> list[SearchHit]:
        self.calls.append(len(hits))
        if self.fail:
            raise RerankUnavailable("rerank service returned 503")
        return [
            h.model_copy(update={"rank": i, "retriever": "rerank"})
            for i, h in enumerate(reversed(hits), start=1)
        ][:top_n]


def service(reranker: object = None, answerer: object = None, **settings: object) -> QueryService:
    embedder = FakeEmbedder()
    index = FakeIndex(embedder.model)
    chunks = [chunk(t, i) for i, t in enumerate(TEXTS)]
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    return QueryService(
        Settings(**settings),  # type: ignore[arg-type]
        HybridRetriever(index, embedder),
        answerer or ExtractiveAnswerer(min_score=0.0),
        reranker=reranker,
    )


def ask(svc: QueryService, **body: object) -> list[str]:
    request = QueryRequest(question="moon tides", mode="bm25", **body)  # type: ignore[arg-type]
    result, timings = svc.retrieve(ALICE, request)
    return [h.chunk.text for h in result.hits]


def test_the_reranker_reorders_the_best_candidates_down_to_top_k() -> None:
    plain = ask(service(), top_k=3)
    reranker = ReverseReranker()
    svc = service(reranker, rerank_top_n_candidates=3)
    reranked = ask(svc, top_k=2)
    # it saw the 3 best fused candidates (not just top_k) and its order is what comes back
    assert reranker.calls == [3]
    assert reranked == list(reversed(plain))[:2]
    _, timings = svc.retrieve(ALICE, QueryRequest(question="moon tides", mode="bm25", top_k=2))
    assert "rerank" in timings


def test_a_failing_reranker_leaves_the_fused_order() -> None:
    plain = ask(service(), top_k=2)
    svc = service(ReverseReranker(fail=True), rerank_top_n_candidates=3)
    assert ask(svc, top_k=2) == plain
    _, timings = svc.retrieve(ALICE, QueryRequest(question="moon tides", mode="bm25", top_k=2))
    assert "rerank" not in timings


def test_a_request_can_opt_out_of_reranking() -> None:
    reranker = ReverseReranker()
    svc = service(reranker)
    assert ask(svc, top_k=2, rerank=False) == ask(service(), top_k=2)
    assert reranker.calls == []


def test_citations_name_the_uploaded_object() -> None:
    response = service().ask(ALICE, QueryRequest(question="moon tides", mode="bm25"))
    assert response.found
    assert {c.source_uri for c in response.citations} == {
        "s3://docket-documents/tenants/acme/tides.txt"
    }


def test_strict_citation_tenants_get_the_strict_answerer() -> None:
    class Recording:
        def __init__(self, strict: bool) -> None:
            self.strict = strict
            self.used = 0

        def answer(self, question: str, hits: Sequence[SearchHit]) -> Answer:
            self.used += 1
            return Answer(found=False, text="Not found in the knowledge base.")

    from docket.answer.factory import TenantAnswerers

    lenient, strict = Recording(False), Recording(True)
    answerers = TenantAnswerers(default=lenient, strict=strict, strict_tenants=frozenset({"acme"}))
    svc = service(answerer=answerers)
    svc.ask(ALICE, QueryRequest(question="moon tides", mode="bm25"))
    other = Principal(tenant="globex", subject="bob", groups=frozenset())
    svc.ask(other, QueryRequest(question="moon tides", mode="bm25"))
    assert (strict.used, lenient.used) == (1, 1)


@pytest.mark.parametrize("top_k", [1, 3])
def test_without_a_reranker_top_k_is_respected(top_k: int) -> None:
    assert len(ask(service(), top_k=top_k)) == top_k
