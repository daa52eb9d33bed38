"""Change data capture on the local cloud: rows of the example tickets table (written through the
local AWS endpoint, as a user would) answered by POST /query; updates, ACL changes, deletes, TTL
expiry, replays, the backfill's hand-over and reconciliation.

Bad input: a row without text → skipped with its reason in the sync report; a row for an unknown
tenant → dead-lettered; a poison record → the on-failure queue, its shard going on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from docket.local.cloud import LocalCloud
from docket.local.pollers import StreamPoller
from docket.wiring import INGEST_DLQ, PIPELINE_DLQ, TICKETS_SOURCE, TICKETS_TABLE

from .conftest import Api, running_cloud

pytestmark = pytest.mark.integration

ADMIN = ("admins",)


@pytest.fixture(scope="module")
def cloud_and_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Api]]:
    source = {**TICKETS_SOURCE, "tenants": ["acme", "globex"]}
    env = {"DOCKET_SYNC_SOURCES": json.dumps([source])}
    with running_cloud(tmp_path_factory.mktemp("sync"), env=env) as running:
        yield running


@pytest.fixture(scope="module")
def cloud(cloud_and_api: tuple[LocalCloud, Api]) -> LocalCloud:
    return cloud_and_api[0]


@pytest.fixture(scope="module")
def api(cloud_and_api: tuple[LocalCloud, Api]) -> Api:
    return cloud_and_api[1]


@pytest.fixture(scope="module")
def table(cloud: LocalCloud) -> Any:
    """The tickets table through the local AWS endpoint (port+1), signed with its key."""
    return cloud.endpoint_resource("dynamodb").Table(TICKETS_TABLE)


def ticket(item_id: str, body: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": item_id,
        "tenant": "acme",
        "title": f"Ticket {item_id}",
        "body": body,
        "resolution": "",
        "status": "resolved",
        "acl_groups": [],
        "version": version,
        "updated_at": f"2026-12-05T10:00:{version:02d}Z",
        **extra,
    }


def doc_of(api: Api, item_id: str, tenant: str = "acme", groups: tuple[str, ...] = ()) -> Any:
    docs = api.call("GET", "/documents", tenant, groups).json()["documents"]
    return next((d for d in docs if d["source"] == f"tickets/{item_id}.md"), None)


def quotes(api: Api, question: str, groups: tuple[str, ...] = ()) -> str:
    answer = api.ask(question, groups=groups, top_k=5)
    return (
        " ".join(c["quote"] for c in answer["citations"])
        + " "
        + " ".join(c["text"] for c in answer["chunks"])
    )


def settle(cloud: LocalCloud, timeout: float = 60) -> None:
    time.sleep(0.3)  # a write through the endpoint reaches the stream at once; let it be read
    cloud.wait_idle(timeout=timeout)


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not reached")


def test_insert_update_and_delete_are_answered(cloud: LocalCloud, api: Api, table: Any) -> None:
    table.put_item(Item=ticket("T-1", "The VPN drops every hour: renew the certificate."))
    settle(cloud)
    doc = wait_for(lambda: (d := doc_of(api, "T-1")) and d["status"] == "indexed" and d)
    assert doc["title"] == "Ticket T-1"
    assert "renew the certificate" in quotes(api, "Why does the VPN drop every hour?")

    table.put_item(Item=ticket("T-1", "The VPN drops every hour: upgrade the client to 5.2.", 2))
    settle(cloud)
    wait_for(lambda: "upgrade the client" in quotes(api, "Why does the VPN drop every hour?"))
    wait_for(
        lambda: "renew the certificate" not in quotes(api, "Why does the VPN drop every hour?")
    )

    table.delete_item(Key={"id": "T-1"})
    settle(cloud)
    wait_for(lambda: doc_of(api, "T-1") is None)
    wait_for(lambda: "VPN" not in quotes(api, "Why does the VPN drop every hour?"))


def test_an_acl_change_retags_the_chunks_without_embedding_again(
    cloud: LocalCloud, api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docket.ingest.service import IngestService

    outcomes: list[Any] = []  # what each embed step did: chunks embedded, re-tagged, deleted

    def counting(self: Any, changes: Any) -> Any:
        outcome = real(self, changes)
        outcomes.append(outcome)
        return outcome

    real = IngestService.on_chunk_changes
    monkeypatch.setattr(IngestService, "on_chunk_changes", counting)
    table.put_item(Item=ticket("T-2", "Payroll exports fail on the 31st: rerun on the 1st."))
    settle(cloud)
    before = wait_for(lambda: (d := doc_of(api, "T-2")) and d["status"] == "indexed" and d)
    assert sum(o.embedded for o in outcomes) >= 1  # the first version was embedded
    outcomes.clear()
    table.put_item(
        Item=ticket(
            "T-2", "Payroll exports fail on the 31st: rerun on the 1st.", 2, acl_groups=["payroll"]
        )
    )
    settle(cloud)
    wait_for(lambda: doc_of(api, "T-2") is None)  # now restricted: gone for a caller without it
    after = doc_of(api, "T-2", groups=("payroll",))
    assert after["acl_groups"] == ["payroll"] and after["indexed_hash"] == before["indexed_hash"]
    assert "rerun on the 1st" in quotes(api, "When do payroll exports fail?", ("payroll",))
    # the chunks' groups follow the document's through the pipeline: then the query enforces them
    wait_for(lambda: "rerun on the 1st" not in quotes(api, "When do payroll exports fail?"))
    # the chunks were re-tagged in place: none went to the model again
    assert sum(o.updated for o in outcomes) >= 1
    assert sum(o.embedded for o in outcomes) == 0
    assert after["chunk_count"] == before["chunk_count"]


def test_a_row_leaves_when_its_ttl_expires(cloud: LocalCloud, api: Api, table: Any) -> None:
    table.put_item(Item=ticket("T-3", "Printer on floor 3 jams: use tray 2."))
    settle(cloud)
    wait_for(lambda: (d := doc_of(api, "T-3")) and d["status"] == "indexed")
    table.put_item(
        Item=ticket(
            "T-3",
            "Printer on floor 3 jams: use tray 2.",
            2,
            expires_at=Decimal(int(time.time()) - 5),
        )
    )
    wait_for(lambda: table.get_item(Key={"id": "T-3"}).get("Item") is None, timeout=10)
    settle(cloud)
    wait_for(lambda: doc_of(api, "T-3") is None)
    wait_for(lambda: "tray 2" not in quotes(api, "What to do when the printer on floor 3 jams?"))


def test_a_replayed_older_record_never_brings_back_an_older_version(
    cloud: LocalCloud, api: Api, table: Any
) -> None:
    old = ticket("T-4", "Badge readers reset at midnight: wait five minutes.")
    table.put_item(Item=old)
    table.put_item(Item=ticket("T-4", "Badge readers reset at 2 am since the update.", 2))
    settle(cloud)
    wait_for(lambda: (d := doc_of(api, "T-4")) and d["status"] == "indexed")
    replay = {
        "Records": [
            {
                "eventID": "replayed-1",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "eventSourceARN": cloud.stream_arns[TICKETS_TABLE],
                "awsRegion": cloud.region,
                "dynamodb": {
                    "Keys": {"id": {"S": "T-4"}},
                    "NewImage": {k: _attr(v) for k, v in old.items()},
                    "SequenceNumber": "1",
                    "SizeBytes": 100,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
            }
        ]
    }
    result = cloud.invoke("docket-sync", replay)
    assert result == {"batchItemFailures": []}, result.get("errorMessage")
    settle(cloud)
    text = quotes(api, "When do badge readers reset?")
    assert "2 am" in text and "midnight" not in text


def test_the_filter_decides_which_rows_are_knowledge(
    cloud: LocalCloud, api: Api, table: Any
) -> None:
    table.put_item(Item=ticket("T-5", "Zebra scanners lose pairing: re-pair.", status="open"))
    settle(cloud)
    assert doc_of(api, "T-5") is None
    table.put_item(Item=ticket("T-5", "Zebra scanners lose pairing: re-pair.", 2))
    settle(cloud)
    wait_for(lambda: (d := doc_of(api, "T-5")) and d["status"] == "indexed")
    table.put_item(Item=ticket("T-5", "Zebra scanners lose pairing: re-pair.", 3, status="open"))
    settle(cloud)
    wait_for(lambda: doc_of(api, "T-5") is None)


def test_bad_rows_are_skipped_or_dead_lettered_and_the_rest_go_on(
    cloud: LocalCloud, api: Api, table: Any
) -> None:
    no_text = ticket("T-6", "")
    del no_text["body"]
    table.put_item(Item=no_text)
    table.put_item(Item={**ticket("T-7", "Foreign row."), "tenant": "initech"})
    table.put_item(Item=ticket("T-8", "Label printers need driver 7.1 after the upgrade."))
    settle(cloud)
    wait_for(lambda: (d := doc_of(api, "T-8")) and d["status"] == "indexed")
    assert doc_of(api, "T-6") is None
    letters = wait_for(
        lambda: [m for m in cloud.dead_letters(INGEST_DLQ) if m["record"].get("id") == "T-7"]
    )
    assert letters[0]["reason_code"] == "unknown_tenant" and "initech" in letters[0]["reason"]
    report = api.call("POST", "/sync/tickets/verify", "acme", ADMIN, json={"repair": False})
    assert report.status_code == 200, report.text
    skipped = {s["item_id"]: s["reason"] for s in report.json()["skipped"]}
    assert "body" in skipped["T-6"]


def test_a_poison_record_goes_to_the_on_failure_queue_without_stalling_the_shard(
    cloud: LocalCloud, api: Api, table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from docket.sync import service

    real = service.SyncService.sync_item

    def poisoned(self: Any, source: Any, item_id: str, hint: Any = None) -> Any:
        if item_id == "T-poison":
            raise RuntimeError("poison")
        return real(self, source, item_id, hint)

    monkeypatch.setattr(service.SyncService, "sync_item", poisoned)
    table.put_item(Item=ticket("T-poison", "This row's record cannot be processed."))
    table.put_item(Item=ticket("T-9", "Shared drives mount read-only: clear the cache."))
    settle(cloud, timeout=120)
    wait_for(lambda: (d := doc_of(api, "T-9")) and d["status"] == "indexed")
    failed = wait_for(lambda: cloud.dead_letters(PIPELINE_DLQ))
    assert any("T-poison" in json.dumps(m) for m in failed)


def test_the_backfill_hands_over_to_the_stream_without_a_gap(
    cloud: LocalCloud, api: Api, table: Any
) -> None:
    # rows the stream does not deliver yet: its consumer is paused while they are written
    poller = next(p for p in cloud.pollers if p.spec.function == "docket-sync")
    poller.stop()
    poller.join(timeout=30)
    rows = [
        ticket(f"B-{n:02d}", f"Backfilled answer number {n} about topic {n}.") for n in range(24)
    ]
    for row in rows:
        table.put_item(Item=row)
    started = api.call("POST", "/sync/tickets/backfill", "acme", ADMIN)
    assert started.status_code == 202, started.text
    run = started.json()["run"]
    # rows changing while the backfill runs
    for n in (3, 7):
        table.put_item(Item=ticket(f"B-{n:02d}", f"Changed during the backfill, answer {n}.", 2))

    def finished() -> str | None:
        status = api.call("GET", f"/sync/tickets/backfills/{run}", "acme", ADMIN).json()["status"]
        return None if status == "RUNNING" else status

    assert wait_for(finished, timeout=120) == "SUCCEEDED"
    # the stream resumes where it stopped: its records now repeat what the backfill did
    resumed = StreamPoller(
        poller.spec,
        cloud.region,
        poller.stream_arn,
        poller.on_failure_url,
        start_sequence=poller.next_sequence,
    )
    resumed.start()
    cloud.pollers[cloud.pollers.index(poller)] = resumed
    settle(cloud, timeout=120)
    for n in range(24):
        doc = wait_for(
            lambda n=n: (d := doc_of(api, f"B-{n:02d}")) and d["status"] == "indexed" and d
        )
        assert doc["chunk_count"] == 1
    assert "Changed during the backfill, answer 7" in quotes(
        api, "What changed during the backfill?"
    )
    report = api.call("POST", "/sync/tickets/verify", "acme", ADMIN, json={"repair": False}).json()
    assert report["repaired"] == {"missing": 0, "stale": 0, "orphaned": 0}


def test_verify_finds_and_repairs_drift(cloud: LocalCloud, api: Api, table: Any) -> None:
    table.put_item(Item=ticket("T-10", "Conference room displays need HDMI-CEC off."))
    settle(cloud)
    doc = wait_for(lambda: (d := doc_of(api, "T-10")) and d["status"] == "indexed" and d)
    # drift: the document deleted behind the sync's back, and a document no row stands for
    assert api.call("DELETE", f"/documents/{doc['document_id']}", "acme").status_code == 202
    ghost = api.upload("tickets/ghost.md", b"# Ghost\n\nA ticket that was never in the table.\n")
    api.wait_status(ghost)
    settle(cloud)
    dry = api.call("POST", "/sync/tickets/verify", "acme", ADMIN, json={"repair": False}).json()
    assert dry["repaired"]["missing"] == 1 and dry["repaired"]["orphaned"] == 1
    fixed = api.call("POST", "/sync/tickets/verify", "acme", ADMIN, json={}).json()
    assert fixed["repaired"] == dry["repaired"]
    settle(cloud)
    wait_for(lambda: (d := doc_of(api, "T-10")) and d["status"] == "indexed")
    wait_for(lambda: doc_of(api, "ghost") is None)
    again = api.call("POST", "/sync/tickets/verify", "acme", ADMIN, json={"repair": False}).json()
    assert again["repaired"] == {"missing": 0, "stale": 0, "orphaned": 0}
    assert api.call("POST", "/sync/tickets/verify", "acme", json={}).status_code == 403


def _attr(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer().serialize(Decimal(value) if isinstance(value, int) else value)  # type: ignore[no-any-return]
