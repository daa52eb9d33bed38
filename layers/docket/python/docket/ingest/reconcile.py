"""Brings the indexes back in line with the tables after a crash.

The tables are the truth: a document record and its Chunks rows. An index may hold more (chunks
written before a crash lost the rows that named them) or less (rows written whose stream records
were never delivered). ``reconcile`` repairs both ways, for every generation chunk changes go to:

- index entries whose chunk row is gone, or whose document is gone, failed or being deleted,
  leave the index;
- rows of a live document that an index lacks are embedded and written;
- rows whose document record is gone (or failed) are deleted, and a document caught half deleted
  is deleted;
- rows whose ACL groups are not their document's get the document's (the index follows them
  through the Chunks stream);
- a pending document whose chunks are now all indexed is marked indexed.

Documents that never got as far as their chunks are not this module's: the local cloud queues
their upload again (``docket.local.state.requeue_pending``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from docket.chunking.context import embedding_input
from docket.models import ChunkRecord, DocumentRecord, DocumentStatus

SCAN_SEGMENTS = 4
EMBED_BLOCK = 500


class ChunkSource(Protocol):
    def scan(self, segment: int, segments: int) -> Iterator[ChunkRecord]:
        """One segment of a parallel scan of every tenant's chunks."""
        ...


@dataclass
class Repairs:
    """What one reconciliation changed; all zero when the index and the tables agreed."""

    removed: int = 0  # index entries no table row backs
    embedded: int = 0  # rows an index lacked
    orphans: int = 0  # Chunks rows without a live document
    acl_fixed: int = 0  # rows whose ACL groups lagged their document's
    deleted_documents: int = 0  # documents caught half deleted, now deleted
    finalized: int = 0  # pending documents now marked indexed

    def any(self) -> bool:
        return any(vars(self).values())


def scan_chunks(chunks: ChunkSource, segments: int = SCAN_SEGMENTS) -> list[ChunkRecord]:
    """Every tenant's chunks, read as a parallel segmented Scan."""
    with ThreadPoolExecutor(segments) as pool:
        parts = pool.map(lambda s: list(chunks.scan(s, segments)), range(segments))
        return [c for part in parts for c in part]


def embed_into(index: Any, embedder: Any, records: Sequence[ChunkRecord]) -> None:
    """Embed ``records`` and write them to ``index``, EMBED_BLOCK at a time (no commit)."""
    for start in range(0, len(records), EMBED_BLOCK):
        part = records[start : start + EMBED_BLOCK]
        index.upsert(part, embedder.embed_documents([embedding_input(c) for c in part]))


def _holds_chunks(doc: DocumentRecord | None) -> bool:
    return doc is not None and doc.status in (DocumentStatus.PENDING, DocumentStatus.INDEXED)


def reconcile(service: Any) -> Repairs:
    """Repair ``service``'s write targets (an ``IngestService``) against its tables."""
    repairs = Repairs()
    table = scan_chunks(service.chunks)
    docs = service.documents.get_many(sorted({(c.tenant, c.document_id) for c in table}))
    keep = [c for c in table if _holds_chunks(docs.get((c.tenant, c.document_id)))]
    orphans: dict[tuple[str, str], list[str]] = {}
    for c in table:
        doc = docs.get((c.tenant, c.document_id))
        if doc is None or doc.status == DocumentStatus.FAILED:
            orphans.setdefault((c.tenant, c.document_id), []).append(c.chunk_id)
    for (tenant, document_id), ids in orphans.items():
        service.chunks.delete_many(tenant, document_id, ids)
        repairs.orphans += len(ids)
    stale_acl = [
        c.model_copy(update={"acl_groups": doc.acl_groups})
        for c in keep
        for doc in (docs[(c.tenant, c.document_id)],)
        if sorted(c.acl_groups) != sorted(doc.acl_groups)
    ]
    if stale_acl:
        service.chunks.put_many(stale_acl)
        repairs.acl_fixed = len(stale_acl)
    wanted = {(c.tenant, c.chunk_id): c for c in keep}
    for n, (index, embedder) in enumerate(service.write_targets()):
        held = index.chunk_keys()
        extra: dict[str, list[str]] = {}
        for tenant, chunk_id in sorted(held - set(wanted)):
            extra.setdefault(tenant, []).append(chunk_id)
        for tenant, ids in extra.items():
            removed = index.delete_chunks(tenant, ids)
            repairs.removed += removed if n == 0 else 0
        missing = [wanted[k] for k in sorted(set(wanted) - held)]
        embed_into(index, embedder, missing)
        index.commit()
        if n == 0:
            repairs.embedded = len(missing)
    for _, doc in sorted(docs.items()):
        if doc.status == DocumentStatus.DELETING:
            _finish_delete(service, doc)
            repairs.deleted_documents += 1
    pending = {
        key: doc
        for key, doc in docs.items()
        if doc.status == DocumentStatus.PENDING and doc.chunk_count is not None
    }
    index = service.write_targets()[0][0]
    for doc in pending.values():
        if service.finalize(index, doc):
            repairs.finalized += 1
    return repairs


def _finish_delete(service: Any, doc: DocumentRecord) -> None:
    """What ``DocumentService.delete`` started and the pipeline did not get to finish."""
    for index, _ in service.write_targets():
        index.delete_document(doc.tenant, doc.document_id)
        index.commit()
    ids = [c.chunk_id for c in service.chunks.list_for_document(doc.tenant, doc.document_id)]
    service.chunks.delete_many(doc.tenant, doc.document_id, ids)
    bucket = service.settings.documents_bucket
    if doc.s3_key and service.blobs.head(bucket, doc.s3_key) is not None:
        service.blobs.delete(bucket, doc.s3_key)
    service.documents.delete(doc.tenant, doc.document_id)
