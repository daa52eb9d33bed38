"""Reconciliation after a crash, on in-memory fakes: the index ends holding exactly the live
documents' Chunks rows, whatever the crash left behind, and a second pass changes nothing."""

from __future__ import annotations

from docket.ingest.reconcile import Repairs, reconcile
from docket.models import ChunkRecord, DocumentStatus, chunk_id_for, document_id_for

from ..fakes import drain
from .test_ingest_service import BUCKET, env, upload  # noqa: F401  (env is a fixture)


def ingest(env, source: str, body: bytes) -> str:  # noqa: F811
    service, docs, chunks, blobs, *_ = env
    service.on_object_created(BUCKET, upload(blobs, source, body))
    drain(service, docs, chunks)
    return document_id_for("acme", source)


def stray(source: str, text: str, tenant: str = "acme") -> ChunkRecord:
    document_id = document_id_for(tenant, source)
    return ChunkRecord(
        tenant=tenant,
        document_id=document_id,
        chunk_id=chunk_id_for(document_id, text),
        ordinal=0,
        text=text,
        page_start=1,
        page_end=1,
        source=source,
        token_count=1,
    )


def test_reconcile_repairs_what_a_crash_left_and_is_idempotent(env):  # noqa: F811
    service, docs, chunks, blobs, dlq, embedder, index = env
    a = ingest(env, "a.txt", b"alpha one\n\nalpha two\n\nalpha three")
    b = ingest(env, "b.txt", b"beta one\n\nbeta two")
    c = ingest(env, "c.txt", b"gamma one\n\ngamma two")
    rows_before = {k: v for k, v in chunks.items.items()}
    # Given what a kill -9 leaves behind:
    # - the index holds a chunk whose rows the saved tables never got
    ghost = stray("ghost.txt", "ghost text")
    index.upsert([ghost], embedder.embed_documents(["ghost text"]))
    # - the index lost one of a's chunks (its stream record was never delivered)
    lost = chunks.list_for_document("acme", a)[1]
    index.delete_chunks("acme", [lost.chunk_id])
    # - Chunks rows whose document record is gone
    orphan = stray("orphan.txt", "orphan text")
    chunks.put_many([orphan])
    # - b caught half deleted: the record says deleting, the rest is still there
    docs.update("acme", b, status=DocumentStatus.DELETING)
    # - c's ACL changed on its record, but not yet on its rows
    docs.update("acme", c, acl_groups=["legal"])
    # - a left pending although the index will hold all its chunks once repaired
    docs.update("acme", a, status=DocumentStatus.PENDING)
    docs.stream.clear()
    chunks.stream.clear()

    # When reconciliation runs (the local cloud's start)
    repairs = reconcile(service)
    drain(service, docs, chunks)

    # Then every stray is gone, every gap filled, the half delete finished and a is indexed
    assert repairs == Repairs(
        removed=1 + 2,  # the ghost, and b's two chunks
        embedded=1,
        orphans=1,
        acl_fixed=2,
        deleted_documents=1,
        finalized=1,
    )
    assert docs.get("acme", b) is None and chunks.list_for_document("acme", b) == []
    assert blobs.head(BUCKET, "tenants/acme/b.txt") is None
    assert docs.get("acme", a).status == DocumentStatus.INDEXED
    live = {(k[0], k[2]) for k, v in rows_before.items() if v.document_id != b}
    assert index.chunk_keys() == live
    assert {(t, cid) for t, _, cid in chunks.items} == live
    assert {tuple(x.acl_groups) for x in index.chunks.values() if x.document_id == c} == {
        ("legal",)
    }
    # And a second pass finds nothing to do
    assert not reconcile(service).any()


def test_same_bytes_uploaded_again_while_pending_are_chunked(env):  # noqa: F811
    """A stop between extraction and chunking left the document pending; uploading the same
    file again (the user's retry) must chunk it, not wait forever."""
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"alpha one\n\nalpha two")
    service.on_object_created(BUCKET, key)
    docs.stream.clear()  # the crash: the record's stream record is never delivered
    document_id = document_id_for("acme", "a.txt")
    assert docs.get("acme", document_id).status == DocumentStatus.PENDING
    # When the same bytes are uploaded again
    assert service.on_object_created(BUCKET, key) == "extracted"
    drain(service, docs, chunks)
    # Then the document is chunked, embedded and indexed
    assert docs.get("acme", document_id).status == DocumentStatus.INDEXED
    assert index.count_document("acme", document_id) == 2


def test_every_event_delivered_twice_leaves_no_duplicate(tmp_path):
    """At-least-once delivery: each S3 notification and each stream record arrives twice (and a
    late copy of a batch after newer ones). The real embedded index ends holding each chunk
    once, exactly as with single delivery."""
    import sqlite3

    from docket.config import Settings
    from docket.embedding.hashing import HashingEmbedder
    from docket.ingest.service import IngestService
    from docket.search.embedded import EmbeddedIndex

    from ..fakes import FakeBlobStore, FakeChunkStore, FakeDeadLetters, FakeDocumentStore
    from .test_ingest_service import ParagraphChunker, text_extractor

    embedder = HashingEmbedder()
    index = EmbeddedIndex(tmp_path / "index", embedder.model)
    docs, chunks, blobs = FakeDocumentStore(), FakeChunkStore(), FakeBlobStore()
    service = IngestService(
        Settings(max_file_bytes=10_000),
        docs,
        chunks,
        blobs,
        FakeDeadLetters(),
        chunker=ParagraphChunker(),
        embedder=embedder,
        index=index,
        extractor=text_extractor,
    )
    keys = [
        upload(blobs, f"f{n}.txt", f"alpha {n}\n\nbeta {n}\n\ngamma {n}".encode()) for n in range(5)
    ]
    for key in keys:
        service.on_object_created(BUCKET, key)
        service.on_object_created(BUCKET, key)  # the duplicate notification
    late = drain(service, docs, chunks, copies=2)  # every stream record twice
    service.on_chunk_changes(late)  # a late redelivery of the first batch
    index.commit()
    with sqlite3.connect(tmp_path / "index" / "chunks.sqlite") as conn:
        rows = conn.execute(
            "SELECT tenant, chunk_id, COUNT(*) FROM chunks WHERE live = 1 GROUP BY 1, 2"
        ).fetchall()
    assert all(n == 1 for _, _, n in rows)
    assert {(t, c) for t, c, _ in rows} == {(t, cid) for t, _, cid in chunks.items}
    assert len(rows) == 15
    for key in keys:
        doc = docs.get("acme", document_id_for("acme", key.split("/", 2)[2]))
        assert doc.status == DocumentStatus.INDEXED and doc.chunk_count == 3
    index.close()
