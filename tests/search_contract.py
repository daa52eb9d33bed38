"""The SearchIndex contract: every adapter (embedded, OpenSearch) passes this one suite.

Tests speak only the port (search/port.py). A suite that runs them imports them
(``from tests.search_contract import *``) and provides the fixtures ``open_index`` (opens or
reopens a named index), ``index`` (``open_index()``), ``embedder``, ``make_chunk`` and
``index_backend`` (a ``Backend``: which retrievers the server behind the adapter has).

Assertions that hold for both retrievers run once per retriever through the ``retrieve``
fixture (``bm25`` / ``knn``), so a backend without k-NN (osmem-server) still runs every BM25
assertion and reports each k-NN case as skipped, with the reason.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docket.embedding.port import Vectors
from docket.errors import ModelMismatch
from docket.models import (
    ChunkRecord,
    EmbeddingModelInfo,
    SearchFilter,
    SearchHit,
    chunk_id_for,
    document_id_for,
)
from docket.search.port import SearchIndex

MODEL = EmbeddingModelInfo(name="test-bag-of-words", version="1", dimension=64)
TENANT_A = "tenant-a"
TENANT_B = "tenant-b"

OpenIndex = Callable[..., SearchIndex]
MakeChunk = Callable[..., ChunkRecord]


@dataclass(frozen=True)
class Backend:
    """What the server behind an adapter can do (``knn=False``: k-NN cases skip with the reason)."""

    name: str
    knn: bool = True
    no_knn_reason: str = ""


@dataclass(frozen=True)
class Retrieve:
    """One retriever of an index: ``retrieve(index, text, flt, k)`` (k-NN embeds ``text``)."""

    name: str
    run: Callable[[SearchIndex, str, SearchFilter, int], list[SearchHit]]

    def __call__(self, index: SearchIndex, text: str, flt: SearchFilter, k: int) -> list[SearchHit]:
        return self.run(index, text, flt, k)


class BagOfWordsEmbedder:
    """Signed feature hashing of lowercase words: texts that share words get a higher cosine."""

    def __init__(self, model: EmbeddingModelInfo = MODEL) -> None:
        self._model = model

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._model.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_query(text)
        return out

    def embed_query(self, text: str) -> Vectors:
        vector = np.zeros(self._model.dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vector[value % self._model.dimension] += 1.0 if (value >> 32) & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector


def make_chunk_record(
    tenant: str,
    source: str,
    text: str,
    *,
    groups: Sequence[str] = (),
    ordinal: int = 0,
    title: str | None = None,
    section: str | None = None,
    chunk_id: str | None = None,
) -> ChunkRecord:
    document_id = document_id_for(tenant, source)
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_id=chunk_id or chunk_id_for(document_id, text),
        ordinal=ordinal,
        text=text,
        page_start=1,
        page_end=1,
        section=section,
        token_count=len(text.split()),
        source=source,
        title=title,
        acl_groups=list(groups),
    )


# --- fixtures every contract run shares ----------------------------------------------------------


@pytest.fixture(params=["bm25", "knn"])
def retrieve(request: pytest.FixtureRequest, embedder, index_backend: Backend) -> Retrieve:  # type: ignore[no-untyped-def]
    """Each case that holds for both retrievers runs once per retriever."""
    if request.param == "bm25":
        return Retrieve("bm25", lambda index, text, flt, k: index.search_bm25(text, flt, k))
    if not index_backend.knn:
        pytest.skip(index_backend.no_knn_reason)
    return Retrieve(
        "knn",
        lambda index, text, flt, k: index.search_knn(embedder.embed_query(text), flt, k),
    )


@pytest.fixture
def knn_available(index_backend: Backend) -> None:
    """For cases that are about k-NN alone."""
    if not index_backend.knn:
        pytest.skip(index_backend.no_knn_reason)


# --- helpers -------------------------------------------------------------------------------------


def add(index: SearchIndex, embedder, chunks: list[ChunkRecord]) -> None:  # type: ignore[no-untyped-def]
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    index.commit()


def ids(hits: list[SearchHit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def knn(index: SearchIndex, embedder, text: str, flt: SearchFilter, k: int = 10):  # type: ignore[no-untyped-def]
    return index.search_knn(embedder.embed_query(text), flt, k)


# --- empty index and basic ranking -------------------------------------------------------------


def test_empty_index_returns_no_hits(index, retrieve):
    # Given an index with nothing in it
    flt = SearchFilter(tenant=TENANT_A)
    # When searching / Then nothing comes back, and no document has chunks
    assert retrieve(index, "anything at all", flt, 10) == []
    assert index.count_document(TENANT_A, "doc_" + "0" * 24) == 0


def test_bm25_ranks_the_best_lexical_match_first(index, embedder, make_chunk):
    # Given three chunks, one clearly about mitochondria
    chunks = [
        make_chunk(TENANT_A, "bio.txt", "Mitochondria produce ATP; mitochondria are organelles."),
        make_chunk(
            TENANT_A, "bio.txt", "Ribosomes translate messenger RNA into proteins.", ordinal=1
        ),
        make_chunk(TENANT_A, "geo.txt", "Rivers carry sediment to the sea."),
    ]
    add(index, embedder, chunks)
    # When searching for it (a different inflection of the word)
    hits = index.search_bm25("mitochondrion ATP production", SearchFilter(tenant=TENANT_A), 10)
    # Then it is first, with positive decreasing scores, ranks 1.., retriever "bm25"
    assert ids(hits)[0] == chunks[0].chunk_id
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(h.retriever == "bm25" for h in hits)
    assert all(h.score > 0 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert chunks[2].chunk_id not in ids(hits)  # no shared term, no hit
    assert hits[0].chunk == chunks[0]  # the full record comes back


def test_query_term_matches_name_the_terms_each_hit_holds(index, embedder, make_chunk):
    # Given two chunks sharing one query term
    chunks = [
        make_chunk(TENANT_A, "a.txt", "magma rises under the volcano"),
        make_chunk(TENANT_A, "b.txt", "magma cools into basalt"),
    ]
    add(index, embedder, chunks)
    hits = index.search_bm25("magma basalt zzzunknown", SearchFilter(tenant=TENANT_A), 10)
    matches = index.query_term_matches("magma basalt zzzunknown", hits)
    # Then the query's known terms carry positive weights (the unknown one is left out), the
    # rarer term weighs more, and each hit lists the terms it contains
    assert set(matches.weights) == {"magma", "basalt"}
    assert matches.weights["basalt"] > matches.weights["magma"] > 0
    by_id = dict(zip(ids(hits), matches.matched, strict=True))
    assert by_id[chunks[0].chunk_id] == {"magma"}
    assert by_id[chunks[1].chunk_id] == {"magma", "basalt"}


def test_bm25_matches_title_and_section(index, embedder, make_chunk):
    # Given a chunk whose title alone holds the query word
    chunk = make_chunk(TENANT_A, "t.txt", "Body without it.", title="Glaciology", section="Ice")
    add(index, embedder, [chunk])
    flt = SearchFilter(tenant=TENANT_A)
    # Then title and section words find it
    assert ids(index.search_bm25("glaciology", flt, 5)) == [chunk.chunk_id]
    assert ids(index.search_bm25("ice", flt, 5)) == [chunk.chunk_id]


def test_knn_ranks_the_nearest_vector_first(index, embedder, make_chunk, knn_available):
    # Given chunks with distinct texts
    texts = ["red apples and green pears", "blue whales swim deep", "fast red cars on tracks"]
    chunks = [make_chunk(TENANT_A, "k.txt", t, ordinal=i) for i, t in enumerate(texts)]
    add(index, embedder, chunks)
    # When querying with one chunk's own text
    hits = knn(index, embedder, "blue whales swim deep", SearchFilter(tenant=TENANT_A))
    # Then that chunk is first with cosine ~1, and every chunk is a candidate
    assert ids(hits)[0] == chunks[1].chunk_id
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert sorted(ids(hits)) == sorted(c.chunk_id for c in chunks)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(h.retriever == "knn" for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_k_limits_the_number_of_hits(index, embedder, make_chunk, retrieve):
    chunks = [make_chunk(TENANT_A, "many.txt", f"apple number {i}", ordinal=i) for i in range(12)]
    add(index, embedder, chunks)
    flt = SearchFilter(tenant=TENANT_A)
    assert len(retrieve(index, "apple", flt, 5)) == 5
    assert retrieve(index, "apple", flt, 0) == []
    assert len(retrieve(index, "apple", flt, 10**9)) == 12


# --- upsert -------------------------------------------------------------------------------------


def test_upsert_replaces_a_chunk_by_id(index, embedder, make_chunk):
    # Given a chunk
    first = make_chunk(TENANT_A, "r.txt", "original words about zebras", title="Old")
    add(index, embedder, [first])
    # When it is upserted again under the same id with a new title and vector
    second = first.model_copy(update={"title": "New", "ordinal": 3})
    index.upsert([second], embedder.embed_documents(["completely different vector text"]))
    index.commit()
    # Then one chunk remains, carrying the new record
    hits = index.search_bm25("zebras", SearchFilter(tenant=TENANT_A), 10)
    assert [h.chunk for h in hits] == [second]
    assert index.count_document(TENANT_A, first.document_id) == 1


def test_upsert_replaces_the_vector(index, embedder, make_chunk, knn_available):
    # Given a chunk, upserted again under the same id with another vector
    first = make_chunk(TENANT_A, "r.txt", "original words about zebras", title="Old")
    add(index, embedder, [first])
    second = first.model_copy(update={"title": "New", "ordinal": 3})
    index.upsert([second], embedder.embed_documents(["completely different vector text"]))
    index.commit()
    # Then k-NN finds it, once, by the new vector
    near = knn(index, embedder, "completely different vector text", SearchFilter(tenant=TENANT_A))
    assert ids(near) == [first.chunk_id]
    assert near[0].score == pytest.approx(1.0, abs=1e-5)


def test_upsert_of_the_same_id_twice_in_one_batch_keeps_the_last(index, embedder, make_chunk):
    chunk = make_chunk(TENANT_A, "d.txt", "duplicate ids in a batch")
    later = chunk.model_copy(update={"ordinal": 7})
    index.upsert([chunk, later], embedder.embed_documents([chunk.text, chunk.text]))
    index.commit()
    hits = index.search_bm25("duplicate", SearchFilter(tenant=TENANT_A), 10)
    assert [h.chunk.ordinal for h in hits] == [7]


def test_upsert_with_vectors_of_another_dimension_raises(index, make_chunk):
    chunk = make_chunk(TENANT_A, "x.txt", "wrong dimension")
    with pytest.raises(ModelMismatch):
        index.upsert([chunk], np.ones((1, index.model.dimension + 1), dtype=np.float32))


def test_knn_with_a_query_vector_of_another_dimension_raises(index):
    with pytest.raises(ModelMismatch):
        index.search_knn(np.ones(index.model.dimension - 1), SearchFilter(tenant=TENANT_A), 5)


# --- tenant isolation and ACL, applied before top-k ------------------------------------------


def test_tenants_never_see_each_other(index, embedder, make_chunk, retrieve):
    a = make_chunk(TENANT_A, "same.txt", "shared words quarterly report")
    b = make_chunk(TENANT_B, "same.txt", "shared words quarterly report")
    add(index, embedder, [a, b])
    for tenant, own in ((TENANT_A, a), (TENANT_B, b)):
        hits = retrieve(index, "quarterly report", SearchFilter(tenant=tenant), 10)
        assert ids(hits) == [own.chunk_id]
        assert [h.chunk.tenant for h in hits] == [tenant]
    assert retrieve(index, "quarterly report", SearchFilter(tenant="tenant-c"), 10) == []


def test_tenant_filter_applies_before_top_k(index, embedder, make_chunk, retrieve):
    # Given 50 chunks of tenant B that match strongly and one of tenant A that matches weakly
    strong = "solar panel efficiency solar panel efficiency solar"
    others = [make_chunk(TENANT_B, f"b{i}.txt", f"{strong} {i}") for i in range(50)]
    weak = make_chunk(TENANT_A, "a.txt", "a long note that mentions solar once among many words")
    add(index, embedder, [*others, weak])
    # When tenant A searches with k=5 / Then A's chunk comes back (it was not crowded out)
    assert ids(retrieve(index, strong, SearchFilter(tenant=TENANT_A), 5)) == [weak.chunk_id]


def test_acl_filter_applies_before_top_k(index, embedder, make_chunk, retrieve):
    # Given 50 strongly matching chunks restricted to "finance" and one weak public chunk
    strong = "merger acquisition merger acquisition merger"
    secret = [
        make_chunk(TENANT_A, f"s{i}.txt", f"{strong} {i}", groups=["finance"]) for i in range(50)
    ]
    public = make_chunk(TENANT_A, "p.txt", "the public handbook mentions a merger in passing")
    add(index, embedder, [*secret, public])
    outsider = SearchFilter(tenant=TENANT_A, groups=frozenset({"engineering"}))
    # Then a caller outside "finance" gets only the public chunk
    assert ids(retrieve(index, strong, outsider, 5)) == [public.chunk_id]
    # And a finance member gets the restricted ones first
    insider = SearchFilter(tenant=TENANT_A, groups=frozenset({"finance", "engineering"}))
    hits = retrieve(index, strong, insider, 5)
    assert len(hits) == 5 and all(h.chunk.acl_groups == ["finance"] for h in hits)


def test_acl_semantics(index, embedder, make_chunk, retrieve):
    # Given a public chunk, one for hr, one for hr or legal
    public = make_chunk(TENANT_A, "acl.txt", "policy text public", ordinal=0)
    hr = make_chunk(TENANT_A, "acl.txt", "policy text hr", groups=["hr"], ordinal=1)
    both = make_chunk(TENANT_A, "acl.txt", "policy text both", groups=["hr", "legal"], ordinal=2)
    add(index, embedder, [public, hr, both])
    cases = {
        frozenset(): {public.chunk_id},
        frozenset({"legal"}): {public.chunk_id, both.chunk_id},
        frozenset({"hr"}): {public.chunk_id, hr.chunk_id, both.chunk_id},
        frozenset({"sales", "legal"}): {public.chunk_id, both.chunk_id},
    }
    for groups, visible in cases.items():
        flt = SearchFilter(tenant=TENANT_A, groups=groups)
        assert set(ids(retrieve(index, "policy", flt, 10))) == visible, groups


def test_document_and_source_filters(index, embedder, make_chunk, retrieve):
    one = make_chunk(TENANT_A, "one.txt", "budget forecast")
    two = make_chunk(TENANT_A, "two.txt", "budget actuals")
    add(index, embedder, [one, two])
    by_doc = SearchFilter(tenant=TENANT_A, document_ids=frozenset({two.document_id}))
    by_source = SearchFilter(tenant=TENANT_A, sources=frozenset({"one.txt"}))
    nothing = SearchFilter(tenant=TENANT_A, document_ids=frozenset())
    assert ids(retrieve(index, "budget", by_doc, 10)) == [two.chunk_id]
    assert ids(retrieve(index, "budget", by_source, 10)) == [one.chunk_id]
    assert retrieve(index, "budget", nothing, 10) == []


# --- deletes and metadata updates ---------------------------------------------------------------


def test_deleted_chunks_are_never_returned(index, embedder, make_chunk, retrieve):
    chunks = [make_chunk(TENANT_A, "del.txt", f"volcano eruption {i}", ordinal=i) for i in range(4)]
    add(index, embedder, chunks)
    gone = [chunks[0].chunk_id, chunks[2].chunk_id]
    # When two chunks are deleted (and a third tenant's delete of the same ids does nothing)
    assert index.delete_chunks(TENANT_B, gone) == 0
    assert index.delete_chunks(TENANT_A, [*gone, "chk_unknown"]) == 2
    index.commit()
    # Then no retriever returns them, even with a k larger than the index
    hits = retrieve(index, "volcano eruption", SearchFilter(tenant=TENANT_A), 100)
    assert set(ids(hits)).isdisjoint(gone)
    assert len(hits) == 2
    assert index.count_document(TENANT_A, chunks[0].document_id) == 2


def test_delete_document_removes_all_its_chunks(index, embedder, make_chunk, retrieve):
    doomed = [make_chunk(TENANT_A, "doomed.txt", f"glacier melt {i}", ordinal=i) for i in range(3)]
    kept = make_chunk(TENANT_A, "kept.txt", "glacier melt survives")
    add(index, embedder, [*doomed, kept])
    document_id = doomed[0].document_id
    assert index.count_document(TENANT_A, document_id) == 3
    assert index.count_document(TENANT_B, document_id) == 0  # tenant-scoped
    assert index.delete_document(TENANT_B, document_id) == 0
    assert index.delete_document(TENANT_A, document_id) == 3
    index.commit()
    assert ids(retrieve(index, "glacier melt", SearchFilter(tenant=TENANT_A), 10)) == [
        kept.chunk_id
    ]
    assert index.count_document(TENANT_A, document_id) == 0


def test_update_metadata_changes_visibility(index, embedder, make_chunk, retrieve):
    # Given a chunk restricted to "hr"
    chunk = make_chunk(TENANT_A, "m.txt", "salary bands for engineers", groups=["hr"])
    other = make_chunk(TENANT_A, "n.txt", "engineers write code")
    add(index, embedder, [chunk, other])
    everyone = SearchFilter(tenant=TENANT_A)
    assert chunk.chunk_id not in ids(retrieve(index, "salary engineers", everyone, 10))
    # When its ACL is lifted (ordinal and pages change too)
    updated = chunk.model_copy(update={"acl_groups": [], "ordinal": 4, "page_end": 2})
    missing = make_chunk(TENANT_A, "m.txt", "never indexed")
    assert index.update_metadata([updated, missing]) == 1
    index.commit()
    # Then everyone sees it, with the new metadata
    hits = retrieve(index, "salary engineers", everyone, 10)
    assert updated in [h.chunk for h in hits]
    assert [h.chunk for h in index.search_bm25("salary", everyone, 10)] == [updated]
    assert index.count_document(TENANT_A, chunk.document_id) == 1
    # And restricting it again hides it again
    assert index.update_metadata([updated.model_copy(update={"acl_groups": ["legal"]})]) == 1
    index.commit()
    assert chunk.chunk_id not in ids(retrieve(index, "salary engineers", everyone, 10))


def test_update_metadata_keeps_vectors(index, embedder, make_chunk, knn_available):
    # Given a chunk restricted to "hr"
    chunk = make_chunk(TENANT_A, "m.txt", "salary bands for engineers", groups=["hr"])
    other = make_chunk(TENANT_A, "n.txt", "engineers write code")
    add(index, embedder, [chunk, other])
    hr = SearchFilter(tenant=TENANT_A, groups=frozenset({"hr"}))
    before = {h.chunk.chunk_id: h.score for h in knn(index, embedder, "salary engineers", hr)}
    # When its ACL is lifted
    updated = chunk.model_copy(update={"acl_groups": [], "ordinal": 4, "page_end": 2})
    assert index.update_metadata([updated]) == 1
    index.commit()
    # Then the same vector scores the same cosine for everyone
    everyone = SearchFilter(tenant=TENANT_A)
    after = {h.chunk.chunk_id: h.score for h in knn(index, embedder, "salary engineers", everyone)}
    assert after[chunk.chunk_id] == pytest.approx(before[chunk.chunk_id], abs=1e-6)


# --- persistence and models --------------------------------------------------------------------


def test_chunk_keys_list_every_committed_chunk_of_every_tenant(index, embedder, make_chunk):
    a = make_chunk("acme", "a.txt", "alpha text")
    b = make_chunk("globex", "b.txt", "beta text", groups=["eng"])
    gone = make_chunk("acme", "c.txt", "gamma text")
    add(index, embedder, [a, b, gone])
    index.delete_chunks("acme", [gone.chunk_id])
    index.commit()
    assert index.chunk_keys() == {("acme", a.chunk_id), ("globex", b.chunk_id)}


def test_drop_deletes_the_index_and_its_data(open_index, embedder, make_chunk):
    index = open_index("doomed")
    add(index, embedder, [make_chunk("acme", "a.txt", "alpha text")])
    index.drop()
    assert open_index("doomed").chunk_keys() == set()


def test_committed_data_survives_close_and_reopen(open_index, embedder, make_chunk, retrieve):
    index = open_index("persist")
    chunks = [
        make_chunk(TENANT_A, "p.txt", f"lighthouse keeper log {i}", ordinal=i) for i in range(5)
    ]
    add(index, embedder, chunks)
    index.delete_chunks(TENANT_A, [chunks[4].chunk_id])
    index.commit()
    flt = SearchFilter(tenant=TENANT_A)
    before = retrieve(index, "lighthouse keeper log 2", flt, 10)
    index.close()
    # When reopened
    reopened = open_index("persist")
    # Then searches and counts are the same
    assert retrieve(reopened, "lighthouse keeper log 2", flt, 10) == before
    assert reopened.count_document(TENANT_A, chunks[0].document_id) == 4
    # And it keeps accepting writes
    extra = make_chunk(TENANT_A, "p.txt", "lighthouse keeper log extra", ordinal=9)
    add(reopened, embedder, [extra])
    assert reopened.count_document(TENANT_A, chunks[0].document_id) == 5


def test_tuned_fusion_is_kept_with_the_index(open_index, embedder, make_chunk):
    # Given an index with data, never tuned
    index = open_index("tuned")
    add(index, embedder, [make_chunk(TENANT_A, "t.txt", "tide tables for the harbour")])
    assert index.tuned_fusion() is None
    # When fusion parameters fitted on a golden set are stored with it
    tuned = {"fusion": {"method": "dbsf", "bm25_weight": 0.3}, "golden_set": "owner-set"}
    index.store_tuned_fusion(tuned)
    # Then they read back, also after a reopen, and the data is untouched
    assert index.tuned_fusion() == tuned
    index.close()
    reopened = open_index("tuned")
    assert reopened.tuned_fusion() == tuned
    assert ids(reopened.search_bm25("harbour tide", SearchFilter(tenant=TENANT_A), 5))
    # And storing None forgets them
    reopened.store_tuned_fusion(None)
    assert reopened.tuned_fusion() is None


@pytest.mark.parametrize(
    "other",
    [
        EmbeddingModelInfo(name="another-model", version="1", dimension=64),
        EmbeddingModelInfo(name="test-bag-of-words", version="2", dimension=64),
        EmbeddingModelInfo(name="test-bag-of-words", version="1", dimension=32),
    ],
)
def test_reopening_with_another_model_raises_model_mismatch(open_index, other):
    index = open_index("models")
    assert index.model.tag == "test-bag-of-words@1"
    index.close()
    with pytest.raises(ModelMismatch) as raised:
        open_index("models", model=other)
    assert "test-bag-of-words@1" in str(raised.value) and other.tag in str(raised.value)


# --- hostile query text -------------------------------------------------------------------------

WEIRD_QUERIES = [
    "",
    "   ",
    '"',
    '"unbalanced quote',
    "title:cats",
    "tenant:tenant-b",
    "a:b:c",
    "(cats OR",
    "cats AND dogs",
    "AND",
    "NOT cats",
    "OR OR OR",
    "-cats +dogs",
    "cats^10",
    "cat*",
    "?",
    "~2",
    "[1 TO 5]",
    "{a TO b}",
    "\\",
    "/regex.*/",
    "\x00\x01",
    "the of and a",
    "ünïcödé naïve café",
    "日本語のテキスト",
    "🙂🚀",
    "cats " * 2000,
    "x" * 5000,
]


@pytest.mark.parametrize("query", WEIRD_QUERIES, ids=range(len(WEIRD_QUERIES)))
def test_hostile_query_text_never_raises(index, embedder, make_chunk, query):
    add(index, embedder, [make_chunk(TENANT_A, "w.txt", "cats and dogs, café naïve 日本語")])
    hits = index.search_bm25(query, SearchFilter(tenant=TENANT_A), 5)
    assert all(h.chunk.tenant == TENANT_A for h in hits)
    matches = index.query_term_matches(query, hits)
    assert len(matches.matched) == len(hits)


def test_field_syntax_in_queries_is_just_text(index, embedder, make_chunk):
    # "tenant:tenant-b" must not reach tenant B's chunks: it is matched as words
    mine = make_chunk(TENANT_A, "mine.txt", "nothing relevant here")
    theirs = make_chunk(TENANT_B, "theirs.txt", "tenant b secrets")
    add(index, embedder, [mine, theirs])
    assert index.search_bm25("tenant:tenant-b secrets", SearchFilter(tenant=TENANT_A), 5) == []


# --- property: no hit ever violates the filter ---------------------------------------------------

_example_numbers = itertools.count()
_TENANTS = ["t1", "t2", "t3"]
_GROUPS = ["g1", "g2", "g3"]
_WORDS = ["alpha", "beta", "gamma", "delta", "omega"]

_chunk_specs = st.lists(
    st.tuples(
        st.sampled_from(_TENANTS),
        st.frozensets(st.sampled_from(_GROUPS), max_size=2),
        st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=25,
)
_filters = st.builds(
    SearchFilter,
    tenant=st.sampled_from(_TENANTS),
    groups=st.frozensets(st.sampled_from(_GROUPS), max_size=3),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=_chunk_specs,
    flt=_filters,
    words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3),
)
def test_property_no_hit_violates_tenant_or_acl(
    open_index, embedder, make_chunk, retrieve, specs, flt, words
):
    # Given random chunks across tenants and groups
    chunks = [
        make_chunk(tenant, f"src{i}.txt", " ".join(text), groups=sorted(groups), ordinal=i)
        for i, (tenant, groups, text) in enumerate(specs)
    ]
    index = open_index(f"prop-{next(_example_numbers)}")
    try:
        add(index, embedder, chunks)
        visible = {
            c.chunk_id
            for c in chunks
            if c.tenant == flt.tenant and (not c.acl_groups or flt.groups & set(c.acl_groups))
        }
        query = " ".join(words)
        # When searching with any k / Then every hit passes the filter
        for k in (1, 3, len(chunks)):
            for hit in retrieve(index, query, flt, k):
                assert hit.chunk.chunk_id in visible
        # And the filter runs before top-k: k = all returns every candidate the filter lets
        # through (k-NN: every visible chunk; BM25: the visible ones sharing a query word)
        everything = set(ids(retrieve(index, query, flt, len(chunks))))
        if retrieve.name == "bm25":
            expected = {
                c.chunk_id
                for c in chunks
                if c.chunk_id in visible and set(words) & set(c.text.split())
            }
        else:
            expected = visible
        assert everything == expected
    finally:
        index.close()


__all__ = [name for name in list(globals()) if name.startswith("test_")] + [
    "knn_available",
    "retrieve",
]
