"""The OpenSearch adapter without a server: request bodies against the documented DSL (k-NN
plugin, hybrid query, search pipelines), bulk retries on 429, error wrapping, client options.

osmem-server (tests/integration/test_opensearch_contract.py) runs everything else; it has no
k-NN plugin, so the k-NN side is checked here. References: OpenSearch docs "k-NN index" (method
definitions), "Efficient k-NN filtering", "Hybrid query", "Score ranker processor".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.search_contract import MODEL, TENANT_A, make_chunk_record

from docket.config import Settings
from docket.errors import IndexUnavailable, ModelMismatch
from docket.models import EmbeddingModelInfo, SearchFilter
from docket.search.opensearch import (
    MAX_QUERY_CHARS,
    MAX_RESULT_WINDOW,
    OpenSearchIndex,
    backoff_seconds,
    bm25_query_body,
    chunk_document,
    cut_query,
    filter_clauses,
    hybrid_query_body,
    index_body,
    index_names,
    knn_query_body,
    knn_score_to_cosine,
    model_slug,
    opensearch_client,
    rrf_search_pipeline_body,
    term_matches_body,
)

FLT = SearchFilter(tenant=TENANT_A, groups=frozenset({"hr", "legal"}))


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "search_backend": "opensearch",
        "opensearch_endpoint": "https://search.example.com",
        "opensearch_index_prefix": "chunks",
        "opensearch_max_retries": 3,
    }
    return Settings(**(values | overrides))


class FakeIndices:
    def __init__(self, existing: dict[str, Any] | None = None) -> None:
        self.existing = existing or {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("get", kw))
        return self.existing

    def create(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("create", kw))
        self.existing[kw["index"]] = {
            "aliases": {},
            "mappings": {"_meta": kw["body"]["mappings"]["_meta"]},
        }
        return {"acknowledged": True}

    def update_aliases(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("update_aliases", kw))
        return {"acknowledged": True}

    def put_settings(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("put_settings", kw))
        return {"acknowledged": True}

    def refresh(self, **kw: Any) -> dict[str, Any]:
        self.calls.append(("refresh", kw))
        return {"_shards": {}}


class FakeClient:
    """Answers bulk and search from scripted responses (an exception in the script is raised)."""

    def __init__(self, bulk: list[Any] | None = None, search: list[Any] | None = None) -> None:
        self.indices = FakeIndices()
        self.bulk_script = bulk or []
        self.search_script = search or []
        self.bulk_bodies: list[list[dict[str, Any]]] = []
        self.search_bodies: list[dict[str, Any]] = []

    def bulk(self, *, index: str, body: list[dict[str, Any]]) -> Any:
        self.bulk_bodies.append(body)
        answer = self.bulk_script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer(body) if callable(answer) else answer

    def search(self, *, index: str, body: dict[str, Any], **kw: Any) -> Any:
        self.search_bodies.append(body)
        answer = self.search_script.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def adapter(client: FakeClient, sleeps: list[float] | None = None, **kw: Any) -> OpenSearchIndex:
    recorded = sleeps if sleeps is not None else []
    return OpenSearchIndex(
        client,
        MODEL,
        settings(**kw),
        ensure=False,
        sleep=recorded.append,
        rng=lambda: 1.0,  # the upper bound of the jitter
    )


def items(statuses: list[int], op: str = "index") -> dict[str, Any]:
    out = []
    for i, status in enumerate(statuses):
        result: dict[str, Any] = {"_id": f"id{i}", "status": status}
        if status >= 300:
            kind = "es_rejected_execution_exception" if status == 429 else "mapper_exception"
            result["error"] = {"type": kind, "reason": f"reason {i}"}
        out.append({op: result})
    return {"errors": any(s >= 300 for s in statuses), "items": out}


def chunks(n: int) -> list[Any]:
    return [make_chunk_record(TENANT_A, "b.txt", f"text {i}", ordinal=i) for i in range(n)]


def vectors(n: int) -> np.ndarray:
    return np.ones((n, MODEL.dimension), dtype=np.float32)


# --- mappings --------------------------------------------------------------------------------------


def test_index_body_maps_a_faiss_hnsw_vector_and_english_bm25():
    body = index_body(MODEL, "chunks", shards=2, replicas=1)
    # Then the index is a k-NN index with the model's dimension and faiss HNSW
    assert body["settings"]["index"] == {
        "knn": True,
        "number_of_shards": 2,
        "number_of_replicas": 1,
    }
    props = body["mappings"]["properties"]
    assert props["vector"] == {
        "type": "knn_vector",
        "dimension": 64,
        "method": {
            "name": "hnsw",
            "engine": "faiss",
            "space_type": "innerproduct",
            "parameters": {"m": 16, "ef_construction": 128},
        },
    }
    # And BM25 runs on the english analyzer; filter fields are keywords, pages integers
    assert props["body"] == {"type": "text", "analyzer": "english"}
    for field in ("tenant", "acl_groups", "document_id", "source", "chunk_id"):
        assert props[field] == {"type": "keyword"}
    for field in ("page_start", "page_end", "ordinal"):
        assert props[field] == {"type": "integer"}
    assert props["public"] == {"type": "boolean"}
    assert body["mappings"]["_meta"]["docket"]["model"] == MODEL.model_dump()


def test_index_names_are_versioned_per_model_with_read_and_write_aliases():
    model = EmbeddingModelInfo(
        name="sentence-transformers/all-MiniLM-L6-v2", version="1", dimension=384
    )
    names = index_names("chunks", model, 3)
    assert model_slug(model) == "sentence-transformers-all-minilm-l6-v2"
    assert names.index == "chunks-sentence-transformers-all-minilm-l6-v2-v3"
    assert names.read == "chunks-sentence-transformers-all-minilm-l6-v2-read"
    assert names.write == "chunks-sentence-transformers-all-minilm-l6-v2-write"


def test_chunk_document_indexes_the_header_with_the_text_and_marks_public_chunks():
    chunk = make_chunk_record(TENANT_A, "a.txt", "body text", title="Title", section="Sec")
    doc = chunk_document(chunk, [0.5, 0.5])
    assert doc["body"] == "Title\nSec\nbody text"
    assert doc["public"] is True and doc["vector"] == [0.5, 0.5]
    assert {k: doc[k] for k in chunk.model_dump()} == chunk.model_dump(mode="json")
    restricted = chunk.model_copy(update={"acl_groups": ["hr"]})
    assert chunk_document(restricted, None)["public"] is False
    assert "vector" not in chunk_document(restricted, None)  # a partial update keeps it


# --- filters and queries ---------------------------------------------------------------------------


def test_filter_clauses_follow_the_acl_semantics():
    assert filter_clauses(SearchFilter(tenant=TENANT_A)) == [
        {"term": {"tenant": TENANT_A}},
        {"term": {"public": True}},
    ]
    assert filter_clauses(FLT) == [
        {"term": {"tenant": TENANT_A}},
        {
            "bool": {
                "should": [{"term": {"public": True}}, {"terms": {"acl_groups": ["hr", "legal"]}}],
                "minimum_should_match": 1,
            }
        },
    ]
    scoped = SearchFilter(
        tenant=TENANT_A, document_ids=frozenset({"d2", "d1"}), sources=frozenset({"s"})
    )
    assert filter_clauses(scoped)[2:] == [  # type: ignore[index]
        {"terms": {"document_id": ["d1", "d2"]}},
        {"terms": {"source": ["s"]}},
    ]
    assert filter_clauses(SearchFilter(tenant=TENANT_A, sources=frozenset())) is None


def test_knn_body_filters_inside_the_knn_clause_before_top_k():
    vector = [0.6, 0.8]
    body = knn_query_body(vector, FLT, 7)
    # Then the filter is the knn clause's own (efficient filtering), not a post_filter or a
    # bool around it, and k and size agree
    assert body == {
        "size": 7,
        "_source": {"includes": sorted(make_chunk_record(TENANT_A, "x", "y").model_dump())},
        "query": {
            "knn": {
                "vector": {
                    "vector": vector,
                    "k": 7,
                    "filter": {"bool": {"filter": filter_clauses(FLT)}},
                }
            }
        },
    }
    assert "post_filter" not in body
    assert knn_query_body(vector, FLT, 10**9)["query"]["knn"]["vector"]["k"] == MAX_RESULT_WINDOW  # type: ignore[index]
    assert knn_query_body(vector, FLT, 0) is None
    assert (
        knn_query_body(vector, SearchFilter(tenant=TENANT_A, document_ids=frozenset()), 5) is None
    )


def test_bm25_body_matches_the_text_and_filters_without_scoring():
    body = bm25_query_body("cats: AND (dogs", FLT, 5)
    assert body is not None and body["size"] == 5
    assert body["query"] == {
        "bool": {
            "must": [{"match": {"body": {"query": "cats: AND (dogs"}}}],
            "filter": filter_clauses(FLT),
        }
    }
    assert bm25_query_body("   ", FLT, 5) is None
    assert bm25_query_body("cats", FLT, 0) is None
    assert bm25_query_body("cats", FLT, 10**9)["size"] == MAX_RESULT_WINDOW  # type: ignore[index]


def test_long_queries_are_cut_to_stay_under_the_clause_limit():
    long = "cats " * 2000
    cut = cut_query(long)
    assert len(cut) <= MAX_QUERY_CHARS and cut.startswith("cats cats") and not cut.endswith(" ")
    assert cut_query("x" * 5000) == "x" * MAX_QUERY_CHARS
    assert cut_query("short") == "short"


def test_hybrid_body_and_rrf_pipeline_follow_the_documented_dsl():
    body = hybrid_query_body("cats", [1.0, 0.0], FLT, 10)
    assert body is not None and body["size"] == 10
    lexical, dense = body["query"]["hybrid"]["queries"]
    assert lexical == bm25_query_body("cats", FLT, 10)["query"]  # type: ignore[index]
    assert dense == knn_query_body([1.0, 0.0], FLT, 10)["query"]  # type: ignore[index]
    # a query with no words still runs its k-NN half
    assert len(hybrid_query_body("", [1.0, 0.0], FLT, 10)["query"]["hybrid"]["queries"]) == 1  # type: ignore[index]
    assert rrf_search_pipeline_body()["phase_results_processors"] == [
        {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 60}}}
    ]


def test_term_matches_body_names_each_term_and_restricts_to_the_hits():
    body = term_matches_body(["magma", "basalt"], ["t/a", "t/b"])
    assert body["size"] == 2 and body["_source"] is False
    assert body["query"]["bool"]["filter"] == [{"ids": {"values": ["t/a", "t/b"]}}]
    assert body["query"]["bool"]["should"] == [
        {"term": {"body": {"value": "magma", "_name": "0"}}},
        {"term": {"body": {"value": "basalt", "_name": "1"}}},
    ]


# --- k-NN through the adapter ----------------------------------------------------------------------


@given(st.floats(min_value=-1.0, max_value=1.0))
def test_knn_scores_map_back_to_the_cosine(cosine):
    # the k-NN plugin's innerproduct score: 1 + ip for ip >= 0, else 1 / (1 - ip)
    score = 1.0 + cosine if cosine >= 0 else 1.0 / (1.0 - cosine)
    assert knn_score_to_cosine(score) == pytest.approx(cosine, abs=1e-9)


def test_search_knn_sends_a_unit_vector_and_returns_cosines():
    chunk = make_chunk_record(TENANT_A, "k.txt", "vector text")
    hit = {"_id": "x", "_score": 1.5, "_source": chunk.model_dump(mode="json")}
    client = FakeClient(search=[{"hits": {"hits": [hit]}}])
    index = adapter(client)
    query = np.zeros(MODEL.dimension)
    query[:2] = [3.0, 4.0]
    hits = index.search_knn(query, FLT, 3)
    sent = client.search_bodies[0]["query"]["knn"]["vector"]
    assert sent["vector"][:2] == pytest.approx([0.6, 0.8]) and sent["k"] == 3
    assert sent["filter"] == {"bool": {"filter": filter_clauses(FLT)}}
    assert [(h.chunk, h.score, h.rank, h.retriever) for h in hits] == [(chunk, 0.5, 1, "knn")]


def test_wrong_dimensions_raise_model_mismatch_before_any_request():
    client = FakeClient()
    index = adapter(client)
    with pytest.raises(ModelMismatch):
        index.search_knn(np.ones(MODEL.dimension - 1), FLT, 5)
    with pytest.raises(ModelMismatch):
        index.upsert(chunks(1), np.ones((1, MODEL.dimension + 1)))
    with pytest.raises(ValueError):
        index.upsert(chunks(1), np.full((1, MODEL.dimension), math.nan))
    assert client.search_bodies == [] and client.bulk_bodies == []


# --- bulk and retries ------------------------------------------------------------------------------


def test_upsert_writes_id_keyed_index_actions_with_unit_vectors():
    client = FakeClient(bulk=[items([201, 201])])
    adapter(client).upsert(chunks(2), vectors(2) * 5)
    body = client.bulk_bodies[0]
    first = chunks(1)[0]
    assert body[0] == {"index": {"_id": f"{TENANT_A}/{first.chunk_id}"}}
    assert np.linalg.norm(body[1]["vector"]) == pytest.approx(1.0)
    assert len(body) == 4


def test_bulk_retries_only_throttled_items_with_growing_backoff():
    # Given a bulk whose second item is throttled twice, then accepted
    client = FakeClient(bulk=[items([201, 429, 201]), items([429]), items([201])])
    sleeps: list[float] = []
    adapter(client, sleeps).upsert(chunks(3), vectors(3))
    # Then only the throttled item is sent again, after 0.2 s then 0.4 s (full jitter's bound)
    assert [len(b) for b in client.bulk_bodies] == [6, 2, 2]
    assert client.bulk_bodies[1] == client.bulk_bodies[0][2:4]
    assert sleeps == pytest.approx([0.2, 0.4])


def test_a_throttled_request_is_retried_as_a_whole():
    from opensearchpy.exceptions import TransportError

    client = FakeClient(bulk=[TransportError(429, "too_many_requests", {}), items([201, 201])])
    sleeps: list[float] = []
    adapter(client, sleeps).upsert(chunks(2), vectors(2))
    assert client.bulk_bodies[0] == client.bulk_bodies[1] and len(sleeps) == 1


def test_bulk_gives_up_after_max_retries_with_index_unavailable():
    client = FakeClient(bulk=[items([429]) for _ in range(4)])
    sleeps: list[float] = []
    with pytest.raises(IndexUnavailable, match="429"):
        adapter(client, sleeps, opensearch_max_retries=3).upsert(chunks(1), vectors(1))
    assert len(client.bulk_bodies) == 4 and len(sleeps) == 3


def test_other_item_errors_raise_index_unavailable_with_the_reason():
    client = FakeClient(bulk=[items([201, 400])])
    with pytest.raises(IndexUnavailable, match="mapper_exception: reason 1"):
        adapter(client).upsert(chunks(2), vectors(2))


def test_backoff_is_exponential_capped_and_jittered():
    assert [backoff_seconds(a, lambda: 1.0) for a in range(3)] == [0.2, 0.4, 0.8]
    assert backoff_seconds(30, lambda: 1.0) == 10.0
    assert backoff_seconds(3, lambda: 0.5) == pytest.approx(0.8)


def test_delete_chunks_counts_deleted_and_ignores_not_found():
    client = FakeClient(bulk=[items([200, 404], op="delete")])
    assert adapter(client).delete_chunks(TENANT_A, ["chk_b", "chk_a"]) == 1
    assert client.bulk_bodies[0] == [
        {"delete": {"_id": f"{TENANT_A}/chk_a"}},
        {"delete": {"_id": f"{TENANT_A}/chk_b"}},
    ]


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("connection", "cannot reach OpenSearch"),
        ("not_found", "does not exist"),
        ("unavailable", "503"),
    ],
)
def test_client_errors_become_index_unavailable(error, message):
    from opensearchpy.exceptions import ConnectionError, NotFoundError, TransportError

    raised = {
        "connection": ConnectionError("N/A", "refused", OSError("refused")),
        "not_found": NotFoundError(404, "index_not_found_exception", {}),
        "unavailable": TransportError(503, "unavailable", {}),
    }[error]
    index = adapter(FakeClient(search=[raised]))
    with pytest.raises(IndexUnavailable, match=message) as caught:
        index.search_bm25("cats", FLT, 5)
    assert caught.value.__cause__ is raised


# --- opening ---------------------------------------------------------------------------------------


def test_ensure_index_creates_the_index_and_both_aliases_once():
    client = FakeClient()
    index = OpenSearchIndex(client, MODEL, settings(opensearch_index_version=2))
    names = index.names
    calls = [name for name, _ in client.indices.calls]
    assert calls == ["get", "create", "get", "update_aliases"]
    create = client.indices.calls[1][1]
    assert create["index"] == names.index == "chunks-test-bag-of-words-v2"
    actions = client.indices.calls[3][1]["body"]["actions"]
    assert actions == [
        {"add": {"index": names.index, "alias": names.read}},
        {"add": {"index": names.index, "alias": names.write, "is_write_index": True}},
    ]


def test_ensure_index_leaves_aliases_where_a_rebuild_put_them():
    # Given a rebuild in progress: writes go to v2, reads still to v1
    client = FakeClient()
    meta = index_body(MODEL, "chunks")["mappings"]["_meta"]
    client.indices.existing = {
        "chunks-test-bag-of-words-v1": {
            "aliases": {"chunks-test-bag-of-words-read": {}},
            "mappings": {"_meta": meta},
        },
        "chunks-test-bag-of-words-v2": {
            "aliases": {"chunks-test-bag-of-words-write": {"is_write_index": True}},
            "mappings": {"_meta": meta},
        },
    }
    # When the index opens / Then nothing is created and no alias moves
    OpenSearchIndex(client, MODEL, settings())
    assert [name for name, _ in client.indices.calls] == ["get"]


def test_opening_an_index_of_another_model_raises_model_mismatch():
    client = FakeClient()
    stored = EmbeddingModelInfo(name="test-bag-of-words", version="1", dimension=32)
    client.indices.existing = {
        "chunks-test-bag-of-words-v1": {
            "aliases": {"chunks-test-bag-of-words-write": {}},
            "mappings": {"_meta": index_body(stored, "chunks")["mappings"]["_meta"]},
        }
    }
    with pytest.raises(ModelMismatch, match="test-bag-of-words@1"):
        OpenSearchIndex(client, MODEL, settings())


# --- the client --------------------------------------------------------------------------------------


def test_sigv4_client_signs_for_the_es_service_in_the_region(monkeypatch):
    from opensearchpy import AWSV4SignerAuth, RequestsHttpConnection

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = opensearch_client(settings(region="eu-west-1"))
    connection = client.transport.get_connection()
    assert isinstance(connection, RequestsHttpConnection)
    auth = connection.session.auth
    assert isinstance(auth, AWSV4SignerAuth)
    assert auth.signer.region == "eu-west-1" and auth.signer.service == "es"
    assert connection.host == "https://search.example.com:443"


def test_basic_and_no_auth_clients():
    basic = opensearch_client(
        settings(opensearch_auth="basic", opensearch_username="u", opensearch_password="p")
    )
    assert basic.transport.get_connection().session.auth == ("u", "p")
    plain = opensearch_client(
        settings(opensearch_auth="none", opensearch_endpoint="http://localhost:9200")
    )
    assert plain.transport.get_connection().session.auth is None
    with pytest.raises(IndexUnavailable, match="username"):
        opensearch_client(settings(opensearch_auth="basic"))
    with pytest.raises(IndexUnavailable, match="opensearch_endpoint"):
        opensearch_client(settings(opensearch_endpoint=None))


def test_the_factory_keeps_one_opensearch_index_per_endpoint_and_model(monkeypatch):
    from docket.search import factory, opensearch

    opened: list[tuple[Any, ...]] = []

    class Recorder:
        def __init__(self, client: Any, model: Any, s: Any, **kw: Any) -> None:
            opened.append((s.opensearch_endpoint, model.tag))

        def close(self) -> None:
            pass

    monkeypatch.setattr(opensearch, "OpenSearchIndex", Recorder)
    monkeypatch.setattr(opensearch, "opensearch_client", lambda s: object())
    base = {"embedding_provider": "hash", "opensearch_auth": "none"}
    try:
        one = factory.get_index(settings(**base))
        assert factory.get_index(settings(**base)) is one
        other = factory.get_index(settings(**base, opensearch_endpoint="https://other.example.com"))
        assert other is not one
        assert [endpoint for endpoint, _ in opened] == [
            "https://search.example.com",
            "https://other.example.com",
        ]
    finally:
        factory.close_indexes()


def test_a_generation_loads_without_refresh_or_replicas_then_gets_them_back():
    client = FakeClient()
    index = adapter(client, opensearch_replicas=2)
    index.bulk_loading(True)
    index.bulk_loading(False)
    name = index.names.index
    assert client.indices.calls == [
        (
            "put_settings",
            {"index": name, "body": {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}},
        ),
        (
            "put_settings",
            {"index": name, "body": {"index": {"refresh_interval": None, "number_of_replicas": 2}}},
        ),
        ("refresh", {"index": name}),
    ]
