"""Ingestion logic, one method per pipeline step.

Permanent failures (a corrupt or unsupported file) are recorded on the document with a typed reason,
sent to the dead-letter queue, and reported as handled: retrying the same bytes cannot help.
Transient failures raise, so the event source retries them and finally dead-letters them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aws_lambda_powertools import Logger

from docket.chunking.context import embedding_input
from docket.config import Settings
from docket.errors import DocketError, ExtractionError, FileTooLarge
from docket.ingest.keys import parse_key
from docket.models import (
    ChunkDraft,
    ChunkRecord,
    DocumentRecord,
    DocumentStatus,
    ExtractedDocument,
    chunk_id_for,
    content_hash,
    utcnow,
)
from docket.store.ports import BlobStore, ChunkStore, DeadLetterSink, DocumentStore

if TYPE_CHECKING:
    from docket.chunking.contextualize import Contextualizer
    from docket.embedding.port import Embedder
    from docket.search.port import SearchIndex


class ChunkerPort(Protocol):
    """Cuts an extracted document into chunks (``docket.chunking.Chunker``)."""

    def chunk(self, doc: ExtractedDocument) -> list[ChunkDraft]: ...


# (index, embedder) of each generation chunk changes go to, the live one first
Target = tuple["SearchIndex", "Embedder"]

logger = Logger(service="docket", child=True)

EventName = Literal["INSERT", "MODIFY", "REMOVE"]


@dataclass(frozen=True)
class ChunkChange:
    """One Chunks-table stream record, parsed at the edge."""

    record_id: str
    event_name: EventName
    old: ChunkRecord | None
    new: ChunkRecord | None


@dataclass
class EmbedOutcome:
    failures: dict[str, Exception] = field(default_factory=dict)
    embedded: int = 0
    updated: int = 0
    deleted: int = 0
    finalized: list[str] = field(default_factory=list)


# The chunk fields whose change needs no new vector (the text is what the chunk id hashes).
_METADATA_FIELDS = (
    "ordinal",
    "page_start",
    "page_end",
    "section",
    "acl_groups",
    "title",
    "source",
    "context",
)


class IngestService:
    def __init__(
        self,
        settings: Settings,
        documents: DocumentStore,
        chunks: ChunkStore,
        blobs: BlobStore,
        dead_letters: DeadLetterSink,
        *,
        chunker: ChunkerPort | None = None,
        embedder: Embedder | None = None,
        index: SearchIndex | None = None,
        extractor: Callable[..., ExtractedDocument] | None = None,
        contextualizer: Contextualizer | Literal[False] | None = False,
        targets: Callable[[], list[Target]] | None = None,
        evict: Callable[[str, list[str]], int] | None = None,
    ) -> None:
        self.settings = settings
        # the answer cache's eviction (docket.cache): entries that depend on changed chunks
        self.evict = evict
        self.documents = documents
        self.chunks = chunks
        self.blobs = blobs
        self.dead_letters = dead_letters
        self._chunker = chunker
        self._embedder = embedder
        self._index = index
        self._extractor = extractor
        # False: build from settings on first use (None when contextual_chunks="headers")
        self._contextualizer = contextualizer
        self._targets = targets

    # -- step 1: S3 object created / removed → Documents table ----------------------------------

    def on_object_created(self, bucket: str, key: str) -> str:
        tenant, source, document_id = parse_key(key)
        existing = self.documents.get(tenant, document_id)
        head = self.blobs.head(bucket, key)
        if head is None:
            logger.info("object gone before extraction", key=key)
            return "missing"
        acl = (
            existing.acl_groups
            if existing is not None
            else _acl_from_metadata(head.get("metadata") or {})
        )
        base = DocumentRecord(
            tenant=tenant,
            document_id=document_id,
            source=source,
            s3_key=key,
            acl_groups=acl,
            size_bytes=head["size"],
            created_at=existing.created_at if existing else utcnow(),
        )
        if head["size"] > self.settings.max_file_bytes:
            from docket.extract.core import human_size

            self._fail(
                base,
                FileTooLarge(
                    f"file is {human_size(head['size'])}, over the "
                    f"{human_size(self.settings.max_file_bytes)} limit"
                ),
                bucket,
                key,
            )
            return "failed"
        data = self.blobs.get(bucket, key)
        digest = content_hash(data)
        if existing is not None and existing.indexed_hash == digest and existing.chunk_count:
            # Same bytes as the indexed version: nothing to do but say so.
            self.documents.update(
                tenant, document_id, status=DocumentStatus.INDEXED, reason=None, reason_code=None
            )
            logger.info("document unchanged", document_id=document_id)
            return "unchanged"
        base = base.model_copy(update={"content_hash": digest, "size_bytes": len(data)})
        try:
            extracted = self._extract(data, posixpath.basename(source), head.get("content_type"))
        except ExtractionError as exc:
            self._fail(base, exc, bucket, key)
            return "failed"
        text_key = f"{tenant}/{document_id}/{digest.split(':', 1)[1]}.json"
        self.blobs.put(
            self.settings.text_bucket,
            text_key,
            extracted.model_dump_json().encode(),
            "application/json",
        )
        doc = base.model_copy(
            update={
                "status": DocumentStatus.PENDING,
                "title": extracted.title or posixpath.basename(source),
                "format": extracted.format,
                "page_count": len(extracted.pages),
                "text_key": text_key,
                "chunk_count": None,
                "indexed_hash": existing.indexed_hash if existing else None,
                "updated_at": utcnow(),
            }
        )
        self.documents.put(doc)
        logger.info("extracted", document_id=document_id, format=doc.format, pages=doc.page_count)
        return "extracted"

    def on_object_removed(self, key: str) -> None:
        tenant, _source, document_id = parse_key(key)
        self.documents.delete(tenant, document_id)
        logger.info("document removed", document_id=document_id)

    def _extract(self, data: bytes, filename: str, content_type: str | None) -> ExtractedDocument:
        if self._extractor is None:
            from docket.extract import extract_document

            self._extractor = extract_document
        return self._extractor(data, filename, content_type, max_bytes=self.settings.max_file_bytes)

    def _fail(self, doc: DocumentRecord, exc: DocketError, bucket: str, key: str) -> None:
        failed = doc.model_copy(
            update={
                "status": DocumentStatus.FAILED,
                "reason": exc.message,
                "reason_code": exc.code,
                "chunk_count": 0,
                "updated_at": utcnow(),
            }
        )
        self.documents.put(failed)
        self.dead_letters.send(
            {"bucket": bucket, "key": key, "document_id": doc.document_id, "tenant": doc.tenant},
            reason_code=exc.code,
            reason=exc.message,
        )
        logger.warning(
            "document failed", document_id=doc.document_id, reason_code=exc.code, reason=exc.message
        )

    # -- step 2: Documents stream → Chunks table --------------------------------------------------

    def on_document_change(
        self, event_name: EventName, old: DocumentRecord | None, new: DocumentRecord | None
    ) -> str:
        if event_name == "REMOVE" or new is None:
            if old is None:
                return "ignored"
            return self._drop_chunks(old.tenant, old.document_id)
        if new.status == DocumentStatus.FAILED:
            return self._drop_chunks(new.tenant, new.document_id)
        if (
            new.status != DocumentStatus.PENDING
            and old is not None
            and old.text_key == new.text_key
        ):
            if sorted(old.acl_groups) != sorted(new.acl_groups):
                return self._update_acl(new)
            return "ignored"
        text_changed = new.text_key is not None and (
            old is None
            or old.text_key != new.text_key
            or old.status == DocumentStatus.FAILED
            # the same bytes uploaded again while an earlier run was cut short: extraction wrote
            # a fresh record (no chunk count yet), and chunking is idempotent
            or (new.chunk_count is None and old.updated_at != new.updated_at)
        )
        if text_changed and new.status == DocumentStatus.PENDING:
            return self._rechunk(new)
        if old is not None and sorted(old.acl_groups) != sorted(new.acl_groups):
            return self._update_acl(new)
        return "ignored"

    def _rechunk(self, doc: DocumentRecord) -> str:
        assert doc.text_key is not None
        extracted = ExtractedDocument.model_validate_json(
            self.blobs.get(self.settings.text_bucket, doc.text_key)
        )
        wanted: dict[str, ChunkRecord] = {}
        for draft in self.chunker.chunk(extracted):
            cid = chunk_id_for(doc.document_id, draft.text)
            if cid in wanted:  # identical text twice in one document: index it once
                continue
            wanted[cid] = ChunkRecord(
                tenant=doc.tenant,
                document_id=doc.document_id,
                chunk_id=cid,
                ordinal=draft.ordinal,
                text=draft.text,
                page_start=draft.page_start,
                page_end=draft.page_end,
                section=draft.section,
                token_count=draft.token_count,
                source=doc.source,
                title=doc.title,
                acl_groups=doc.acl_groups,
            )
        existing = {
            c.chunk_id: c for c in self.chunks.list_for_document(doc.tenant, doc.document_id)
        }
        if self.contextualizer is not None:
            wanted = self._with_contexts(doc, extracted, wanted, existing)
        to_put = [
            c
            for cid, c in wanted.items()
            if cid not in existing or _metadata(existing[cid]) != _metadata(c)
        ]
        stale = [cid for cid in existing if cid not in wanted]
        # The expected count goes first, so the embed step can tell when the index has caught up.
        if not self.documents.update(
            doc.tenant, doc.document_id, expect_hash=doc.content_hash, chunk_count=len(wanted)
        ):
            return "superseded"
        try:
            self.chunks.put_many(to_put)
        except DocketError as exc:
            if not exc.permanent:
                raise  # transient: the stream retries the record
            # the table refuses these chunks for good: fail the document, which drops the chunks
            # already written, rather than leave it pending forever
            self._fail(doc, exc, self.settings.documents_bucket, doc.s3_key or "")
            return "failed"
        self.chunks.delete_many(doc.tenant, doc.document_id, stale)
        new_ids = sum(1 for c in to_put if c.chunk_id not in existing)
        logger.info(
            "chunked",
            document_id=doc.document_id,
            chunks=len(wanted),
            new=new_ids,
            updated=len(to_put) - new_ids,
            stale=len(stale),
        )
        reembed = any(
            embedding_input(existing[c.chunk_id]) != embedding_input(c)
            for c in to_put
            if c.chunk_id in existing
        )
        if new_ids == 0 and not stale and not reembed:
            # Nothing for the embed step to do: the index already holds exactly these chunks.
            self.documents.update(
                doc.tenant,
                doc.document_id,
                expect_hash=doc.content_hash,
                status=DocumentStatus.INDEXED,
                indexed_hash=doc.content_hash,
            )
        return "chunked"

    def _update_acl(self, doc: DocumentRecord) -> str:
        current = self.chunks.list_for_document(doc.tenant, doc.document_id)
        self.chunks.put_many([c.model_copy(update={"acl_groups": doc.acl_groups}) for c in current])
        return "acl_updated"

    def _drop_chunks(self, tenant: str, document_id: str) -> str:
        current = self.chunks.list_for_document(tenant, document_id)
        self.chunks.delete_many(tenant, document_id, [c.chunk_id for c in current])
        return "dropped"

    # -- step 3: Chunks stream → search index -------------------------------------------------------

    def on_chunk_changes(self, changes: Sequence[ChunkChange]) -> EmbedOutcome:
        outcome = EmbedOutcome()
        upserts: list[ChunkChange] = []
        metadata: list[ChunkChange] = []
        removes: list[ChunkChange] = []
        for ch in changes:
            if ch.event_name == "REMOVE":
                removes.append(ch)
            elif (
                ch.old is not None
                and ch.new is not None
                and embedding_input(ch.old) == embedding_input(ch.new)
            ):
                # same embedded text (chunk text and contextual header): the vector stands
                metadata.append(ch)
            else:
                upserts.append(ch)
        targets = self.write_targets()
        index = targets[0][0]  # the live generation: it decides when a document is indexed
        upserted: set[tuple[str, str]] = set()
        for n, (target, embedder) in enumerate(targets):
            written = self._write(
                target, embedder, list(upserts), metadata, removes, outcome, n == 0
            )
            if n == 0:
                upserted = written
        touched = {
            (c.tenant, c.document_id)
            for ch in changes
            if ch.record_id not in outcome.failures
            for c in (ch.new or ch.old,)
            if c is not None
        }
        records = self.documents.get_many(sorted(touched)) if touched else {}
        # ...and one deleted between that check and the commit leaves the index again at once
        gone = [key for key in sorted(upserted) if not _is_live(records.get(key))]
        for target, _ in targets if gone else []:
            for tenant, document_id in gone:
                target.delete_document(tenant, document_id)
            target.commit()
        for key in sorted(touched):
            if self.finalize(index, records.get(key)):
                outcome.finalized.append(key[1])
        if self.evict is not None:
            self._evict_answers(changes)
        logger.info(
            "indexed chunks",
            embedded=outcome.embedded,
            updated=outcome.updated,
            deleted=outcome.deleted,
            failed=len(outcome.failures),
            finalized=len(outcome.finalized),
        )
        return outcome

    def _write(
        self,
        index: SearchIndex,
        embedder: Embedder,
        upserts: list[ChunkChange],
        metadata: list[ChunkChange],
        removes: list[ChunkChange],
        outcome: EmbedOutcome,
        count: bool,
    ) -> set[tuple[str, str]]:
        """One generation's share of a batch; what was upserted (live documents only). A
        failure fails the records in every generation, so their retry reaches all of them."""
        # Metadata-only changes keep their vectors; a chunk the index lost is embedded again.
        if metadata:
            missing = self._update_metadata(index, metadata)
            upserts.extend(missing)
            if count:
                outcome.updated = len(metadata) - len(missing)
        upserted: set[tuple[str, str]] = set()
        if upserts:
            try:
                new = [ch.new for ch in upserts if ch.new is not None]  # upserts carry a new image
                vectors = embedder.embed_documents([embedding_input(c) for c in new])
                # A document deleted while its chunks were on their way must not come back: ask
                # after embedding (the slow part), right before writing.
                keys = [(c.tenant, c.document_id) for c in new]
                upserted = self._live(set(keys))
                keep = [i for i, key in enumerate(keys) if key in upserted]
                if keep:
                    index.upsert([new[i] for i in keep], vectors[keep])
                if count:
                    outcome.embedded = len(keep)
            except Exception as exc:
                for ch in upserts:
                    outcome.failures[ch.record_id] = exc
        by_tenant: dict[str, list[str]] = {}
        for ch in removes:
            assert ch.old is not None
            by_tenant.setdefault(ch.old.tenant, []).append(ch.old.chunk_id)
        for tenant, ids in by_tenant.items():
            deleted = index.delete_chunks(tenant, ids)
            if count:
                outcome.deleted += deleted
        index.commit()
        return upserted

    def write_targets(self) -> list[Target]:
        """(index, embedder) of every generation chunk changes go to, the live one first: one
        unless a rebuild is under way or a retired generation is kept for rollback."""
        if self._targets is None:
            return [(self.index, self.embedder)]
        return self._targets()

    def _live(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of ``keys`` whose document still exists and is not being deleted."""
        records = self.documents.get_many(sorted(keys))
        return {key for key in keys if _is_live(records.get(key))}

    def _evict_answers(self, changes: Sequence[ChunkChange]) -> None:
        """Cached answers that quoted or retrieved a chunk that changed or left: gone, after the
        index has the change (an answer computed meanwhile depends on the new chunk ids)."""
        assert self.evict is not None
        by_tenant: dict[str, list[str]] = {}
        for ch in changes:
            if ch.event_name in ("MODIFY", "REMOVE") and ch.old is not None:
                by_tenant.setdefault(ch.old.tenant, []).append(ch.old.chunk_id)
        for tenant, chunk_ids in by_tenant.items():
            try:
                evicted = self.evict(tenant, chunk_ids)
            except DocketError as exc:
                # the chunk's record is written: failing it would not bring the eviction back;
                # the entries still expire on time
                logger.error("cached answers not evicted", tenant=tenant, error=exc.message)
                continue
            if evicted:
                logger.info("cached answers evicted", tenant=tenant, entries=evicted)

    def _update_metadata(self, index: SearchIndex, changes: list[ChunkChange]) -> list[ChunkChange]:
        """Update in place; when the index lacks some of them, embed the batch again (rare)."""
        chunks = [ch.new for ch in changes if ch.new is not None]
        if index.update_metadata(chunks) == len(chunks):
            return []
        return changes

    def finalize(self, index: SearchIndex, doc: DocumentRecord | None) -> bool:
        """Mark a pending document indexed once the index holds all of its chunks."""
        if doc is None or doc.status != DocumentStatus.PENDING or doc.chunk_count is None:
            return False
        if index.count_document(doc.tenant, doc.document_id) != doc.chunk_count:
            return False
        return self.documents.update(
            doc.tenant,
            doc.document_id,
            expect_hash=doc.content_hash,
            status=DocumentStatus.INDEXED,
            indexed_hash=doc.content_hash,
            embedding_model=index.model.tag,
            reason=None,
            reason_code=None,
        )

    def _with_contexts(
        self,
        doc: DocumentRecord,
        extracted: ExtractedDocument,
        wanted: dict[str, ChunkRecord],
        existing: dict[str, ChunkRecord],
    ) -> dict[str, ChunkRecord]:
        """LLM context sentences (contextual_chunks="llm"): a chunk that keeps its id keeps its
        context, so an edit pays for (and re-embeds) only the chunks it changed."""
        reuse = {
            cid: existing[cid].context
            for cid in wanted
            if cid in existing and existing[cid].context
        }
        asked = [c for cid, c in wanted.items() if cid not in reuse]
        contextualizer = self.contextualizer
        assert contextualizer is not None  # _rechunk asks for contexts only when there is one
        result = contextualizer.contextualize(extracted, asked)
        logger.info(
            "contextualized",
            document_id=doc.document_id,
            reused=len(reuse),
            **result.usage.model_dump(),
        )
        contexts = {**reuse, **result.contexts}
        return {
            cid: c.model_copy(update={"context": contexts.get(cid)}) for cid, c in wanted.items()
        }

    # -- lazily built collaborators (heavy imports stay off the cold-start path) --------------------

    @property
    def contextualizer(self) -> Contextualizer | None:
        if self._contextualizer is False:
            from docket.chunking.contextualize import build_contextualizer

            self._contextualizer = build_contextualizer(self.settings)
        return self._contextualizer

    @property
    def chunker(self) -> ChunkerPort:
        if self._chunker is None:
            from docket.chunking import chunker_for

            self._chunker = chunker_for(self.settings)
        return self._chunker

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from docket.embedding.factory import get_embedder

            self._embedder = get_embedder(self.settings)
        return self._embedder

    @property
    def index(self) -> SearchIndex:
        if self._index is None:
            from docket.search.factory import get_index

            self._index = get_index(self.settings)
        return self._index


def _is_live(doc: DocumentRecord | None) -> bool:
    return doc is not None and doc.status != DocumentStatus.DELETING


def _metadata(chunk: ChunkRecord) -> tuple[Any, ...]:
    return tuple(
        sorted(v) if isinstance(v, list) else v
        for v in (getattr(chunk, f) for f in _METADATA_FIELDS)
    )


def _acl_from_metadata(metadata: dict[str, str]) -> list[str]:
    raw = metadata.get("acl-groups") or metadata.get("acl_groups") or ""
    return sorted({g.strip() for g in raw.split(",") if g.strip()})
