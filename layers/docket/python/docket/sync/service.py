"""Rows of a source table as documents: the stream's changes, the backfill and reconciliation.

Every path asks the table for the row's current state and makes the knowledge base match it, so a
replayed, reordered or duplicated change can only re-apply the truth:

- a row that exists, matches the source's filter and has text becomes (or stays) the document
  ``{source}/{key}.md`` of its tenant, written through the same S3 → extract → chunk → embed path
  as an upload. Same text: nothing is written; new ACL groups only: the document record's groups
  change and the chunk step updates the chunks' metadata (no re-embedding); new text: the object
  is written again and only changed chunks are embedded;
- a row that is gone (deleted, or expired by TTL), stopped matching the filter, or lost its text
  leaves the knowledge base: the document is marked deleting and its object removed, and the
  pipeline drops its chunks;
- a row for a tenant the source may not speak for is dead-lettered with its reason.

The sync state table records, per row, the newest version applied (``order``: the version number,
else the update timestamp) and what became of it. A write claims its version first (refused when a
newer one is recorded: a stale backfill page or a replayed record), and checks after writing that
its claim still stands; if a newer writer claimed meanwhile, it syncs the row again from the table,
so the last object written is the newest row's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, TypeAdapter, ValidationError

from docket.config import Settings
from docket.errors import NotFound
from docket.ingest.keys import object_key
from docket.models import (
    DocumentRecord,
    DocumentStatus,
    GroupName,
    TenantId,
    content_hash,
    document_id_for,
    utcnow,
)
from docket.observability import logger
from docket.store.ports import BlobStore, DeadLetterSink, DocumentStore
from docket.sync.config import SyncSource

State = Literal["indexed", "deleted", "filtered", "skipped", "rejected"]
Outcome = Literal[
    "created", "updated", "unchanged", "removed", "stale", "skipped", "dead_lettered", "ignored"
]
MAX_RESYNCS = 3
TOMBSTONE = "~"  # sorts after every character of an order

_TENANT = TypeAdapter(TenantId)
_GROUPS = TypeAdapter(list[GroupName])


class SyncRecord(BaseModel):
    source: str
    item_id: str
    tenant: str | None = None
    document_id: str | None = None
    order: str = ""
    state: State
    reason: str | None = None
    updated_at: datetime


class SourceTable(Protocol):
    def get(self, table: str, key_attribute: str, key: str) -> dict[str, Any] | None:
        """The row, read consistently; None when there is none."""
        ...

    def scan(
        self, table: str, segment: int, segments: int, start: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of segment ``segment`` of ``segments``, and where the next page starts."""
        ...


class SyncStateStore(Protocol):
    def get(self, source: str, item_id: str) -> SyncRecord | None: ...

    def claim(self, record: SyncRecord) -> bool:
        """Store ``record`` unless a newer order is stored (equal is allowed: a retry)."""
        ...


class Rejected(Exception):
    """A row docket cannot take (unknown tenant, invalid groups): dead-lettered, not retried."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def order_of(source: SyncSource, item: dict[str, Any] | None) -> str:
    """A string that sorts like the row's versions: its version number, else its timestamp."""
    if not item:
        return ""
    version = item.get(source.version) if source.version else None
    if isinstance(version, int | float) and not isinstance(version, bool):
        return f"v{int(version):020d}"
    updated = item.get(source.updated_at) if source.updated_at else None
    return f"t{updated}" if isinstance(updated, str) and updated else ""


def document_source(source: SyncSource, item_id: str) -> str:
    from urllib.parse import quote

    return f"{source.name}/{quote(item_id, safe='-_.@')}.md"


def render(source: SyncSource, item: dict[str, Any]) -> str | None:
    """The row as a Markdown document (the title as its heading), or None without text."""
    parts = [
        str(item[a]).strip()
        for a in source.text
        if isinstance(item.get(a), str | int | float) and str(item[a]).strip()
    ]
    if not parts:
        return None
    title = item.get(source.title) if source.title else None
    heading = f"# {str(title).strip()}\n\n" if isinstance(title, str) and title.strip() else ""
    return heading + "\n\n".join(parts) + "\n"


def acl_of(source: SyncSource, item: dict[str, Any]) -> list[str]:
    raw = item.get(source.acl) if source.acl else None
    if raw is None:
        return []
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    try:
        return sorted(
            set(_GROUPS.validate_python([str(v).strip() for v in values if str(v).strip()]))
        )
    except ValidationError as exc:
        raise Rejected("invalid_acl", f"ACL groups {raw!r} are not valid group names") from exc


class SyncService:
    def __init__(
        self,
        settings: Settings,
        sources: Iterable[SyncSource],
        table: SourceTable,
        state: SyncStateStore,
        documents: DocumentStore,
        blobs: BlobStore,
        dead_letters: DeadLetterSink,
    ) -> None:
        self.settings = settings
        self.sources = {s.name: s for s in sources}
        self.table = table
        self.state = state
        self.documents = documents
        self.blobs = blobs
        self.dead_letters = dead_letters

    def source(self, name: str) -> SyncSource:
        found = self.sources.get(name)
        if found is None:
            raise NotFound(f"no sync source {name!r}")
        return found

    def source_of_table(self, table: str) -> SyncSource:
        """The source reading ``table`` (a name, or a table or stream ARN)."""
        name = table.split(":table/")[-1].split("/stream/")[0]
        for s in self.sources.values():
            if s.table == name:
                return s
        raise NotFound(f"no sync source reads table {name!r}")

    # -- one row --------------------------------------------------------------------------------

    def sync_item(
        self, source: SyncSource, item_id: str, hint: dict[str, Any] | None = None
    ) -> Outcome:
        """Make the knowledge base hold what the table holds for ``item_id`` now (``hint``: the
        stream's image, used only to name the tenant of a row that is gone)."""
        for _ in range(MAX_RESYNCS):
            item = self.table.get(source.table, source.key, item_id)
            outcome, settled = (
                self._gone(source, item_id, hint) if item is None else self._apply(source, item)
            )
            if settled:
                return outcome
        logger.warning("row kept changing while it was synced", source=source.name, item=item_id)
        return outcome

    def apply_row(self, source: SyncSource, item: dict[str, Any]) -> Outcome:
        """A row as a scan read it (the backfill): applied, or synced again if it changed."""
        outcome, settled = self._apply(source, item)
        if settled:
            return outcome
        return self.sync_item(source, str(item[source.key]))

    def _apply(self, source: SyncSource, item: dict[str, Any]) -> tuple[Outcome, bool]:
        item_id = str(item[source.key])
        order = order_of(source, item)
        try:
            tenant = self._tenant(source, item)
            acl = acl_of(source, item)
        except Rejected as exc:
            self.dead_letters.send(
                {"source": source.name, "table": source.table, source.key: item_id},
                reason_code=exc.code,
                reason=exc.reason,
            )
            self._record(source, item_id, None, order, "rejected", exc.reason)
            logger.warning("row rejected", source=source.name, item=item_id, reason=exc.reason)
            return "dead_lettered", True
        if not source.matches(item):
            return self._leave(
                source, item_id, tenant, order, "filtered", "does not match the filter"
            )
        text = render(source, item)
        if text is None:
            missing = ", ".join(source.text)
            return self._leave(
                source, item_id, tenant, order, "skipped", f"no text in attribute(s) {missing}"
            )
        previous = self.state.get(source.name, item_id)
        path = document_source(source, item_id)
        record = self._new_record(source, item_id, tenant, order, "indexed", None, path)
        if not self.state.claim(record):
            return "stale", True
        if previous is not None and previous.tenant not in (None, tenant):
            self._remove_document(previous.tenant, path)  # the row moved to another tenant
        outcome = self._write(tenant, path, text, acl)
        return outcome, self._still_mine(source, item_id, order)

    def _gone(
        self, source: SyncSource, item_id: str, hint: dict[str, Any] | None
    ) -> tuple[Outcome, bool]:
        previous = self.state.get(source.name, item_id)
        tenant = previous.tenant if previous else None
        if tenant is None and hint:
            try:
                tenant = self._tenant(source, hint)
            except Rejected:
                return "ignored", True
        if tenant is None:
            return "ignored", True
        # a tombstone sorts after the version it deleted: a copy of that version read before
        # the delete (an export, a slow scan page) can never bring the row back
        order = max(order_of(source, hint), previous.order if previous else "")
        if not order.endswith(TOMBSTONE):
            order += TOMBSTONE
        return self._leave(source, item_id, tenant, order, "deleted", None)

    def _leave(
        self,
        source: SyncSource,
        item_id: str,
        tenant: str,
        order: str,
        state: State,
        reason: str | None,
    ) -> tuple[Outcome, bool]:
        path = document_source(source, item_id)
        record = self._new_record(source, item_id, tenant, order, state, reason, path)
        if not self.state.claim(record):
            return "stale", True
        removed = self._remove_document(tenant, path)
        if reason:
            logger.info("row not indexed", source=source.name, item=item_id, reason=reason)
        outcome: Outcome = "skipped" if state == "skipped" else "removed" if removed else "ignored"
        return outcome, self._still_mine(source, item_id, order)

    def _still_mine(self, source: SyncSource, item_id: str, order: str) -> bool:
        now = self.state.get(source.name, item_id)
        return now is None or now.order == order

    def _tenant(self, source: SyncSource, item: dict[str, Any]) -> str:
        raw = item.get(source.tenant)
        try:
            tenant = _TENANT.validate_python(raw)
        except ValidationError as exc:
            raise Rejected("unknown_tenant", f"tenant {raw!r} is not a valid tenant id") from exc
        if source.tenants is not None and tenant not in source.tenants:
            raise Rejected("unknown_tenant", f"tenant {tenant!r} is not one this source serves")
        return str(tenant)

    def _new_record(
        self,
        source: SyncSource,
        item_id: str,
        tenant: str | None,
        order: str,
        state: State,
        reason: str | None,
        path: str,
    ) -> SyncRecord:
        return SyncRecord(
            source=source.name,
            item_id=item_id,
            tenant=tenant,
            document_id=document_id_for(tenant, path) if tenant else None,
            order=order,
            state=state,
            reason=reason,
            updated_at=utcnow(),
        )

    def _record(
        self,
        source: SyncSource,
        item_id: str,
        tenant: str | None,
        order: str,
        state: State,
        reason: str,
    ) -> None:
        path = document_source(source, item_id)
        self.state.claim(self._new_record(source, item_id, tenant, order, state, reason, path))

    # -- documents ------------------------------------------------------------------------------

    def _write(self, tenant: str, path: str, text: str, acl: list[str]) -> Outcome:
        key = object_key(tenant, path)
        document_id = document_id_for(tenant, path)
        data = text.encode()
        bucket = self.settings.documents_bucket
        existing = self.documents.get(tenant, document_id)
        if existing is None or existing.status == DocumentStatus.DELETING:
            self.documents.put(
                DocumentRecord(
                    tenant=tenant, document_id=document_id, source=path, s3_key=key, acl_groups=acl
                )
            )
            self.blobs.put(bucket, key, data, "text/markdown")
            return "created"
        changed = False
        if sorted(existing.acl_groups) != acl:  # groups only: the chunk step re-tags the chunks
            self.documents.update(tenant, document_id, acl_groups=acl)
            changed = True
        if existing.content_hash != content_hash(data) or existing.status == DocumentStatus.FAILED:
            self.blobs.put(bucket, key, data, "text/markdown")
            changed = True
        return "updated" if changed else "unchanged"

    def _remove_document(self, tenant: str, path: str) -> bool:
        document_id = document_id_for(tenant, path)
        existing = self.documents.get(tenant, document_id)
        if existing is None:
            return False
        if existing.status != DocumentStatus.DELETING:
            self.documents.update(tenant, document_id, status=DocumentStatus.DELETING)
        key = existing.s3_key or object_key(tenant, path)
        if self.blobs.head(self.settings.documents_bucket, key) is not None:
            self.blobs.delete(self.settings.documents_bucket, key)  # the pipeline drops it
        else:
            self.documents.delete(tenant, document_id)
        return True
