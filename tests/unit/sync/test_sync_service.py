"""The sync service with fakes: a row's current state decides, versions are claimed, and what a
row cannot be is said (skipped, dead-lettered) without stopping the rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from docket.config import Settings
from docket.ingest.keys import object_key
from docket.models import DocumentStatus, content_hash, document_id_for
from docket.sync.config import SyncSource, parse_sources
from docket.sync.dynamodb import DynamoSourceTable, DynamoSyncState
from docket.sync.reconcile import backfill_page, verify
from docket.sync.service import SyncRecord, SyncService, order_of, render

from ..fakes import FakeBlobStore, FakeDeadLetters, FakeDocumentStore

SOURCE = SyncSource(
    table="tickets",
    text=("body", "resolution"),
    filter={"status": "resolved"},
    tenants=frozenset({"acme", "globex"}),
)
BUCKET = Settings().documents_bucket


class FakeTable:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.before_get: Any = None  # a hook: what another writer does between two reads

    def get(self, table: str, key_attribute: str, key: str) -> dict[str, Any] | None:
        if self.before_get is not None:
            hook, self.before_get = self.before_get, None
            hook()
        row = self.rows.get(key)
        return dict(row) if row else None

    def scan(
        self, table: str, segment: int, segments: int, start: Any, limit: int
    ) -> tuple[list[dict[str, Any]], Any]:
        keys = sorted(k for k in self.rows if hash(k) % segments == segment)
        begin = keys.index(start["id"]) + 1 if start else 0
        page = keys[begin : begin + limit]
        more = begin + limit < len(keys)
        return [dict(self.rows[k]) for k in page], ({"id": page[-1]} if more else None)


class MemoryState:
    def __init__(self) -> None:
        self.records: dict[str, SyncRecord] = {}

    def get(self, source: str, item_id: str) -> SyncRecord | None:
        return self.records.get(f"{source}#{item_id}")

    def claim(self, record: SyncRecord) -> bool:
        key = f"{record.source}#{record.item_id}"
        held = self.records.get(key)
        if held is not None and held.order > record.order:
            return False
        self.records[key] = record
        return True


@pytest.fixture
def parts() -> tuple[SyncService, FakeTable, MemoryState, FakeDocumentStore, FakeBlobStore, Any]:
    table, state, docs, blobs, letters = (
        FakeTable(),
        MemoryState(),
        FakeDocumentStore(),
        FakeBlobStore(),
        FakeDeadLetters(),
    )
    service = SyncService(Settings(), [SOURCE], table, state, docs, blobs, letters)
    return service, table, state, docs, blobs, letters


def row(item_id: str = "T-1", version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "tenant": "acme",
        "title": "VPN drops",
        "body": "Renew the certificate.",
        "status": "resolved",
        "acl_groups": ["it"],
        "version": version,
        **extra,
    }


def doc_id(item_id: str = "T-1", tenant: str = "acme") -> str:
    return document_id_for(tenant, f"tickets/{item_id}.md")


def key(item_id: str = "T-1", tenant: str = "acme") -> tuple[str, str]:
    return BUCKET, object_key(tenant, f"tickets/{item_id}.md")


def gone(docs: FakeDocumentStore, document_id: str, tenant: str = "acme") -> bool:
    """Leaving: marked deleting with its object removed (the pipeline then drops the record)."""
    doc = docs.get(tenant, document_id)
    return doc is None or doc.status == DocumentStatus.DELETING


def indexed(docs: FakeDocumentStore, blobs: FakeBlobStore, item_id: str = "T-1") -> None:
    """What extraction would do: the document's hash is its object's."""
    data = blobs.objects[key(item_id)][0]
    docs.update(
        "acme", doc_id(item_id), status=DocumentStatus.INDEXED, content_hash=content_hash(data)
    )


def test_a_new_row_becomes_a_markdown_document_with_its_groups(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, state, docs, blobs, _ = parts
    table.rows["T-1"] = row()
    assert sync.sync_item(SOURCE, "T-1") == "created"
    doc = docs.get("acme", doc_id())
    assert doc.source == "tickets/T-1.md" and doc.acl_groups == ["it"]
    assert blobs.objects[key()][0] == b"# VPN drops\n\nRenew the certificate.\n"
    assert state.get("tickets", "T-1").state == "indexed"


def test_the_same_row_again_writes_nothing_and_new_groups_only_retag(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, _, docs, blobs, _ = parts
    table.rows["T-1"] = row()
    sync.sync_item(SOURCE, "T-1")
    indexed(docs, blobs)
    blobs.objects.clear()
    assert sync.sync_item(SOURCE, "T-1") == "unchanged"
    table.rows["T-1"] = row(version=2, acl_groups=["it", "hr"])
    assert sync.sync_item(SOURCE, "T-1") == "updated"
    assert docs.get("acme", doc_id()).acl_groups == ["hr", "it"]
    assert blobs.objects == {}  # no new object: the text is the same, nothing is re-embedded


def test_an_older_version_never_overwrites_a_newer_one(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, state, _, blobs, _ = parts
    table.rows["T-1"] = row(version=5, body="Version five.")
    sync.sync_item(SOURCE, "T-1")
    old = row(version=3, body="Version three.")
    assert sync.apply_row(SOURCE, old) == "stale"  # a scan page older than what was applied
    assert b"Version five." in blobs.objects[key()][0]
    assert state.get("tickets", "T-1").order == order_of(SOURCE, row(version=5))


def test_a_writer_overtaken_by_a_newer_one_syncs_again_from_the_table(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, state, _, blobs, _ = parts
    table.rows["T-1"] = row(version=1, body="One.")

    def newer_writer() -> None:  # claims version 2 and writes it while version 1 is in flight
        table.rows["T-1"] = row(version=2, body="Two.")
        state.claim(
            SyncRecord(
                source="tickets",
                item_id="T-1",
                tenant="acme",
                order=order_of(SOURCE, table.rows["T-1"]),
                state="indexed",
                updated_at="2026-12-05T00:00:00Z",
            )
        )

    real_write = sync._write

    def write_then_overtaken(*args: Any) -> Any:
        out = real_write(*args)
        if b"One." in blobs.objects[key()][0]:
            newer_writer()
        return out

    sync._write = write_then_overtaken  # type: ignore[method-assign]
    sync.sync_item(SOURCE, "T-1")
    assert blobs.objects[key()][0] == b"# VPN drops\n\nTwo.\n"


def test_gone_filtered_or_textless_rows_leave_the_knowledge_base(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, state, docs, blobs, _ = parts
    for n, change in enumerate(
        [
            lambda: table.rows.pop("T-1"),  # deleted or expired
            lambda: table.rows.__setitem__("T-1", row(version=3, status="open")),
            lambda: table.rows.__setitem__("T-1", row(version=4, body="", resolution="  ")),
        ]
    ):
        table.rows["T-1"] = row(version=2 + n)
        sync.sync_item(SOURCE, "T-1")
        assert docs.get("acme", doc_id()) is not None
        change()
        outcome = sync.sync_item(SOURCE, "T-1", hint=row(version=2 + n))
        assert outcome in ("removed", "skipped")
        assert key() not in blobs.objects and gone(docs, doc_id())
    record = state.get("tickets", "T-1")
    assert record.state == "skipped" and "body, resolution" in record.reason


def test_a_row_of_an_unknown_tenant_or_with_bad_groups_is_dead_lettered(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, state, docs, _, letters = parts
    table.rows["T-1"] = row(tenant="initech")
    table.rows["T-2"] = row("T-2", tenant="../etc")
    table.rows["T-3"] = row("T-3", acl_groups=["bad group!"])
    table.rows["T-4"] = row("T-4")
    outcomes = [sync.sync_item(SOURCE, i) for i in ("T-1", "T-2", "T-3", "T-4")]
    assert outcomes == ["dead_lettered", "dead_lettered", "dead_lettered", "created"]
    assert [m["reason_code"] for m in letters.messages] == [
        "unknown_tenant",
        "unknown_tenant",
        "invalid_acl",
    ]
    assert state.get("tickets", "T-1").state == "rejected"
    assert [d.source for d in docs.list("acme")] == ["tickets/T-4.md"]


def test_a_row_moved_to_another_tenant_leaves_the_first(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, _, docs, _, _ = parts
    table.rows["T-1"] = row()
    sync.sync_item(SOURCE, "T-1")
    table.rows["T-1"] = row(version=2, tenant="globex")
    sync.sync_item(SOURCE, "T-1")
    assert gone(docs, doc_id())
    assert docs.get("globex", doc_id(tenant="globex")) is not None


def test_the_backfill_pages_through_every_segment(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, _, docs, _, _ = parts
    for n in range(250):
        table.rows[f"B-{n:03d}"] = row(f"B-{n:03d}")
    pages = 0
    for segment in range(3):
        start = None
        while True:
            page = backfill_page(sync, SOURCE, segment, 3, start)
            pages += 1
            if page.done:
                break
            start = page.start
    assert len(docs.list("acme")) == 250 and pages >= 3


def test_verify_reports_and_repairs_missing_stale_and_orphaned(parts) -> None:  # type: ignore[no-untyped-def]
    sync, table, _, docs, blobs, _ = parts
    for n in range(4):
        table.rows[f"T-{n}"] = row(f"T-{n}")
        sync.sync_item(SOURCE, f"T-{n}")
        indexed(docs, blobs, f"T-{n}")
    docs.delete("acme", doc_id("T-0"))  # missing
    docs.update("acme", doc_id("T-1"), content_hash="sha256:" + "0" * 64)  # stale
    table.rows.pop("T-2")  # orphaned: its row is gone, the stream never said so
    table.rows["T-9"] = row("T-9", body="")  # skipped: no text
    report = verify(sync, SOURCE, "acme", repair=False)
    assert report.repaired == {"missing": 1, "stale": 1, "orphaned": 1}
    assert report.in_sync == 1 and [s.item_id for s in report.skipped] == ["T-9"]
    verify(sync, SOURCE, "acme")
    for n in (0, 1):
        indexed(docs, blobs, f"T-{n}")
    assert gone(docs, doc_id("T-2"))
    assert verify(sync, SOURCE, "acme", repair=False).repaired == {
        "missing": 0,
        "stale": 0,
        "orphaned": 0,
    }


def test_render_and_order() -> None:
    assert render(SOURCE, {"title": "T", "body": "B", "resolution": 42}) == "# T\n\nB\n\n42\n"
    assert render(SOURCE, {"title": "T", "body": " "}) is None
    assert order_of(SOURCE, {"version": 10}) > order_of(SOURCE, {"version": 9})
    assert order_of(SOURCE, {"updated_at": "2026-12-05T10:00:01Z"}) > order_of(
        SOURCE, {"updated_at": "2026-12-05T10:00:00Z"}
    )


def test_sources_are_parsed_strictly() -> None:
    assert parse_sources('[{"table": "tickets"}]')[0].name == "tickets"
    with pytest.raises(ValueError):
        parse_sources('[{"table": "tix"}, {"table": "tax"}]')  # two sources named tickets
    with pytest.raises(ValueError):
        parse_sources('[{"table": "tix", "txt": ["body"]}]')  # a misspelt field


@pytest.fixture
def dynamo() -> Iterator[tuple[DynamoSourceTable, DynamoSyncState]]:
    with mock_aws():
        import boto3

        from docket.local.cloud import _table_definition
        from docket.wiring import SYNC_TABLE, TICKETS_TABLE, WIRING

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for spec in WIRING.tables:
            if spec.name in (SYNC_TABLE, TICKETS_TABLE):
                ddb.create_table(**_table_definition(spec))
        for n in range(7):
            ddb.put_item(
                TableName=TICKETS_TABLE, Item={"id": {"S": f"R-{n}"}, "version": {"N": "3"}}
            )
        yield DynamoSourceTable(), DynamoSyncState(SYNC_TABLE)


def test_the_dynamodb_adapters_scan_in_pages_and_claim_by_version(dynamo) -> None:  # type: ignore[no-untyped-def]
    from docket.wiring import TICKETS_TABLE

    table, state = dynamo
    seen, start = [], None
    while True:
        rows, start = table.scan(TICKETS_TABLE, 0, 1, start, 3)
        seen += rows
        if start is None:
            break
    assert sorted(r["id"] for r in seen) == [f"R-{n}" for n in range(7)]
    assert table.get(TICKETS_TABLE, "id", "R-1") == {"id": "R-1", "version": 3}
    assert table.get(TICKETS_TABLE, "id", "nope") is None

    def record(order: str) -> SyncRecord:
        return SyncRecord(
            source="tickets",
            item_id="R-1",
            tenant="acme",
            order=order,
            state="indexed",
            updated_at="2026-12-05T00:00:00Z",
        )

    assert state.claim(record("v2")) and state.claim(record("v2"))  # a retry may claim again
    assert state.claim(record("v3")) and not state.claim(record("v1"))
    assert state.get("tickets", "R-1").order == "v3"


def test_the_export_backfill_reads_the_exported_files_and_never_resurrects_a_deleted_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The export path of the backfill against moto's DynamoDB export: every exported row is
    applied, except one deleted after the export (its tombstone outranks the exported copy)."""
    from docket.config import reset_settings
    from docket.sync import jobs
    from docket.sync.factory import get_sync_service

    monkeypatch.setenv("DOCKET_SYNC_BACKFILL_METHOD", "export")
    monkeypatch.setenv("DOCKET_SYNC_SOURCES", '[{"table": "docket-tickets", "text": ["body"]}]')
    reset_settings()
    get_sync_service.cache_clear()
    with mock_aws():
        import boto3

        from docket.local.cloud import _table_definition
        from docket.wiring import DOCUMENTS_TABLE, SYNC_TABLE, TICKETS_TABLE, WIRING

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for spec in WIRING.tables:
            if spec.name in (SYNC_TABLE, TICKETS_TABLE, DOCUMENTS_TABLE):
                ddb.create_table(**_table_definition(spec))
        ddb.update_continuous_backups(
            TableName=TICKETS_TABLE,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in (Settings().text_bucket, Settings().documents_bucket):
            s3.create_bucket(Bucket=bucket)
        for n in range(12):
            item = {
                "id": {"S": f"E-{n}"},
                "tenant": {"S": "acme"},
                "title": {"S": f"T{n}"},
                "body": {"S": f"Exported row {n}."},
                "version": {"N": "1"},
            }
            ddb.put_item(TableName=TICKETS_TABLE, Item=item)
        sync = get_sync_service()
        plan = jobs.run_action(sync, {"action": "plan", "source": "tickets"})
        assert plan["method"] == "export" and plan["export_arn"]
        # after the export: the stream deletes E-0 (its record processed before the files are)
        ddb.delete_item(TableName=TICKETS_TABLE, Key={"id": {"S": "E-0"}})
        sync.sync_item(sync.source("tickets"), "E-0", hint={"tenant": "acme", "version": 1})
        asked = {"action": "export_status", "source": "tickets", "export_arn": plan["export_arn"]}
        for _ in range(50):  # the state machine's Wait loop
            status = jobs.run_action(sync, asked)
            if status["status"] != "IN_PROGRESS":
                break
            time.sleep(0.1)
        assert status["status"] == "COMPLETED" and status["files"]
        monkeypatch.setattr(jobs, "FILE_PAGE", 5)  # several pages per file
        for key in status["files"]:
            start: int | None = 0
            while start is not None:
                page = jobs.run_action(
                    sync, {"action": "file", "source": "tickets", "key": key, "start": start}
                )
                start = page["start"]
        sources = {d.source for d in sync.documents.list("acme")}
        assert sources == {f"tickets/E-{n}.md" for n in range(1, 12)}
    reset_settings()
    get_sync_service.cache_clear()
