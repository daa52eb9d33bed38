"""The ingestion logic with in-memory fakes: what is written, embedded, indexed and dead-lettered."""

from __future__ import annotations

import pytest

from docket.config import Settings
from docket.ingest.service import IngestService
from docket.models import ChunkDraft, DocumentStatus, ExtractedDocument, Page, document_id_for

from ..fakes import (
    FakeBlobStore,
    FakeChunkStore,
    FakeDeadLetters,
    FakeDocumentStore,
    FakeEmbedder,
    FakeIndex,
    drain,
)

BUCKET = "docket-documents"


class ParagraphChunker:
    """One chunk per blank-line paragraph: enough structure to test the pipeline's bookkeeping."""

    def chunk(self, doc: ExtractedDocument) -> list[ChunkDraft]:
        out: list[ChunkDraft] = []
        for page in doc.pages:
            for para in (p.strip() for p in page.text.split("\n\n")):
                if para:
                    out.append(
                        ChunkDraft(
                            text=para,
                            ordinal=len(out),
                            page_start=page.number,
                            page_end=page.number,
                            token_count=len(para.split()),
                        )
                    )
        return out


def text_extractor(
    data: bytes, filename: str, content_type: str | None, *, max_bytes: int | None = None
) -> ExtractedDocument:
    from docket.errors import CorruptDocument

    if data.startswith(b"%PDF-broken"):
        raise CorruptDocument("PDF is damaged: no cross-reference table")
    return ExtractedDocument(
        format="text", title=filename, pages=[Page(number=1, text=data.decode())]
    )


@pytest.fixture
def env():
    settings = Settings(max_file_bytes=10_000)
    docs, chunks, blobs, dlq = (
        FakeDocumentStore(),
        FakeChunkStore(),
        FakeBlobStore(),
        FakeDeadLetters(),
    )
    embedder = FakeEmbedder()
    index = FakeIndex(embedder.model)
    service = IngestService(
        settings,
        docs,
        chunks,
        blobs,
        dlq,
        chunker=ParagraphChunker(),
        embedder=embedder,
        index=index,
        extractor=text_extractor,
    )
    return service, docs, chunks, blobs, dlq, embedder, index


def upload(
    blobs: FakeBlobStore, source: str, body: bytes, tenant: str = "acme", **meta: str
) -> str:
    key = f"tenants/{tenant}/{source}"
    blobs.put(BUCKET, key, body, metadata=meta)
    return key


def test_new_document_is_extracted_chunked_embedded_and_marked_indexed(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    # Given an uploaded text file with three paragraphs
    key = upload(blobs, "notes/a.txt", b"alpha one\n\nbeta two\n\ngamma three")
    # When the pipeline runs
    assert service.on_object_created(BUCKET, key) == "extracted"
    drain(service, docs, chunks)
    # Then its three chunks are indexed and the document says so
    doc = docs.get("acme", document_id_for("acme", "notes/a.txt"))
    assert doc is not None and doc.status == DocumentStatus.INDEXED
    assert doc.chunk_count == 3 and doc.indexed_hash == doc.content_hash
    assert doc.embedding_model == "fake/embedder@1"
    assert index.count_document("acme", doc.document_id) == 3
    # each embedded with its contextual header (the title; a .txt file has no sections)
    assert sorted(embedder.embedded) == [
        "a.txt\n\nalpha one",
        "a.txt\n\nbeta two",
        "a.txt\n\ngamma three",
    ]
    assert dlq.messages == []


def test_unchanged_reupload_does_no_work(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"alpha\n\nbeta")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    embedded_before, puts_before = len(embedder.embedded), len(chunks.puts)
    # When the same bytes arrive again
    assert service.on_object_created(BUCKET, key) == "unchanged"
    drain(service, docs, chunks)
    # Then nothing is chunked or embedded again
    assert len(embedder.embedded) == embedded_before
    assert len(chunks.puts) == puts_before
    assert docs.get("acme", document_id_for("acme", "a.txt")).status == DocumentStatus.INDEXED


def test_changed_document_reembeds_only_changed_chunks_and_drops_stale(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"one\n\ntwo\n\nthree")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    embedder.embedded.clear()
    # When one paragraph changes
    upload(blobs, "a.txt", b"one\n\nTWO changed\n\nthree")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    # Then only that paragraph is embedded, the old one leaves the index
    assert embedder.embedded == ["a.txt\n\nTWO changed"]
    texts = sorted(c.text for c in index.chunks.values())
    assert texts == ["TWO changed", "one", "three"]
    doc = docs.get("acme", document_id_for("acme", "a.txt"))
    assert doc.status == DocumentStatus.INDEXED and doc.chunk_count == 3


def test_a_new_title_reembeds_chunks_whose_text_is_unchanged(env):
    # Given an indexed page (a first line "# Title" is its title here)
    service, docs, chunks, blobs, dlq, embedder, index = env

    def titled(data: bytes, filename: str, content_type: str | None, **_: object):
        title, _, body = data.decode().partition("\n")
        return ExtractedDocument(
            format="text", title=title.lstrip("# "), pages=[Page(number=1, text=body)]
        )

    service._extractor = titled
    page = "# {}\nSame body text."
    key = upload(blobs, "p.md", page.format("Old title").encode())
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    embedder.embedded.clear()
    # When only its title changes
    upload(blobs, "p.md", page.format("New title").encode())
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    # Then the chunk is embedded again: its contextual header is part of what the model sees
    assert embedder.embedded == ["New title\n\nSame body text."]
    assert [c.title for c in index.chunks.values()] == ["New title"]


def test_corrupt_file_fails_with_reason_and_goes_to_dead_letter_queue(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "bad.pdf", b"%PDF-broken")
    # When it is processed, no exception escapes (retrying cannot help)
    assert service.on_object_created(BUCKET, key) == "failed"
    doc = docs.get("acme", document_id_for("acme", "bad.pdf"))
    # Then the document is failed with a typed reason, and the dead-letter queue has it
    assert doc.status == DocumentStatus.FAILED
    assert doc.reason_code == "corrupt_document" and "damaged" in doc.reason
    assert dlq.messages[0]["reason_code"] == "corrupt_document"
    assert dlq.messages[0]["record"]["key"] == key


def test_file_over_limit_fails_without_download(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "big.txt", b"x" * 20_000)
    blobs.get = None  # type: ignore[assignment]  # a download would crash the test
    assert service.on_object_created(BUCKET, key) == "failed"
    doc = docs.get("acme", document_id_for("acme", "big.txt"))
    assert doc.reason_code == "file_too_large" and "limit" in doc.reason
    assert dlq.messages[0]["reason_code"] == "file_too_large"


def test_embedding_failure_is_reported_per_record_and_document_stays_pending(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"one\n\ntwo")
    service.on_object_created(BUCKET, key)
    event, old, new = docs.stream.pop(0)
    service.on_document_change(event, old, new)
    docs.stream.clear()
    from docket.ingest.service import ChunkChange

    changes = [ChunkChange(str(i), ev, o, n) for i, (ev, o, n) in enumerate(chunks.stream)]
    embedder.fail = True
    # When the embedding provider is down
    outcome = service.on_chunk_changes(changes)
    # Then every record of the batch is reported failed (to be retried) and nothing is indexed
    assert set(outcome.failures) == {c.record_id for c in changes}
    assert docs.get("acme", document_id_for("acme", "a.txt")).status == DocumentStatus.PENDING
    # And the retry succeeds
    embedder.fail = False
    assert service.on_chunk_changes(changes).failures == {}
    assert docs.get("acme", document_id_for("acme", "a.txt")).status == DocumentStatus.INDEXED


def test_removed_object_removes_document_chunks_and_index_entries(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"one\n\ntwo")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    service.on_object_removed(key)
    drain(service, docs, chunks)
    assert docs.get("acme", document_id_for("acme", "a.txt")) is None
    assert chunks.items == {} and index.chunks == {}


def test_acl_change_updates_chunks_without_reembedding(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"one\n\ntwo")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    n = len(embedder.embedded)
    doc_id = document_id_for("acme", "a.txt")
    docs.update("acme", doc_id, acl_groups=["legal"])
    drain(service, docs, chunks)
    assert len(embedder.embedded) == n
    assert {tuple(c.acl_groups) for c in index.chunks.values()} == {("legal",)}


def test_acl_groups_come_from_object_metadata_for_direct_uploads(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"one", **{"acl-groups": "hr, legal"})
    service.on_object_created(BUCKET, key)
    assert docs.get("acme", document_id_for("acme", "a.txt")).acl_groups == ["hr", "legal"]


@pytest.mark.parametrize("key", ["a.txt", "tenants/", "tenants/UPPER/a.txt", "other/acme/a.txt"])
def test_keys_outside_the_tenant_layout_are_rejected(env, key):
    from docket.errors import InvalidRequest

    service = env[0]
    with pytest.raises(InvalidRequest):
        service.on_object_created(BUCKET, key)


def test_llm_context_sentences_are_embedded_and_kept_for_unchanged_chunks(env):
    # Given the pipeline with an LLM contextualizer (a scripted model naming the chunk it got)
    from docket.chunking.contextualize import Contextualizer
    from docket.providers.fake import ScriptedChatModel

    service, docs, chunks, blobs, dlq, embedder, index = env
    model = ScriptedChatModel(
        lambda request: "About " + request.messages[-1].content.split("<chunk>")[1].split()[0]
    )
    service._contextualizer = Contextualizer(model)
    key = upload(blobs, "c.txt", b"one\n\ntwo")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    # Then every chunk carries its sentence, and the model saw it in what it embedded
    assert sorted(c.context for c in index.chunks.values()) == ["About one", "About two"]
    assert sorted(embedder.embedded) == ["c.txt\nAbout one\n\none", "c.txt\nAbout two\n\ntwo"]
    assert all(r.cache_system for r in model.requests)
    # When one paragraph changes, only the new chunk is asked about and embedded
    embedder.embedded.clear()
    asked = len(model.requests)
    upload(blobs, "c.txt", b"one\n\nthree")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    assert len(model.requests) == asked + 1
    assert embedder.embedded == ["c.txt\nAbout three\n\nthree"]
    doc = docs.get("acme", document_id_for("acme", "c.txt"))
    assert doc.status == DocumentStatus.INDEXED


def _until_chunked(service, docs, chunks):  # type: ignore[no-untyped-def]
    """Run the document stream only: the chunks wait in the Chunks stream, not yet embedded."""
    while docs.stream:
        event, old, new = docs.stream.pop(0)
        service.on_document_change(event, old, new)


def test_chunks_of_a_document_deleted_before_embedding_never_reach_the_index(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"alpha\n\nbeta")
    service.on_object_created(BUCKET, key)
    _until_chunked(service, docs, chunks)
    doc_id = document_id_for("acme", "a.txt")
    # When the document is deleted while its chunks wait to be embedded
    docs.update("acme", doc_id, status=DocumentStatus.DELETING)
    drain(service, docs, chunks)
    # Then none of them is indexed
    assert index.count_document("acme", doc_id) == 0


def test_a_document_deleted_while_its_chunks_are_embedded_leaves_the_index(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    key = upload(blobs, "a.txt", b"alpha\n\nbeta")
    service.on_object_created(BUCKET, key)
    _until_chunked(service, docs, chunks)
    doc_id = document_id_for("acme", "a.txt")
    # When the delete lands after the embed step checked, before it committed
    real_live = service._live

    def live_then_deleted(keys):  # type: ignore[no-untyped-def]
        found = real_live(keys)
        docs.update("acme", doc_id, status=DocumentStatus.DELETING)
        return found

    service._live = live_then_deleted
    drain(service, docs, chunks)
    # Then the chunks are gone from the index again when the batch ends
    assert index.count_document("acme", doc_id) == 0


def test_chunks_the_table_refuses_fail_the_document_instead_of_leaving_it_pending(env):
    from docket.errors import StoreRejected

    service, docs, chunks, blobs, dlq, embedder, index = env
    real_put_many = chunks.put_many

    def put_many(batch):
        real_put_many(batch[:1])  # the first item went in, the next is refused for good
        raise StoreRejected("chunks table batch write: Item size has exceeded the maximum")

    chunks.put_many = put_many
    key = upload(blobs, "a.txt", b"one\n\ntwo")
    service.on_object_created(BUCKET, key)
    drain(service, docs, chunks)
    doc = docs.get("acme", document_id_for("acme", "a.txt"))
    # Then the document ends failed with the table's reason, nothing of it stays indexed,
    # and the dead-letter queue says why
    assert doc.status == DocumentStatus.FAILED and doc.reason_code == "store_rejected"
    assert "maximum" in doc.reason
    assert index.count_document("acme", doc.document_id) == 0
    assert chunks.list_for_document("acme", doc.document_id) == []
    assert [m["reason_code"] for m in dlq.messages] == ["store_rejected"]


def test_chunks_that_change_or_leave_evict_the_answers_that_depend_on_them(env):
    service, docs, chunks, blobs, dlq, embedder, index = env
    evicted: list[tuple[str, list[str]]] = []
    service.evict = lambda tenant, ids: evicted.append((tenant, sorted(ids))) or len(ids)
    service.on_object_created(BUCKET, upload(blobs, "a.txt", b"kept paragraph\n\nold paragraph"))
    drain(service, docs, chunks)
    assert evicted == []  # new chunks: nothing cached can depend on them
    before = {c.chunk_id: c.text for c in index.chunks.values()}
    service.on_object_created(BUCKET, upload(blobs, "a.txt", b"kept paragraph\n\nnew paragraph"))
    drain(service, docs, chunks)
    gone = [cid for cid, text in before.items() if text == "old paragraph"]
    assert evicted and evicted[0][0] == "acme"
    assert {cid for _, ids in evicted for cid in ids} == set(gone)
