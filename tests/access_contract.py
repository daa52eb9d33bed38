"""The access contract: every KeyStore and BucketStore adapter (in-process, DynamoDB) passes this
one suite. A module that runs it imports it (``from tests.access_contract import *``) and
provides the fixtures ``key_store`` and ``buckets``."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from docket.access.keys import ApiKey
from docket.access.limits import Bucket, BucketStore

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def key(key_id: str, tenant: str = "acme", minutes: int = 0) -> ApiKey:
    return ApiKey(
        key_id=key_id,
        tenant=tenant,
        name=f"service {key_id[:4]}",
        scopes=["query", "ingest"],
        groups=["staff"],
        created_by="admin@acme",
        created_at=T0 + timedelta(minutes=minutes),
    )


def test_a_key_reads_back_with_its_digest(key_store) -> None:  # type: ignore[no-untyped-def]
    k = key("a" * 20)
    key_store.put(k, "d" * 64)
    assert key_store.get("a" * 20) == (k, "d" * 64)
    assert key_store.get("b" * 20) is None


def test_a_tenant_lists_only_its_keys_oldest_first(key_store) -> None:  # type: ignore[no-untyped-def]
    key_store.put(key("2" * 20, minutes=5), "x")
    key_store.put(key("1" * 20, minutes=1), "x")
    key_store.put(key("3" * 20, tenant="globex"), "x")
    assert [k.key_id for k in key_store.list("acme")] == ["1" * 20, "2" * 20]
    assert [k.key_id for k in key_store.list("globex")] == ["3" * 20]
    assert key_store.list("initech") == []


def test_revoking_marks_once_and_only_within_the_tenant(key_store) -> None:  # type: ignore[no-untyped-def]
    key_store.put(key("a" * 20), "d")
    assert key_store.revoke("globex", "a" * 20, T0) is None  # another tenant's key: nothing
    assert key_store.get("a" * 20)[0].revoked_at is None
    assert key_store.revoke("acme", "f" * 20, T0) is None  # no such key
    first = key_store.revoke("acme", "a" * 20, T0)
    again = key_store.revoke("acme", "a" * 20, T0 + timedelta(hours=1))
    assert first is not None and first.revoked_at == T0
    assert again is not None and again.revoked_at == T0  # the first time stays
    record, digest = key_store.get("a" * 20)
    assert record.revoked_at == T0 and digest == "d"


MINUTE_5 = Bucket("query", "tenant:acme", capacity=5, window_s=60)


def test_a_bucket_starts_full_and_refuses_when_empty(buckets: BucketStore) -> None:
    assert buckets.level(MINUTE_5, 1000.0) == 5
    for n in range(5):
        took = buckets.take(MINUTE_5, 1, 1000.0)
        assert took.allowed and took.remaining == pytest.approx(4 - n)
    refused = buckets.take(MINUTE_5, 1, 1000.0)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(12.0)  # one token every 12 s
    assert buckets.level(MINUTE_5, 1000.0) == pytest.approx(0)


def test_a_bucket_refills_with_time_up_to_its_capacity(buckets: BucketStore) -> None:
    for _ in range(5):
        buckets.take(MINUTE_5, 1, 1000.0)
    assert buckets.level(MINUTE_5, 1024.0) == pytest.approx(2)
    assert buckets.take(MINUTE_5, 2, 1024.0).allowed
    assert not buckets.take(MINUTE_5, 1, 1024.0).allowed
    assert buckets.level(MINUTE_5, 10_000.0) == pytest.approx(5)  # never above capacity


def test_a_refused_take_takes_nothing(buckets: BucketStore) -> None:
    assert buckets.take(MINUTE_5, 4, 1000.0).allowed
    assert not buckets.take(MINUTE_5, 3, 1000.0).allowed
    assert buckets.level(MINUTE_5, 1000.0) == pytest.approx(1)


def test_buckets_are_independent(buckets: BucketStore) -> None:
    other_tenant = Bucket("query", "tenant:globex", capacity=5, window_s=60)
    other_kind = Bucket("mcp", "tenant:acme", capacity=5, window_s=60)
    for _ in range(5):
        buckets.take(MINUTE_5, 1, 1000.0)
    assert buckets.level(other_tenant, 1000.0) == 5
    assert buckets.take(other_kind, 5, 1000.0).allowed


def test_concurrent_takes_never_overspend(buckets: BucketStore) -> None:
    bucket = Bucket("query", "tenant:busy", capacity=20, window_s=86_400)
    allowed: list[bool] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(10):
            took = buckets.take(bucket, 1, 5000.0)
            with lock:
                allowed.append(took.allowed)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 20 and len(allowed) == 40
