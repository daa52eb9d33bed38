"""Property tests of isolation (hypothesis): random callers (tenant, groups), questions, modes,
filters naming other tenants' documents, and document ids of every tenant, through the query
service (on the real embedded index), the agent's search and document tools' adapters, and the
document routes' service. No response ever holds another tenant's, or a forbidden group's, chunk
or document."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docket.agent.tools.services import DocumentServiceAccess, QueryServiceSearch
from docket.answer.extractive import ExtractiveAnswerer
from docket.config import Settings
from docket.documents import DocumentService
from docket.embedding.hashing import HashingEmbedder
from docket.errors import NotFound, ToolError
from docket.models import (
    ChunkRecord,
    DocumentRecord,
    DocumentStatus,
    ExtractedDocument,
    Page,
    Principal,
    chunk_id_for,
    document_id_for,
)
from docket.query import QueryFilters, QueryRequest, QueryService
from docket.search.embedded import EmbeddedIndex
from docket.search.retrieval import HybridRetriever

from .fakes import FakeBlobStore, FakeDocumentStore

TENANTS = ["acme", "globex", "initech"]
GROUPS = ["finance", "legal", "hr", "eng"]
WORDS = [
    "budget",
    "contract",
    "salary",
    "deploy",
    "invoice",
    "lawsuit",
    "hiring",
    "outage",
    "revenue",
    "clause",
    "payroll",
    "server",
    "audit",
    "merger",
    "pension",
    "incident",
    "forecast",
    "policy",
]


class Signer:
    def presign_put(
        self, bucket: str, key: str, expires_in: int, size_bytes: int | None = None
    ) -> str:
        return f"https://s3.example.com/{bucket}/{key}"


def build_corpus() -> tuple[list[DocumentRecord], list[ChunkRecord]]:
    rng = random.Random(20261205)
    docs, chunks = [], []
    for tenant in TENANTS:
        for n in range(12):
            source = f"{tenant}-{n}.txt"
            acl = sorted(rng.sample(GROUPS, rng.choice([0, 0, 1, 1, 2])))
            document_id = document_id_for(tenant, source)
            docs.append(
                DocumentRecord(
                    tenant=tenant,
                    document_id=document_id,
                    source=source,
                    acl_groups=acl,
                    status=DocumentStatus.INDEXED,
                    text_key=f"{tenant}/{document_id}.json",
                )
            )
            for ordinal in range(3):
                text = " ".join(rng.choices(WORDS, k=12))
                chunks.append(
                    ChunkRecord(
                        tenant=tenant,
                        document_id=document_id,
                        chunk_id=chunk_id_for(document_id, f"{ordinal} {text}"),
                        ordinal=ordinal,
                        text=f"{text} ({tenant} {n} {ordinal})",
                        page_start=1,
                        page_end=1,
                        source=source,
                        acl_groups=acl,
                        token_count=14,
                    )
                )
    return docs, chunks


DOCS, CHUNKS = build_corpus()
BY_DOCUMENT = {d.document_id: d for d in DOCS}
ALL_IDS = sorted(BY_DOCUMENT)


def may_see(principal: Principal, tenant: str, acl: list[str]) -> bool:
    return tenant == principal.tenant and (not acl or bool(principal.groups & set(acl)))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[QueryService, DocumentService]]:
    embedder = HashingEmbedder()
    index = EmbeddedIndex(Path(tmp_path_factory.mktemp("isolation")) / "index", embedder.model)
    index.upsert(CHUNKS, embedder.embed_documents([c.text for c in CHUNKS]))
    index.commit()
    store = FakeDocumentStore()
    for doc in DOCS:
        store.items[(doc.tenant, doc.document_id)] = doc
    query = QueryService(
        Settings(), HybridRetriever(index, embedder), ExtractiveAnswerer(min_score=0.0)
    )
    blobs = FakeBlobStore()
    for doc in DOCS:
        text = " ".join(c.text for c in CHUNKS if c.document_id == doc.document_id)
        extracted = ExtractedDocument(format="text", pages=[Page(number=1, text=text)])
        blobs.put(Settings().text_bucket, str(doc.text_key), extracted.model_dump_json().encode())
    documents = DocumentService(Settings(), store, blobs, Signer(), index=index)
    yield query, documents
    index.close()


principals = st.builds(
    lambda tenant, groups, subject: Principal(
        tenant=tenant, subject=subject, groups=frozenset(groups)
    ),
    st.sampled_from([*TENANTS, "nobody"]),
    st.lists(st.sampled_from([*GROUPS, "admins-not", "x"]), max_size=3),
    st.sampled_from(["alice", "bob"]),
)
questions = st.lists(st.sampled_from([*WORDS, *TENANTS, "the", "what"]), min_size=1, max_size=6)
PROPERTY = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    principal=principals,
    words=questions,
    mode=st.sampled_from(["hybrid", "bm25", "dense"]),
    top_k=st.integers(1, 50),
    named=st.lists(st.sampled_from(ALL_IDS), max_size=4) | st.none(),
)
def test_query_answers_only_from_what_the_caller_may_see(
    world: tuple[QueryService, DocumentService],
    principal: Principal,
    words: list[str],
    mode: str,
    top_k: int,
    named: list[str] | None,
) -> None:
    query, _ = world
    filters = QueryFilters(document_ids=named) if named is not None else None
    response = query.ask(
        principal,
        QueryRequest(question=" ".join(words), top_k=top_k, mode=mode, filters=filters),  # type: ignore[arg-type]
    )
    for chunk in response.chunks:
        doc = BY_DOCUMENT[chunk.document_id]
        assert may_see(principal, doc.tenant, doc.acl_groups), chunk
    for citation in response.citations:
        doc = BY_DOCUMENT[citation.document_id]
        assert may_see(principal, doc.tenant, doc.acl_groups), citation
    if named is not None:
        assert {c.document_id for c in response.chunks} <= set(named)


@PROPERTY
@given(principal=principals, words=questions, top_k=st.integers(1, 20))
def test_the_agent_search_tool_sees_what_the_task_owner_may_see(
    world: tuple[QueryService, DocumentService],
    principal: Principal,
    words: list[str],
    top_k: int,
) -> None:
    query, _ = world
    for hit in QueryServiceSearch(query).search(principal, " ".join(words), top_k):
        assert may_see(principal, hit.chunk.tenant, hit.chunk.acl_groups), hit.chunk


@PROPERTY
@given(principal=principals, document_id=st.sampled_from(ALL_IDS))
def test_document_routes_and_the_read_tool_show_only_visible_documents(
    world: tuple[QueryService, DocumentService], principal: Principal, document_id: str
) -> None:
    _, documents = world
    listed = documents.list(principal)
    assert all(may_see(principal, d.tenant, d.acl_groups) for d in listed)
    assert {d.document_id for d in listed} == {
        d.document_id for d in DOCS if may_see(principal, d.tenant, d.acl_groups)
    }
    # a document id is resolved in the caller's own tenant only: another tenant's id is unknown
    doc = BY_DOCUMENT[document_id]
    visible = may_see(principal, doc.tenant, doc.acl_groups)
    try:
        shown = documents.view(principal, document_id)
        assert visible and shown.tenant == principal.tenant
    except NotFound:
        assert not visible
    try:
        read = DocumentServiceAccess(Settings(), documents).read(principal, document_id)
        assert visible and read.document.tenant == principal.tenant
        assert f"({doc.tenant} " in read.text
    except ToolError as exc:
        assert not visible and "not found" in str(exc)
