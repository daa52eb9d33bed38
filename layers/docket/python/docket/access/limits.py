"""Rate limits and quotas: a token bucket per tenant and per API key, for each limited thing.

A bucket holds up to ``capacity`` tokens and refills continuously at ``capacity / window``; a
request takes ``cost`` tokens (1 for a call, the declared size for an upload) or is refused with
how long until it could pass (``Retry-After``). Requests per minute on POST /query and on /mcp
have a bucket per tenant and one per key; uploaded bytes per day, one per tenant (and per key when
configured). A refused request takes nothing. An API key's bucket is taken from first, so a key
that floods spends its own budget, not its tenant's other callers'.

The buckets live behind ``BucketStore``: DynamoDB on AWS and in the local cloud (one item per
bucket, each take an atomic conditional update, so every Lambda instance shares them), or a
dictionary for tests and one-process tools.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from docket.config import Settings
from docket.errors import FileTooLarge, RateLimited
from docket.models import Principal

Kind = Literal["query", "mcp", "ingest_bytes"]
MINUTE, DAY = 60.0, 86_400.0


@dataclass(frozen=True)
class Bucket:
    kind: Kind
    owner: str  # "tenant:{tenant}" or "key:{key_id}"
    capacity: float
    window_s: float  # refills from empty to full in this time

    @property
    def id(self) -> str:
        return f"{self.owner}#{self.kind}"

    @property
    def per_second(self) -> float:
        return self.capacity / self.window_s

    def refill(self, tokens: float, since: float, now: float) -> float:
        return min(self.capacity, tokens + max(0.0, now - since) * self.per_second)


@dataclass(frozen=True)
class Take:
    allowed: bool
    remaining: float  # tokens left after the take (or, refused, before it)
    retry_after: float  # seconds until ``cost`` tokens are there (0 when allowed)


def wait_for(bucket: Bucket, tokens: float, cost: float) -> float:
    return max(0.0, (cost - tokens) / bucket.per_second)


class BucketStore(Protocol):
    def take(self, bucket: Bucket, cost: float, now: float) -> Take:
        """Atomically: refill the bucket to ``now``, then take ``cost`` if it holds that much."""
        ...

    def level(self, bucket: Bucket, now: float) -> float:
        """The tokens the bucket holds at ``now`` (full when never used)."""
        ...


class BucketUsage(BaseModel):
    kind: Kind
    applies_to: Literal["tenant", "key"]
    limit: int  # per window
    window_seconds: int
    remaining: int
    used: int  # in the last window, as the bucket counts it (limit - remaining)
    full_in_seconds: int


class Usage(BaseModel):
    tenant: str
    key_id: str | None = None
    limits: list[BucketUsage]


class Limiter:
    def __init__(
        self, settings: Settings, store: BucketStore, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock

    def buckets(self, caller: Principal, kind: Kind) -> list[Bucket]:
        """The caller's buckets for ``kind``: the key's (if a key) first, then the tenant's."""
        s = self.settings
        tenant_limit, key_limit, window = {
            "query": (s.query_rpm, s.key_query_rpm, MINUTE),
            "mcp": (s.mcp_rpm, s.key_mcp_rpm, MINUTE),
            "ingest_bytes": (s.ingest_bytes_per_day, s.key_ingest_bytes_per_day, DAY),
        }[kind]
        out = []
        if caller.key_id is not None and key_limit > 0:
            out.append(Bucket(kind, f"key:{caller.key_id}", float(key_limit), window))
        if tenant_limit > 0:
            out.append(Bucket(kind, f"tenant:{caller.tenant}", float(tenant_limit), window))
        return out

    def charge(self, caller: Principal, kind: Kind, cost: float = 1.0) -> None:
        """Take ``cost`` from each of the caller's buckets; RateLimited (429) at the first that
        cannot give it, FileTooLarge when no bucket could ever hold it."""
        now = self.clock()
        for bucket in self.buckets(caller, kind):
            if cost > bucket.capacity:
                raise FileTooLarge(
                    f"{int(cost)} bytes is over the {_who(bucket)} daily upload quota of "
                    f"{int(bucket.capacity)} bytes"
                )
            took = self.store.take(bucket, cost, now)
            if not took.allowed:
                raise RateLimited(
                    f"over the {_who(bucket)} limit of {_describe(bucket)}; "
                    f"retry in {math.ceil(took.retry_after)} s",
                    retry_after=max(1, math.ceil(took.retry_after)),
                )

    def usage(self, caller: Principal) -> Usage:
        now = self.clock()
        limits = []
        for kind in ("query", "mcp", "ingest_bytes"):
            for bucket in self.buckets(caller, kind):  # type: ignore[arg-type]
                level = self.store.level(bucket, now)
                limits.append(
                    BucketUsage(
                        kind=bucket.kind,
                        applies_to="key" if bucket.owner.startswith("key:") else "tenant",
                        limit=int(bucket.capacity),
                        window_seconds=int(bucket.window_s),
                        remaining=max(0, math.floor(level)),
                        used=max(0, math.ceil(bucket.capacity - level)),
                        full_in_seconds=math.ceil(wait_for(bucket, level, bucket.capacity)),
                    )
                )
        return Usage(tenant=caller.tenant, key_id=caller.key_id, limits=limits)


def _who(bucket: Bucket) -> str:
    return "API key's" if bucket.owner.startswith("key:") else "tenant's"


def _describe(bucket: Bucket) -> str:
    if bucket.kind == "ingest_bytes":
        return f"{int(bucket.capacity)} uploaded bytes per day"
    return f"{int(bucket.capacity)} {bucket.kind} requests per minute"
