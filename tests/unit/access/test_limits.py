"""Rate limits and quotas: a tenant's and a key's buckets, 429 with when to retry, usage."""

from __future__ import annotations

import pytest

from docket.access.limits import Limiter
from docket.access.memory import MemoryBuckets
from docket.config import Settings
from docket.errors import FileTooLarge, RateLimited
from docket.models import Principal

ACME = Principal(subject="ann@acme", tenant="acme")
GLOBEX = Principal(subject="dan@globex", tenant="globex")
KEY_1 = Principal(subject="key:1", tenant="acme", scopes=frozenset({"query"}), key_id="1" * 20)
KEY_2 = Principal(subject="key:2", tenant="acme", scopes=frozenset({"query"}), key_id="2" * 20)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **limits: int) -> Limiter:
    settings = Settings(
        **{"query_rpm": 10, "key_query_rpm": 4, "mcp_rpm": 6, "key_mcp_rpm": 0, **limits}
    )
    return Limiter(settings, MemoryBuckets(), clock)


def flood(limiter: Limiter, caller: Principal, kind: str, n: int) -> list[int]:
    """The status of each of ``n`` requests: 200, or 429."""
    out = []
    for _ in range(n):
        try:
            limiter.charge(caller, kind)  # type: ignore[arg-type]
            out.append(200)
        except RateLimited:
            out.append(429)
    return out


def test_a_flood_gets_429s_with_retry_after_and_another_tenant_is_untouched() -> None:
    clock = Clock()
    lim = limiter(clock)
    assert flood(lim, ACME, "query", 15) == [200] * 10 + [429] * 5
    with pytest.raises(RateLimited) as refused:
        lim.charge(ACME, "query")
    assert refused.value.retry_after == 6  # 10 a minute: one every 6 s
    assert "10 query requests per minute" in refused.value.message
    assert flood(lim, GLOBEX, "query", 10) == [200] * 10
    clock.now += 6
    assert flood(lim, ACME, "query", 2) == [200, 429]


def test_query_and_mcp_have_their_own_buckets() -> None:
    lim = limiter(Clock())
    flood(lim, ACME, "query", 10)
    assert flood(lim, ACME, "mcp", 7) == [200] * 6 + [429]


def test_a_key_spends_its_own_bucket_first_and_its_tenants_too() -> None:
    lim = limiter(Clock())
    assert flood(lim, KEY_1, "query", 6) == [200] * 4 + [429] * 2  # the key's 4 a minute
    assert flood(lim, KEY_2, "query", 6) == [200] * 4 + [429] * 2
    # the tenant's 10 hold 8 taken by its keys; the key refused took none of the tenant's
    assert flood(lim, ACME, "query", 3) == [200, 200, 429]


def test_a_zero_limit_is_no_limit() -> None:
    lim = limiter(Clock(), query_rpm=0, key_query_rpm=0)
    assert flood(lim, KEY_1, "query", 50) == [200] * 50


def test_the_daily_upload_quota_counts_bytes_and_refuses_what_never_fits() -> None:
    clock = Clock()
    lim = limiter(clock, ingest_bytes_per_day=1000)
    lim.charge(ACME, "ingest_bytes", 600)
    with pytest.raises(RateLimited) as refused:
        lim.charge(ACME, "ingest_bytes", 600)
    assert refused.value.retry_after == pytest.approx(17_280, abs=1)  # 200 bytes at 1000/day
    with pytest.raises(FileTooLarge, match="daily upload quota"):
        lim.charge(GLOBEX, "ingest_bytes", 1001)
    lim.charge(GLOBEX, "ingest_bytes", 1000)


def test_usage_shows_the_callers_buckets() -> None:
    lim = limiter(Clock(), ingest_bytes_per_day=1000)
    flood(lim, KEY_1, "query", 3)
    usage = lim.usage(KEY_1)
    rows = {(u.kind, u.applies_to): u for u in usage.limits}
    assert usage.tenant == "acme" and usage.key_id == "1" * 20
    assert (rows["query", "key"].limit, rows["query", "key"].used) == (4, 3)
    assert (rows["query", "tenant"].remaining, rows["query", "tenant"].used) == (7, 3)
    assert rows["query", "key"].full_in_seconds == 45
    assert ("mcp", "key") not in rows  # 0: no per-key limit on /mcp here
    assert rows["ingest_bytes", "tenant"].window_seconds == 86_400
    assert {u.applies_to for u in lim.usage(GLOBEX).limits} == {"tenant"}
