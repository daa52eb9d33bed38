"""The SearchIndex contract (tests/search_contract.py) against the OpenSearch adapter, served by
osmem-server: a local, in-memory OpenSearch-compatible server (a subprocess; each test gets its
own copy-on-write clone of it, see osmem_server.pytest_plugin).

osmem has no k-NN plugin, so every k-NN case skips here with that reason; the k-NN mapping and
query bodies are checked against the documented DSL in tests/unit/search/test_opensearch_bodies.py.
Everything else (index lifecycle, aliases, bulk, BM25 with filters, delete-by-query, term
statistics and named queries) runs against the server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from docket.config import Settings
from docket.errors import IndexUnavailable, ModelMismatch
from docket.models import EmbeddingModelInfo, SearchFilter
from docket.search.opensearch import OpenSearchIndex, index_body, index_names, opensearch_client
from docket.search.port import SearchIndex
from tests.search_contract import *  # noqa: F403  (the contract cases and their fixtures)
from tests.search_contract import (
    MODEL,
    TENANT_A,
    Backend,
    BagOfWordsEmbedder,
    MakeChunk,
    OpenIndex,
    add,
    ids,
    make_chunk_record,
)

pytestmark = pytest.mark.integration

NO_KNN = "osmem-server has no k-NN plugin: the k-NN body is checked in test_opensearch_bodies.py"


def _settings(url: str, prefix: str) -> Settings:
    return Settings(
        search_backend="opensearch",
        opensearch_endpoint=url,
        opensearch_auth="none",
        opensearch_index_prefix=prefix,
        opensearch_replicas=0,
        opensearch_timeout_seconds=30,
    )


@pytest.fixture
def index_backend() -> Backend:
    return Backend("opensearch", knn=False, no_knn_reason=NO_KNN)


@pytest.fixture
def model() -> EmbeddingModelInfo:
    return MODEL


@pytest.fixture
def embedder() -> BagOfWordsEmbedder:
    return BagOfWordsEmbedder()


@pytest.fixture
def make_chunk() -> MakeChunk:
    return make_chunk_record


@pytest.fixture
def open_index(osmem_clone) -> Iterator[OpenIndex]:  # type: ignore[no-untyped-def]
    """``open_index(name="main", model=MODEL)``: the index under prefix ``name`` on this test's
    own osmem clone, through the production client builder (auth "none")."""
    opened: list[SearchIndex] = []

    def factory(name: str = "main", model: EmbeddingModelInfo = MODEL, **kw) -> SearchIndex:  # type: ignore[no-untyped-def]
        settings = _settings(osmem_clone.url, name)
        index = OpenSearchIndex(
            opensearch_client(settings), model, settings, close_client=True, **kw
        )
        opened.append(index)
        return index

    yield factory
    for index in opened:
        with contextlib.suppress(Exception):
            index.close()


@pytest.fixture
def index(open_index: OpenIndex) -> SearchIndex:
    return open_index()


@pytest.fixture
def raw(osmem_clone):  # type: ignore[no-untyped-def]
    """A plain client on the same clone, to look behind the adapter."""
    from opensearchpy import OpenSearch

    client = OpenSearch(hosts=[osmem_clone.url])
    yield client
    client.close()


# --- what only a server can show ----------------------------------------------------------------


def test_ensure_index_creates_a_versioned_index_behind_read_and_write_aliases(open_index, raw):
    # Given a fresh cluster / When the index opens (twice: ensure_index is idempotent)
    open_index("chunks").close()
    index = open_index("chunks")
    index.ensure_index()
    names = index_names("chunks", MODEL, 1)
    # Then one index exists, named for the model and version, with both aliases on it
    found = raw.indices.get(index="chunks-*")
    assert list(found) == [names.index] == ["chunks-test-bag-of-words-v1"]
    aliases = found[names.index]["aliases"]
    assert set(aliases) == {"chunks-test-bag-of-words-read", "chunks-test-bag-of-words-write"}
    assert aliases[names.write].get("is_write_index") is True
    # And the mapping holds the model, the faiss HNSW vector and the english BM25 field
    mappings = found[names.index]["mappings"]
    assert mappings["_meta"]["docket"]["model"] == MODEL.model_dump()
    vector = mappings["properties"]["vector"]
    assert vector["type"] == "knn_vector" and vector["dimension"] == MODEL.dimension
    assert vector["method"]["engine"] == "faiss" and vector["method"]["name"] == "hnsw"
    assert mappings["properties"]["body"]["analyzer"] == "english"
    for keyword in ("tenant", "acl_groups", "document_id", "source", "chunk_id"):
        assert mappings["properties"][keyword]["type"] == "keyword"


def test_the_aliases_decide_where_reads_and_writes_go(open_index, raw, embedder, make_chunk):
    # Given an index whose aliases were moved to a rebuilt v2 (a reindex done by hand)
    index = open_index("moved")
    add(index, embedder, [make_chunk(TENANT_A, "old.txt", "walrus tusks")])
    names = index_names("moved", MODEL, 1)
    raw.indices.create(index="moved-test-bag-of-words-v2", body=index_body(MODEL, "moved"))
    raw.indices.update_aliases(
        body={
            "actions": [
                {"remove": {"index": names.index, "alias": names.read}},
                {"remove": {"index": names.index, "alias": names.write}},
                {"add": {"index": "moved-test-bag-of-words-v2", "alias": names.read}},
                {
                    "add": {
                        "index": "moved-test-bag-of-words-v2",
                        "alias": names.write,
                        "is_write_index": True,
                    }
                },
            ]
        }
    )
    # When the index reopens and writes
    reopened = open_index("moved")
    add(reopened, embedder, [make_chunk(TENANT_A, "new.txt", "walrus whiskers")])
    # Then it reads and writes v2 only, and no index was created
    flt = SearchFilter(tenant=TENANT_A)
    assert [h.chunk.source for h in reopened.search_bm25("walrus", flt, 10)] == ["new.txt"]
    assert raw.count(index="moved-test-bag-of-words-v2")["count"] == 1
    assert sorted(raw.indices.get(index="moved-*")) == [names.index, "moved-test-bag-of-words-v2"]


def test_a_new_model_opens_beside_the_old_only_when_allowed(open_index, raw):
    # Given an index for one model
    open_index("reembed").close()
    other = EmbeddingModelInfo(name="next-model", version="1", dimension=32)
    # Then another model is refused, unless the caller builds its index on purpose
    with pytest.raises(ModelMismatch):
        open_index("reembed", model=other)
    beside = open_index("reembed", model=other, allow_new_model=True)
    assert beside.names.index == "reembed-next-model-v1"
    # And once both exist, each opens its own
    assert open_index("reembed", model=other).model == other
    assert open_index("reembed").model == MODEL


def test_bulk_upsert_of_many_chunks_and_counts(index, embedder, make_chunk):
    chunks = [make_chunk(TENANT_A, "big.txt", f"ledger entry {i}", ordinal=i) for i in range(600)]
    add(index, embedder, chunks)
    assert index.count_document(TENANT_A, chunks[0].document_id) == 600
    assert len(index.search_bm25("ledger", SearchFilter(tenant=TENANT_A), 10**9)) == 600


def test_uncommitted_chunks_are_deleted_with_their_document(index, embedder, make_chunk):
    # Given chunks upserted but not committed
    chunks = [make_chunk(TENANT_A, "fresh.txt", f"draft page {i}", ordinal=i) for i in range(3)]
    index.upsert(chunks, embedder.embed_documents([c.text for c in chunks]))
    # When the document is deleted / Then they go too
    assert index.delete_document(TENANT_A, chunks[0].document_id) == 3
    index.commit()
    assert index.count_document(TENANT_A, chunks[0].document_id) == 0


def test_a_missing_index_raises_index_unavailable_with_a_clear_message(index, raw):
    # Given the index was deleted behind the adapter's back
    raw.indices.delete(index=index.names.index)
    # When searching / Then IndexUnavailable names the alias and the way out
    with pytest.raises(IndexUnavailable) as raised:
        index.search_bm25("anything", SearchFilter(tenant=TENANT_A), 5)
    assert index.names.read in str(raised.value) and "ensure_index" in str(raised.value)


def test_an_unreachable_server_raises_index_unavailable():
    settings = _settings("http://127.0.0.1:9", "down")  # discard port: nothing listens
    with pytest.raises(IndexUnavailable, match="cannot reach OpenSearch"):
        OpenSearchIndex(opensearch_client(settings), MODEL, settings)


def test_writes_after_close_raise(index, make_chunk):
    index.close()
    with pytest.raises(IndexUnavailable, match="closed"):
        index.upsert([make_chunk(TENANT_A, "c.txt", "late")], np.ones((1, MODEL.dimension)))


def test_server_side_hybrid_needs_a_search_pipeline_osmem_lacks(index, embedder, make_chunk):
    # osmem answers 400 to search pipelines and hybrid queries: the adapter wraps it
    add(index, embedder, [make_chunk(TENANT_A, "h.txt", "hybrid retrieval")])
    with pytest.raises(IndexUnavailable):
        index.search_hybrid(
            "hybrid", embedder.embed_query("hybrid"), SearchFilter(tenant=TENANT_A), 5
        )


def test_query_term_matches_count_statistics_over_the_index(index, embedder, make_chunk):
    # Given a term in one chunk of three (and another in all three)
    chunks = [
        make_chunk(TENANT_A, "s.txt", f"river delta {word}", ordinal=i)
        for i, word in enumerate(["silt", "clay", "sand"])
    ]
    add(index, embedder, chunks)
    hits = index.search_bm25("river silt", SearchFilter(tenant=TENANT_A), 10)
    matches = index.query_term_matches("river silt", hits)
    # Then IDF follows ln(1 + (N - df + 0.5) / (df + 0.5))
    assert matches.weights["silt"] == pytest.approx(np.log(1 + 2.5 / 1.5))
    assert matches.weights["river"] == pytest.approx(np.log(1 + 0.5 / 3.5))
    assert ids(hits)[0] == chunks[0].chunk_id and matches.matched[0] == {"river", "silt"}
