"""In-memory fakes of the ports (no AWS, no network). Prefer these over mocks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from docket.models import (
    ChunkRecord,
    DocumentRecord,
    EmbeddingModelInfo,
    SearchFilter,
    SearchHit,
    utcnow,
)
from docket.search.fusion import TermMatches


class FakeDocumentStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], DocumentRecord] = {}
        self.writes: list[DocumentRecord] = []
        self.stream: list[tuple[str, DocumentRecord | None, DocumentRecord | None]] = []

    def get(self, tenant: str, document_id: str) -> DocumentRecord | None:
        return self.items.get((tenant, document_id))

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], DocumentRecord]:
        return {key: self.items[key] for key in keys if key in self.items}

    def put(self, doc: DocumentRecord) -> None:
        old = self.items.get((doc.tenant, doc.document_id))
        self.items[(doc.tenant, doc.document_id)] = doc
        self.writes.append(doc)
        self.stream.append(("MODIFY" if old else "INSERT", old, doc))

    def update(
        self, tenant: str, document_id: str, *, expect_hash: str | None = None, **fields: Any
    ) -> bool:
        doc = self.items.get((tenant, document_id))
        if doc is None or (expect_hash is not None and doc.content_hash != expect_hash):
            return False
        self.put(doc.model_copy(update={**fields, "updated_at": utcnow()}))
        return True

    def delete(self, tenant: str, document_id: str) -> None:
        old = self.items.pop((tenant, document_id), None)
        if old is not None:
            self.stream.append(("REMOVE", old, None))

    def list(self, tenant: str) -> list[DocumentRecord]:
        return [d for (t, _), d in self.items.items() if t == tenant]


class FakeChunkStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], ChunkRecord] = {}
        self.puts: list[ChunkRecord] = []
        self.deletes: list[str] = []
        self.stream: list[tuple[str, ChunkRecord | None, ChunkRecord | None]] = []

    def list_for_document(self, tenant: str, document_id: str) -> list[ChunkRecord]:
        return sorted(
            (c for (t, d, _), c in self.items.items() if (t, d) == (tenant, document_id)),
            key=lambda c: c.ordinal,
        )

    def put_many(self, chunks: Sequence[ChunkRecord]) -> None:
        for c in chunks:
            old = self.items.get((c.tenant, c.document_id, c.chunk_id))
            self.items[(c.tenant, c.document_id, c.chunk_id)] = c
            self.puts.append(c)
            self.stream.append(("MODIFY" if old else "INSERT", old, c))

    def delete_many(self, tenant: str, document_id: str, chunk_ids: Iterable[str]) -> None:
        for cid in chunk_ids:
            old = self.items.pop((tenant, document_id, cid), None)
            self.deletes.append(cid)
            if old is not None:
                self.stream.append(("REMOVE", old, None))

    def scan(self, segment: int, segments: int) -> Iterator[ChunkRecord]:
        keys = sorted(self.items)
        yield from (self.items[k] for k in keys[segment::segments])


class FakeBlobStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], tuple[bytes, dict[str, str], str | None]] = {}

    def get(self, bucket: str, key: str) -> bytes:
        return self.objects[(bucket, key)][0]

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.objects[(bucket, key)] = (data, metadata or {}, content_type)

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        if (bucket, key) not in self.objects:
            return None
        data, meta, ctype = self.objects[(bucket, key)]
        return {"size": len(data), "metadata": meta, "content_type": ctype}

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, payload: dict[str, Any], *, reason_code: str, reason: str) -> None:
        self.messages.append({"record": payload, "reason_code": reason_code, "reason": reason})


class FakeEmbedder:
    """Counts what it embeds; vectors from a seeded hash of the text."""

    def __init__(self, dimension: int = 16) -> None:
        self.model = EmbeddingModelInfo(name="fake/embedder", version="1", dimension=dimension)
        self.embedded: list[str] = []
        self.fail = False

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if self.fail:
            raise RuntimeError("embedding service unavailable")
        self.embedded.extend(texts)
        return (
            np.stack([self.embed_query(t) for t in texts])
            if texts
            else np.zeros((0, self.model.dimension), np.float32)
        )

    def embed_query(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        v = rng.standard_normal(self.model.dimension).astype(np.float32)
        return v / np.linalg.norm(v)


class FakeIndex:
    """Dictionary index with the port's semantics (filter before ranking, tenant-scoped deletes)."""

    def __init__(self, model: EmbeddingModelInfo) -> None:
        self.model = model
        self.chunks: dict[str, ChunkRecord] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self.commits = 0
        self.tuned: dict[str, Any] | None = None

    def upsert(self, chunks: Sequence[ChunkRecord], vectors: np.ndarray) -> None:
        for c, v in zip(chunks, vectors, strict=True):
            self.chunks[c.chunk_id] = c
            self.vectors[c.chunk_id] = v

    def update_metadata(self, chunks: Sequence[ChunkRecord]) -> int:
        n = 0
        for c in chunks:
            if c.chunk_id in self.chunks:
                self.chunks[c.chunk_id] = c
                n += 1
        return n

    def delete_chunks(self, tenant: str, chunk_ids: Sequence[str]) -> int:
        n = 0
        for cid in chunk_ids:
            c = self.chunks.get(cid)
            if c is not None and c.tenant == tenant:
                del self.chunks[cid]
                self.vectors.pop(cid, None)
                n += 1
        return n

    def delete_document(self, tenant: str, document_id: str) -> int:
        ids = [
            c.chunk_id
            for c in self.chunks.values()
            if (c.tenant, c.document_id) == (tenant, document_id)
        ]
        return self.delete_chunks(tenant, ids)

    def count_document(self, tenant: str, document_id: str) -> int:
        return sum(
            1 for c in self.chunks.values() if (c.tenant, c.document_id) == (tenant, document_id)
        )

    def chunk_keys(self) -> set[tuple[str, str]]:
        return {(c.tenant, c.chunk_id) for c in self.chunks.values()}

    def _visible(self, c: ChunkRecord, flt: SearchFilter) -> bool:
        return c.tenant == flt.tenant and (not c.acl_groups or bool(set(c.acl_groups) & flt.groups))

    def search_bm25(self, query: str, flt: SearchFilter, k: int) -> list[SearchHit]:
        words = set(query.lower().split())
        scored = [
            (len(words & set(c.text.lower().split())), c)
            for c in self.chunks.values()
            if self._visible(c, flt)
        ]
        scored = [s for s in scored if s[0] > 0]
        scored.sort(key=lambda s: (-s[0], s[1].chunk_id))
        return [
            SearchHit(chunk=c, score=float(s), retriever="bm25", rank=i + 1)
            for i, (s, c) in enumerate(scored[:k])
        ]

    def query_term_matches(self, query: str, hits: Sequence[SearchHit]) -> TermMatches:
        known = {w for c in self.chunks.values() for w in c.text.lower().split()}
        weights = {w: 1.0 for w in query.lower().split() if w in known}
        return TermMatches(
            weights=weights,
            matched=[frozenset(set(weights) & set(h.chunk.text.lower().split())) for h in hits],
        )

    def search_knn(self, vector: np.ndarray, flt: SearchFilter, k: int) -> list[SearchHit]:
        scored = [
            (float(self.vectors[c.chunk_id] @ vector), c)
            for c in self.chunks.values()
            if self._visible(c, flt)
        ]
        scored.sort(key=lambda s: (-s[0], s[1].chunk_id))
        return [
            SearchHit(chunk=c, score=s, retriever="knn", rank=i + 1)
            for i, (s, c) in enumerate(scored[:k])
        ]

    def tuned_fusion(self) -> dict[str, Any] | None:
        return self.tuned

    def store_tuned_fusion(self, tuned: dict[str, Any] | None) -> None:
        self.tuned = tuned

    def commit(self) -> None:
        self.commits += 1

    def close(self) -> None:
        pass


def drain(
    service: Any, documents: FakeDocumentStore, chunks: FakeChunkStore, copies: int = 1
) -> list[Any]:
    """Deliver the fake tables' stream records to the next steps until nothing is left,
    as the local cloud's pollers do with DynamoDB Streams; each record ``copies`` times (streams
    deliver at least once). Returns the first batch of chunk changes (to deliver late)."""
    from docket.ingest.service import ChunkChange

    seq = 0
    first: list[Any] = []
    while documents.stream or chunks.stream:
        while documents.stream:
            event, old, new = documents.stream.pop(0)
            for _ in range(copies):
                service.on_document_change(event, old, new)
        batch, chunks.stream = chunks.stream, []
        changes = []
        for event, old, new in batch:
            seq += 1
            changes.append(ChunkChange(record_id=str(seq), event_name=event, old=old, new=new))
        if changes:
            for _ in range(copies):
                service.on_chunk_changes(changes)
            first = first or changes
    return first
