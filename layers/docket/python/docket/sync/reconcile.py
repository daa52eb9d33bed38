"""The backfill (rows already in the table when syncing starts) and reconciliation
(``docket sync verify``: compare a tenant's rows with its documents and repair the drift).

The backfill scans the table in segments (state_machines/sync_backfill.asl.json runs them in
parallel, a page per step) while the stream is already being consumed; both apply a row through
the same claim on its version, so a row changed during the backfill ends at its newest version
whichever path comes last, and a row seen by both is written once (the second finds the same text
and writes nothing).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from docket.models import DocumentStatus, content_hash, document_id_for
from docket.sync.config import SyncSource
from docket.sync.service import SyncService, acl_of, document_source, render

PAGE = 100


class SegmentPage(BaseModel):
    segment: int
    segments: int
    start: dict[str, Any] | None = None
    rows: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    done: bool = False


class Skipped(BaseModel):
    item_id: str
    reason: str


class VerifyReport(BaseModel):
    source: str
    tenant: str
    rows: int = Field(description="the tenant's rows in the source table")
    in_sync: int
    repaired: dict[str, int] = Field(
        description="missing: indexed nowhere; stale: other text or groups; orphaned: indexed "
        "but gone, filtered out or without text at the source"
    )
    pending: int = Field(description="documents still in the pipeline, left to finish")
    skipped: list[Skipped]


def backfill_page(
    sync: SyncService, source: SyncSource, segment: int, segments: int, start: dict[str, Any] | None
) -> SegmentPage:
    rows, next_start = sync.table.scan(source.table, segment, segments, start, PAGE)
    outcomes = Counter(sync.apply_row(source, row) for row in rows)
    return SegmentPage(
        segment=segment,
        segments=segments,
        start=next_start,
        rows=len(rows),
        outcomes=dict(outcomes),
        done=next_start is None,
    )


def verify(sync: SyncService, source: SyncSource, tenant: str, repair: bool = True) -> VerifyReport:
    rows: dict[str, dict[str, Any]] = {}
    start: dict[str, Any] | None = None
    while True:
        page, start = sync.table.scan(source.table, 0, 1, start, 1000)
        for row in page:
            if row.get(source.tenant) == tenant:
                rows[str(row[source.key])] = row
        if start is None:
            break
    prefix = f"{source.name}/"
    documents = {
        d.document_id: d for d in sync.documents.list(tenant) if d.source.startswith(prefix)
    }
    repaired: Counter[str] = Counter()
    skipped: list[Skipped] = []
    in_sync = pending = 0
    expected: set[str] = set()
    for item_id, row in sorted(rows.items()):
        path = document_source(source, item_id)
        document_id = document_id_for(tenant, path)
        text = render(source, row)
        if not source.matches(row) or text is None:
            if text is None and source.matches(row):
                skipped.append(
                    Skipped(item_id=item_id, reason=f"no text in {', '.join(source.text)}")
                )
            continue  # a document of it, if any, is an orphan below
        expected.add(document_id)
        doc = documents.get(document_id)
        if doc is None or doc.status == DocumentStatus.DELETING:
            repaired["missing"] += 1
        elif doc.status == DocumentStatus.PENDING:
            pending += 1
            continue
        elif doc.content_hash != content_hash(text.encode()) or doc.acl_groups != acl_of(
            source, row
        ):
            repaired["stale"] += 1
        else:
            in_sync += 1
            continue
        if repair:
            sync.sync_item(source, item_id)
    for document_id, doc in documents.items():
        if document_id not in expected and doc.status != DocumentStatus.DELETING:
            repaired["orphaned"] += 1
            if repair:
                item_id = _item_id(doc.source, prefix)
                sync.sync_item(source, item_id, hint={source.tenant: tenant})
    return VerifyReport(
        source=source.name,
        tenant=tenant,
        rows=len(rows),
        in_sync=in_sync,
        repaired={k: repaired.get(k, 0) for k in ("missing", "stale", "orphaned")},
        pending=pending,
        skipped=skipped,
    )


def _item_id(path: str, prefix: str) -> str:
    from urllib.parse import unquote

    return unquote(path[len(prefix) : -len(".md")] if path.endswith(".md") else path[len(prefix) :])
