"""The OpenSearch adapter of the search index port (Amazon OpenSearch Service 2.19+, opensearch-py).

It passes the same contract suite as the embedded index (tests/search_contract.py) and mirrors it
where the two can agree: the BM25 field holds the contextual header and the text (the embedded
index's default "single" field) under the ``english`` analyzer; the tenant/ACL/document/source
filter runs inside every retriever, before top-k; k-NN scores come back as cosines.

Layout, per embedding model: one versioned index ``{prefix}-{model}-v{n}`` behind a read alias
``{prefix}-{model}-read`` and a write alias ``{prefix}-{model}-write`` (``model`` is the slug of
the model's name; its name, version and dimension sit in the index's ``_meta``). A rebuild (a
new mapping, a new model version) fills ``-v{n+1}`` and then moves the aliases in one
``_aliases`` call; searches never see a half-built index.

Like the embedded index's directory, a prefix serves one embedding model: opening it with
another model raises ModelMismatch unless ``allow_new_model`` is set (a re-embed backfill that
builds the new model's index beside the old one).

Documents are keyed ``{tenant}/{chunk_id}``, the embedded index's key: one tenant's write can
never replace another tenant's chunk. The vector stays in ``_source`` because a partial update
(``update_metadata``) re-indexes the document from it.

The request bodies are built by pure functions (``*_body``) so tests can check them against the
documented DSL without a cluster; osmem-server (tests/integration) has no k-NN plugin.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from docket.chunking.context import contextual_header
from docket.config import Settings
from docket.embedding.port import Vectors
from docket.errors import IndexUnavailable, ModelMismatch
from docket.models import ChunkRecord, EmbeddingModelInfo, SearchFilter, SearchHit
from docket.search.fusion import HYBRID_RETRIEVER, TermMatches

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
BM25_FIELD = "body"
VECTOR_FIELD = "vector"
PUBLIC_FIELD = "public"  # no ACL groups: visible to the whole tenant (a field no group can fake)
# index.max_result_window and the k-NN plugin's largest k
MAX_RESULT_WINDOW = 10_000
# Query text is cut here: at most one token per character, so a match query (and the named term
# queries of query_term_matches) stay under the 1024-clause limit of the Lucene query tree.
MAX_QUERY_CHARS = 1_000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
# Vectors are L2-normalised here (as in the embedded index), so the inner product is the cosine;
# faiss computes it directly, where "cosinesimil" would normalise each vector again (and came to
# faiss only in 2.19). knn_score_to_cosine undoes the plugin's score transform.
SPACE_TYPE = "innerproduct"
RRF_RANK_CONSTANT = 60
_BACKOFF_BASE_SECONDS = 0.2
_BACKOFF_CAP_SECONDS = 10.0
_RECORD_FIELDS = sorted(ChunkRecord.model_fields)


# --- names ---------------------------------------------------------------------------------------


def model_slug(model: EmbeddingModelInfo) -> str:
    """The model's name as an index-name part: lowercase, ``[a-z0-9-]`` only."""
    slug = re.sub(r"[^a-z0-9]+", "-", model.name.lower()).strip("-")
    return slug[:100] or "model"


@dataclass(frozen=True)
class IndexNames:
    index: str
    read: str
    write: str


def index_names(prefix: str, model: EmbeddingModelInfo, version: int) -> IndexNames:
    base = f"{prefix}-{model_slug(model)}"
    return IndexNames(index=f"{base}-v{version}", read=f"{base}-read", write=f"{base}-write")


def doc_id(tenant: str, chunk_id: str) -> str:
    """A chunk's ``_id`` ("/" never occurs in a tenant id)."""
    return f"{tenant}/{chunk_id}"


def cut_query(text: str) -> str:
    """The part of the query text that is searched (see MAX_QUERY_CHARS), cut at a space."""
    if len(text) <= MAX_QUERY_CHARS:
        return text
    head = text[:MAX_QUERY_CHARS]
    space = head.rfind(" ")
    return head[:space] if space > 0 else head


# --- request bodies (pure) -------------------------------------------------------------------------


def index_body(
    model: EmbeddingModelInfo, prefix: str, *, shards: int = 1, replicas: int = 1
) -> dict[str, Any]:
    """Settings and mappings of a chunk index, with the model in ``_meta``.

    ``dynamic: false``: a ChunkRecord field added later is kept in ``_source`` (and comes back
    in hits) without a mapping change; it is just not searchable.
    """
    unindexed_text = {"type": "text", "index": False}
    return {
        "settings": {
            "index": {
                "knn": True,
                "number_of_shards": shards,
                "number_of_replicas": replicas,
            }
        },
        "mappings": {
            "dynamic": False,
            "_meta": {
                "docket": {
                    "format": FORMAT_VERSION,
                    "prefix": prefix,
                    "model": model.model_dump(),
                }
            },
            "properties": {
                VECTOR_FIELD: {
                    "type": "knn_vector",
                    "dimension": model.dimension,
                    "method": {
                        "name": "hnsw",
                        "engine": "faiss",
                        "space_type": SPACE_TYPE,
                        "parameters": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
                    },
                },
                BM25_FIELD: {"type": "text", "analyzer": "english"},
                PUBLIC_FIELD: {"type": "boolean"},
                "tenant": {"type": "keyword"},
                "document_id": {"type": "keyword"},
                "chunk_id": {"type": "keyword"},
                "source": {"type": "keyword"},
                "acl_groups": {"type": "keyword"},
                "ordinal": {"type": "integer"},
                "page_start": {"type": "integer"},
                "page_end": {"type": "integer"},
                "token_count": {"type": "integer", "index": False},
                "text": unindexed_text,
                "title": unindexed_text,
                "section": unindexed_text,
                "context": unindexed_text,
                "content_hash": {"type": "keyword", "index": False, "doc_values": False},
            },
        },
    }


def bm25_text(chunk: ChunkRecord) -> str:
    """What BM25 indexes for a chunk: the contextual header and the text, as embedded.py does."""
    heading = contextual_header(chunk.title, chunk.section, chunk.context)
    return f"{heading}\n{chunk.text}" if heading else chunk.text


def chunk_document(chunk: ChunkRecord, vector: Sequence[float] | None) -> dict[str, Any]:
    """The ``_source`` of a chunk: the record as is, the BM25 field, the public flag, the vector
    (``None`` for a partial update, which keeps the stored one)."""
    doc: dict[str, Any] = chunk.model_dump(mode="json")
    doc[BM25_FIELD] = bm25_text(chunk)
    doc[PUBLIC_FIELD] = not chunk.acl_groups
    if vector is not None:
        doc[VECTOR_FIELD] = [float(x) for x in vector]
    return doc


def filter_clauses(flt: SearchFilter) -> list[dict[str, Any]] | None:
    """Tenant, ACL and optional document/source clauses; ``None`` when nothing can match.

    A chunk with no ACL groups is public within its tenant; otherwise the caller needs one of
    its groups (SearchFilter's semantics, as the embedded index applies them).
    """
    public: dict[str, Any] = {"term": {PUBLIC_FIELD: True}}
    if flt.groups:
        acl: dict[str, Any] = {
            "bool": {
                "should": [public, {"terms": {"acl_groups": sorted(flt.groups)}}],
                "minimum_should_match": 1,
            }
        }
    else:
        acl = public
    clauses: list[dict[str, Any]] = [{"term": {"tenant": flt.tenant}}, acl]
    for field, values in (("document_id", flt.document_ids), ("source", flt.sources)):
        if values is not None:
            if not values:
                return None
            clauses.append({"terms": {field: sorted(values)}})
    return clauses


def _size(k: int) -> int:
    return max(0, min(k, MAX_RESULT_WINDOW))


def bm25_query(query: str, flt: SearchFilter) -> dict[str, Any] | None:
    """The BM25 query clause: ``match`` on the BM25 field (user text never reaches a query
    parser), the filter in ``filter`` context (no effect on scores)."""
    filters = filter_clauses(flt)
    text = cut_query(query)
    if filters is None or not text.strip():
        return None
    return {"bool": {"must": [{"match": {BM25_FIELD: {"query": text}}}], "filter": filters}}


def bm25_query_body(query: str, flt: SearchFilter, k: int) -> dict[str, Any] | None:
    """A BM25 search; ``None`` when it cannot return anything (k <= 0, empty text or filter)."""
    clause = bm25_query(query, flt)
    if clause is None or k <= 0:
        return None
    return {
        "size": _size(k),
        "track_total_hits": False,
        "_source": {"includes": _RECORD_FIELDS},
        "query": clause,
    }


def knn_query(vector: Sequence[float], flt: SearchFilter, k: int) -> dict[str, Any] | None:
    """The k-NN clause with efficient filtering: the filter sits inside ``knn``, so the plugin
    restricts the candidates (or searches exactly when few pass) before taking the top k."""
    filters = filter_clauses(flt)
    if filters is None or k <= 0:
        return None
    return {
        "knn": {
            VECTOR_FIELD: {
                "vector": [float(x) for x in vector],
                "k": _size(k),
                "filter": {"bool": {"filter": filters}},
            }
        }
    }


def knn_query_body(vector: Sequence[float], flt: SearchFilter, k: int) -> dict[str, Any] | None:
    clause = knn_query(vector, flt, k)
    if clause is None:
        return None
    return {"size": _size(k), "_source": {"includes": _RECORD_FIELDS}, "query": clause}


def hybrid_query_body(
    query: str, vector: Sequence[float], flt: SearchFilter, k: int
) -> dict[str, Any] | None:
    """One ``hybrid`` query (BM25 and k-NN, each filtered) for the RRF search pipeline."""
    lexical = bm25_query(query, flt)
    dense = knn_query(vector, flt, k)
    if dense is None or k <= 0:
        return None
    queries = [q for q in (lexical, dense) if q is not None]
    return {
        "size": _size(k),
        "_source": {"includes": _RECORD_FIELDS},
        "query": {"hybrid": {"queries": queries}},
    }


def rrf_search_pipeline_body(rank_constant: int = RRF_RANK_CONSTANT) -> dict[str, Any]:
    """The search pipeline that fuses a hybrid query's sub-results by reciprocal rank."""
    return {
        "description": "docket: reciprocal-rank fusion of BM25 and k-NN",
        "phase_results_processors": [
            {
                "score-ranker-processor": {
                    "combination": {"technique": "rrf", "rank_constant": rank_constant}
                }
            }
        ],
    }


def term_statistics_body(terms: Sequence[str]) -> dict[str, Any]:
    """Document count and each term's document frequency in the BM25 field (one search)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"match_all": {}},
        "aggs": {
            "df": {
                "filters": {
                    "filters": {str(i): {"term": {BM25_FIELD: t}} for i, t in enumerate(terms)}
                }
            }
        },
    }


def term_matches_body(terms: Sequence[str], ids: Sequence[str]) -> dict[str, Any]:
    """Which of ``terms`` each document of ``ids`` holds: named term queries (``_name`` is the
    term's position), reported per hit in ``matched_queries``."""
    named = [{"term": {BM25_FIELD: {"value": t, "_name": str(i)}}} for i, t in enumerate(terms)]
    return {
        "size": len(ids),
        "_source": False,
        "query": {"bool": {"filter": [{"ids": {"values": list(ids)}}], "should": named}},
    }


def knn_score_to_cosine(score: float) -> float:
    """Undo the k-NN plugin's ``innerproduct`` score: ``1 + ip`` for ip >= 0, else ``1/(1 - ip)``."""
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score


def backoff_seconds(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Exponential backoff with full jitter (attempt 0, 1, ...)."""
    return rng() * min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2.0**attempt)


# --- the adapter -----------------------------------------------------------------------------------


class OpenSearchIndex:
    """SearchIndex on an OpenSearch cluster (see the module docstring for layout and choices).

    Writes are visible to searches after ``commit`` (a refresh) or the index's refresh
    interval, whichever comes first; acknowledged writes are durable (translog).
    """

    def __init__(
        self,
        client: Any,
        model: EmbeddingModelInfo,
        settings: Settings,
        *,
        ensure: bool = True,
        allow_new_model: bool = False,
        close_client: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._client = client
        self._model = model
        self._prefix = settings.opensearch_index_prefix
        self._names = index_names(self._prefix, model, settings.opensearch_index_version)
        self._shards = settings.opensearch_shards
        self._replicas = settings.opensearch_replicas
        self._max_retries = settings.opensearch_max_retries
        self._allow_new_model = allow_new_model
        self._close_client = close_client
        self._sleep = sleep
        self._rng = rng
        self._closed = False
        self._pipeline_ready = False
        self._server_hybrid = settings.opensearch_hybrid == "server"
        self._lock = threading.Lock()
        if ensure:
            self.ensure_index()

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    @property
    def names(self) -> IndexNames:
        return self._names

    def ensure_index(self) -> None:
        """Create the versioned index and its aliases when missing; refuse another model's.

        Idempotent, and safe when two processes race: an index created meanwhile is checked
        like one found. The aliases, once there, are authoritative (a rebuild moves them).
        """
        with self._calls("ensure_index"):
            found = self._prefix_indexes()
            mine = [i for i, info in found.items() if self._names.write in info["aliases"]]
            if not mine:
                self._refuse_other_models(found)
                if self._names.index not in found:
                    self._create_index()
                    found = self._prefix_indexes()
                mine = [self._names.index]
            target = mine[0]
            self._check_model(target, found.get(target, {}).get("meta"))
            # an alias that exists anywhere stays where it is (mid-rebuild, the read alias may
            # still point at the previous version while the write alias moved on)
            aliases = {alias for info in found.values() for alias in info["aliases"]}
            actions = [
                {"add": {"index": target, "alias": alias, **extra}}
                for alias, extra in (
                    (self._names.read, {}),
                    (self._names.write, {"is_write_index": True}),
                )
                if alias not in aliases
            ]
            if actions:
                self._client.indices.update_aliases(body={"actions": actions})
                logger.info(
                    "created index aliases", extra={"index": target, "model": self._model.tag}
                )
        if self._server_hybrid:
            self._ensure_pipeline()

    def _ensure_pipeline(self) -> None:
        """The RRF search pipeline of the server-side hybrid query: read where it exists (the
        query functions may only read it), created where it is missing (by the writer, embed,
        whose fine-grained role may manage pipelines)."""
        from opensearchpy.exceptions import NotFoundError

        pipeline = f"{self._prefix}-rrf"
        with self._calls("ensure_pipeline"):
            try:
                self._client.search_pipeline.get(id=pipeline)
            except NotFoundError:
                self._client.search_pipeline.put(id=pipeline, body=rrf_search_pipeline_body())
        self._pipeline_ready = True

    def tuned_fusion(self) -> dict[str, Any] | None:
        """From the ``_meta`` of the index the read alias points at."""
        self._open()
        with self._calls("tuned_fusion"):
            raw = self._client.indices.get_mapping(index=self._names.read)
        for info in raw.values():
            tuned = info.get("mappings", {}).get("_meta", {}).get("docket", {}).get("tuned_fusion")
            return tuned if isinstance(tuned, dict) else None
        return None

    def store_tuned_fusion(self, tuned: dict[str, Any] | None) -> None:
        """Into the ``_meta`` of the index the read alias points at (``_meta`` is replaced
        whole by a mapping update, so the rest of docket's entry is written back with it)."""
        self._open()
        with self._calls("store_tuned_fusion"):
            raw = self._client.indices.get_mapping(index=self._names.read)
            for index, info in raw.items():
                meta = dict(info.get("mappings", {}).get("_meta", {}))
                docket = dict(meta.get("docket", {}))
                if tuned is None:
                    docket.pop("tuned_fusion", None)
                else:
                    docket["tuned_fusion"] = tuned
                meta["docket"] = docket
                self._client.indices.put_mapping(index=index, body={"_meta": meta})

    def commit(self) -> None:
        """Refresh: writes so far become visible to searches."""
        self._open()
        with self._calls("commit"):
            self._client.indices.refresh(index=self._names.write)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._close_client:
            with contextlib.suppress(Exception):
                self._client.close()

    # --- writes ----------------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[ChunkRecord], vectors: Vectors) -> None:
        matrix = self._validate_vectors(vectors, len(chunks))
        if not chunks:
            return
        self._open()
        last = {(c.tenant, c.chunk_id): i for i, c in enumerate(chunks)}  # the last one wins
        operations: list[dict[str, Any]] = []
        for i in sorted(last.values()):
            chunk = chunks[i]
            operations.append({"index": {"_id": doc_id(chunk.tenant, chunk.chunk_id)}})
            operations.append(chunk_document(chunk, matrix[i].tolist()))
        for item in self._bulk(operations, "upsert"):
            if item.get("status", 500) >= 300:
                raise IndexUnavailable(f"upsert failed on {self._names.write}: {_reason(item)}")

    def update_metadata(self, chunks: Sequence[ChunkRecord]) -> int:
        """Replace everything but the text and token count, keeping the stored vector.

        Reads the stored text (a realtime get, so it sees writes not yet committed) to rebuild
        the BM25 field, whose header may change; chunks the index does not hold are skipped.
        """
        if not chunks:
            return 0
        self._open()
        latest = {doc_id(c.tenant, c.chunk_id): c for c in chunks}
        with self._calls("update_metadata"):
            found = self._client.mget(
                index=self._names.write,
                body={"ids": list(latest)},
                _source_includes=["text", "token_count"],
            )
        operations: list[dict[str, Any]] = []
        for doc in found.get("docs", []):
            if not doc.get("found"):
                continue
            stored = doc.get("_source", {})
            chunk = latest[doc["_id"]].model_copy(
                update={"text": stored.get("text", ""), "token_count": stored.get("token_count", 0)}
            )
            operations.append({"update": {"_id": doc["_id"]}})
            operations.append({"doc": chunk_document(chunk, None)})
        if not operations:
            return 0
        updated = 0
        for item in self._bulk(operations, "update_metadata"):
            status = item.get("status", 500)
            if status < 300:
                updated += 1
            elif status != 404:  # deleted since the read: not found, like the embedded index
                raise IndexUnavailable(f"update_metadata failed: {_reason(item)}")
        return updated

    def delete_chunks(self, tenant: str, chunk_ids: Sequence[str]) -> int:
        if not chunk_ids:
            return 0
        self._open()
        operations = [{"delete": {"_id": doc_id(tenant, c)}} for c in sorted(set(chunk_ids))]
        deleted = 0
        for item in self._bulk(operations, "delete_chunks"):
            status = item.get("status", 500)
            if status < 300:
                deleted += 1
            elif status != 404:
                raise IndexUnavailable(f"delete_chunks failed: {_reason(item)}")
        return deleted

    def delete_document(self, tenant: str, document_id: str) -> int:
        """Delete-by-query on tenant and document id, after a refresh so that chunks written
        since the last commit are deleted too (as in the embedded index)."""
        self._open()
        query = {
            "bool": {
                "filter": [{"term": {"tenant": tenant}}, {"term": {"document_id": document_id}}]
            }
        }
        with self._calls("delete_document"):
            self._client.indices.refresh(index=self._names.write)
            result = self._client.delete_by_query(
                index=self._names.write, body={"query": query}, conflicts="proceed"
            )
        if result.get("failures"):
            raise IndexUnavailable(f"delete_document failed: {result['failures'][:3]}")
        if result.get("version_conflicts"):  # chunks rewritten meanwhile: deleting again is safe
            raise IndexUnavailable(
                f"delete_document: {result['version_conflicts']} chunks changed during the "
                f"delete of {document_id}; retry"
            )
        return int(result.get("deleted", 0))

    # --- reads -----------------------------------------------------------------------------------

    def count_document(self, tenant: str, document_id: str) -> int:
        self._open()
        query = {
            "bool": {
                "filter": [{"term": {"tenant": tenant}}, {"term": {"document_id": document_id}}]
            }
        }
        with self._calls("count_document"):
            return int(self._client.count(index=self._names.read, body={"query": query})["count"])

    def chunk_keys(self) -> set[tuple[str, str]]:
        """Paged by ``search_after`` on the chunk id (no scroll context to leak)."""
        self._open()
        keys: set[tuple[str, str]] = set()
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 5000,
                "query": {"match_all": {}},
                "sort": [{"chunk_id": "asc"}, {"tenant": "asc"}],
                "_source": ["tenant", "chunk_id"],
            }
            if after is not None:
                body["search_after"] = after
            with self._calls("chunk_keys"):
                hits = self._client.search(index=self._names.read, body=body)["hits"]["hits"]
            for hit in hits:
                keys.add((hit["_source"]["tenant"], hit["_source"]["chunk_id"]))
            if len(hits) < body["size"]:
                return keys
            after = hits[-1]["sort"]

    def bulk_loading(self, on: bool) -> None:
        """A generation being loaded: no periodic refresh and no replicas (commit still
        refreshes, so dual-written chunks stay visible); ``on=False`` restores the configured
        replicas and refresh interval before the gate reads it."""
        body = (
            {"index": {"refresh_interval": "-1", "number_of_replicas": 0}}
            if on
            else {"index": {"refresh_interval": None, "number_of_replicas": self._replicas}}
        )
        with self._calls("bulk_loading"):
            self._client.indices.put_settings(index=self._names.index, body=body)
            if not on:
                self._client.indices.refresh(index=self._names.index)

    def drop(self) -> None:
        """Delete this version's index (its aliases go with it)."""
        with self._calls("drop"):
            self._client.indices.delete(index=self._names.index, ignore_unavailable=True)
        self.close()

    def search_bm25(self, query: str, flt: SearchFilter, k: int) -> list[SearchHit]:
        body = bm25_query_body(query, flt, k)
        self._open()
        if body is None:
            return []
        with self._calls("search_bm25"):
            response = self._client.search(index=self._names.read, body=body)
        return _hits(response, "bm25", lambda score: score)

    def search_knn(self, vector: Vectors, flt: SearchFilter, k: int) -> list[SearchHit]:
        unit = self._query_vector(vector)
        body = knn_query_body(unit.tolist(), flt, k)
        self._open()
        if body is None:
            return []
        with self._calls("search_knn"):
            response = self._client.search(index=self._names.read, body=body)
        return _hits(response, "knn", knn_score_to_cosine)

    def search_hybrid(
        self, query: str, vector: Vectors, flt: SearchFilter, k: int
    ) -> list[SearchHit]:
        """Server-side hybrid search, fused by the RRF score-ranker pipeline (opensearch_hybrid
        = "server"; OpenSearch 2.19+). Not part of the port: the client-side fusion is."""
        unit = self._query_vector(vector)
        body = hybrid_query_body(query, unit.tolist(), flt, k)
        self._open()
        if body is None:
            return []
        pipeline = f"{self._prefix}-rrf"
        if not self._pipeline_ready:
            self._ensure_pipeline()
        with self._calls("search_hybrid"):
            response = self._client.search(
                index=self._names.read, body=body, search_pipeline=pipeline
            )
        return _hits(response, HYBRID_RETRIEVER, lambda score: score)

    def query_term_matches(self, query: str, hits: Sequence[SearchHit]) -> TermMatches:
        """IDF as BM25 computes it, ``ln(1 + (N - df + 0.5) / (df + 0.5))``, with N and df
        counted over the whole index (all tenants, as BM25's statistics are); a hit's terms are
        the named term queries it matches (its header and text as indexed)."""
        self._open()
        text = cut_query(query)
        with self._calls("query_term_matches"):
            terms: list[str] = []
            if text.strip():
                tokens = self._client.indices.analyze(
                    index=self._names.read, body={"field": BM25_FIELD, "text": text}
                ).get("tokens", [])
                terms = list(dict.fromkeys(t["token"] for t in tokens))
            if not terms:
                return TermMatches(weights={}, matched=[frozenset() for _ in hits])
            keys = [doc_id(h.chunk.tenant, h.chunk.chunk_id) for h in hits]
            searches: list[dict[str, Any]] = [{}, term_statistics_body(terms)]
            if keys:
                searches += [{}, term_matches_body(terms, keys)]
            responses = self._client.msearch(index=self._names.read, body=searches)["responses"]
        for response in responses:
            if "error" in response:
                raise IndexUnavailable(f"query_term_matches failed: {response['error']}")
        total = int(responses[0]["hits"]["total"]["value"])
        buckets = responses[0]["aggregations"]["df"]["buckets"]
        weights: dict[str, float] = {}
        for i, term in enumerate(terms):
            df = int(buckets[str(i)]["doc_count"])
            if df > 0:
                weights[term] = math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        found: dict[str, frozenset[str]] = {}
        if keys:
            for hit in responses[1]["hits"]["hits"]:
                named = {terms[int(n)] for n in hit.get("matched_queries", [])}
                found[hit["_id"]] = frozenset(named & weights.keys())
        return TermMatches(weights=weights, matched=[found.get(key, frozenset()) for key in keys])

    # --- helpers ---------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._closed:
            raise IndexUnavailable(f"the index {self._names.read} is closed")

    @contextlib.contextmanager
    def _calls(self, operation: str) -> Iterator[None]:
        """opensearch-py errors become IndexUnavailable (a missing index says so plainly)."""
        from opensearchpy.exceptions import (
            ConnectionError,
            NotFoundError,
            OpenSearchException,
            TransportError,
        )

        try:
            yield
        except NotFoundError as exc:
            raise IndexUnavailable(
                f"{operation}: the index or alias {self._names.read}/{self._names.write} does not "
                f"exist (create it with ensure_index; check opensearch_index_prefix): {exc.error}"
            ) from exc
        except ConnectionError as exc:
            raise IndexUnavailable(f"{operation}: cannot reach OpenSearch: {exc}") from exc
        except TransportError as exc:
            raise IndexUnavailable(
                f"{operation} failed: {exc.status_code} {exc.error}: {_info_reason(exc.info)}"
            ) from exc
        except OpenSearchException as exc:
            raise IndexUnavailable(f"{operation} failed: {exc}") from exc

    def _bulk(self, operations: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
        """Bulk to the write alias; what is throttled (429, whole or per item) is retried with
        exponential backoff and full jitter, ``opensearch_max_retries`` times. Returns one
        result per action, in order."""
        actions = _split_actions(operations)
        results: list[dict[str, Any]] = [{} for _ in actions]
        pending = list(range(len(actions)))
        for attempt in range(self._max_retries + 1):
            response = self._send_bulk([line for i in pending for line in actions[i]], operation)
            throttled: list[int] = []
            if response is None:  # the whole request was throttled
                throttled = pending
            else:
                for i, item in zip(pending, response["items"], strict=True):
                    result = next(iter(item.values()))
                    if result.get("status") == 429:
                        throttled.append(i)
                    else:
                        results[i] = result
            if not throttled:
                return results
            pending = throttled
            if attempt < self._max_retries:
                delay = backoff_seconds(attempt, self._rng)
                logger.warning(
                    "bulk throttled, retrying",
                    extra={"operation": operation, "items": len(pending), "delay_s": delay},
                )
                self._sleep(delay)
        raise IndexUnavailable(
            f"{operation}: OpenSearch still throttles (429) {len(pending)} bulk items after "
            f"{self._max_retries} retries"
        )

    def _send_bulk(self, body: list[dict[str, Any]], operation: str) -> dict[str, Any] | None:
        """One bulk request; ``None`` when OpenSearch answered 429 to all of it."""
        from opensearchpy.exceptions import TransportError

        with self._calls(operation):
            try:
                response: dict[str, Any] = self._client.bulk(index=self._names.write, body=body)
            except TransportError as exc:
                if exc.status_code == 429:
                    return None
                raise
        return response

    def _validate_vectors(self, vectors: Vectors, count: int) -> npt.NDArray[np.float32]:
        """The embedded index's checks and L2 normalisation (the space is inner product)."""
        matrix = np.asarray(vectors, dtype=np.float32)
        if count == 0 and matrix.size == 0:
            return matrix.reshape(0, self._model.dimension)
        if matrix.ndim == 1 and count == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[0] != count:
            raise ValueError(f"expected {count} vectors, got an array of shape {matrix.shape}")
        if matrix.shape[1] != self._model.dimension:
            raise ModelMismatch(
                f"vectors have dimension {matrix.shape[1]}, the index {self._names.write} holds "
                f"{self._model.tag} vectors of dimension {self._model.dimension}"
            )
        if not np.isfinite(matrix).all():
            raise ValueError("vectors contain NaN or infinity")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def _query_vector(self, vector: Vectors) -> npt.NDArray[np.float32]:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape[0] != self._model.dimension:
            raise ModelMismatch(
                f"query vector has dimension {query.shape[0]}, the index {self._names.read} "
                f"holds {self._model.tag} vectors of dimension {self._model.dimension}"
            )
        if not np.isfinite(query).all():
            raise ValueError("query vector contains NaN or infinity")
        norm = float(np.linalg.norm(query))
        return query / norm if norm > 0 else query

    def _prefix_indexes(self) -> dict[str, dict[str, Any]]:
        """This prefix's indexes: their aliases and docket ``_meta`` (other prefixes' skipped)."""
        raw = self._client.indices.get(
            index=f"{self._prefix}-*", allow_no_indices=True, expand_wildcards="open"
        )
        found: dict[str, dict[str, Any]] = {}
        for name, info in raw.items():
            meta = info.get("mappings", {}).get("_meta", {}).get("docket")
            if name == self._names.index or (meta and meta.get("prefix") == self._prefix):
                found[name] = {"aliases": info.get("aliases", {}), "meta": meta}
        return found

    def _refuse_other_models(self, found: dict[str, dict[str, Any]]) -> None:
        if self._allow_new_model:
            return
        for info in found.values():
            meta = info["meta"] or {}
            other = meta.get("model")
            if other and any(a.endswith("-write") for a in info["aliases"]):
                self._raise_mismatch(EmbeddingModelInfo.model_validate(other))

    def _check_model(self, index: str, meta: dict[str, Any] | None) -> None:
        if not meta or "model" not in meta:
            raise IndexUnavailable(f"the index {index} has no docket model in its _meta")
        stored = EmbeddingModelInfo.model_validate(meta["model"])
        mine = self._model
        if (stored.name, stored.version, stored.dimension) != (
            mine.name,
            mine.version,
            mine.dimension,
        ):
            self._raise_mismatch(stored)

    def _raise_mismatch(self, stored: EmbeddingModelInfo) -> None:
        mine = self._model
        raise ModelMismatch(
            f"the indexes under {self._prefix!r} hold {stored.tag} vectors (dimension "
            f"{stored.dimension}); they cannot be opened for {mine.tag} (dimension "
            f"{mine.dimension}): re-embed into a new index or use the index's model"
        )

    def _create_index(self) -> None:
        from opensearchpy.exceptions import RequestError

        body = index_body(self._model, self._prefix, shards=self._shards, replicas=self._replicas)
        try:
            self._client.indices.create(index=self._names.index, body=body)
            logger.info(
                "created index", extra={"index": self._names.index, "model": self._model.tag}
            )
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise


def _split_actions(operations: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Bulk lines grouped per action: index/create/update carry a source line, delete none."""
    actions: list[list[dict[str, Any]]] = []
    i = 0
    while i < len(operations):
        head = operations[i]
        if "delete" in head:
            actions.append([head])
            i += 1
        else:
            actions.append([head, operations[i + 1]])
            i += 2
    return actions


def _hits(
    response: dict[str, Any], retriever: str, score: Callable[[float], float]
) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for raw in response["hits"]["hits"]:
        source = raw.get("_source", {})
        record = ChunkRecord.model_validate({f: source[f] for f in _RECORD_FIELDS if f in source})
        hits.append(
            SearchHit(
                chunk=record,
                score=score(float(raw.get("_score") or 0.0)),
                retriever=retriever,
                rank=len(hits) + 1,
            )
        )
    return hits


def _reason(item: dict[str, Any]) -> str:
    error = item.get("error")
    if isinstance(error, dict):
        return f"{item.get('status')} {error.get('type')}: {error.get('reason')} (_id {item.get('_id')})"
    return f"{item.get('status')} {error} (_id {item.get('_id')})"


def _info_reason(info: Any) -> str:
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            return str(error.get("reason", error))
    return str(info)


# --- the client ------------------------------------------------------------------------------------


def opensearch_client(settings: Settings) -> Any:
    """An opensearch-py client for ``opensearch_endpoint``: SigV4 (service "es", credentials
    from boto3's chain) on AWS, basic auth or none against a local server.

    The transport retries only 502/503/504 at once (idempotent reads and id-keyed writes);
    429 backoff is the adapter's business (``_bulk``).
    """
    from opensearchpy import OpenSearch, RequestsHttpConnection

    if not settings.opensearch_endpoint:
        raise IndexUnavailable("search_backend is opensearch but opensearch_endpoint is not set")
    endpoint = settings.opensearch_endpoint
    if "://" not in endpoint:
        endpoint = f"https://{endpoint}"
    auth: Any = None
    if settings.opensearch_auth == "sigv4":
        import boto3
        from opensearchpy import AWSV4SignerAuth

        credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise IndexUnavailable("no AWS credentials found for SigV4 signing of OpenSearch calls")
        auth = AWSV4SignerAuth(credentials, settings.region, "es")
    elif settings.opensearch_auth == "basic":
        if not settings.opensearch_username or not settings.opensearch_password:
            raise IndexUnavailable("opensearch_auth is basic but username/password are not set")
        auth = (settings.opensearch_username, settings.opensearch_password)
    return OpenSearch(
        hosts=[endpoint],
        http_auth=auth,
        use_ssl=endpoint.startswith("https://"),
        verify_certs=True,
        connection_class=RequestsHttpConnection,
        timeout=settings.opensearch_timeout_seconds,
        max_retries=2,
        retry_on_status=(502, 503, 504),
        retry_on_timeout=False,
        http_compress=True,
    )
