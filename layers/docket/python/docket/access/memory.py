"""In-process adapters: keys and buckets in dictionaries (unit tests, one-process tools). Not
shared between processes: a deployment keeps both in DynamoDB (docket.access.dynamodb)."""

from __future__ import annotations

import threading
from datetime import datetime

from docket.access.keys import ApiKey
from docket.access.limits import Bucket, Take, wait_for


class MemoryKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[ApiKey, str]] = {}
        self._lock = threading.Lock()

    def put(self, key: ApiKey, digest: str) -> None:
        with self._lock:
            self._keys[key.key_id] = (key, digest)

    def get(self, key_id: str) -> tuple[ApiKey, str] | None:
        return self._keys.get(key_id)

    def list(self, tenant: str) -> list[ApiKey]:
        keys = [k for k, _ in self._keys.values() if k.tenant == tenant]
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        with self._lock:
            found = self._keys.get(key_id)
            if found is None or found[0].tenant != tenant:
                return None
            key, digest = found
            if key.revoked_at is None:
                key = key.model_copy(update={"revoked_at": at})
                self._keys[key_id] = (key, digest)
            return key


class MemoryBuckets:
    def __init__(self) -> None:
        self._levels: dict[str, tuple[float, float]] = {}  # id → (tokens, at)
        self._lock = threading.Lock()

    def _current(self, bucket: Bucket, now: float) -> float:
        tokens, at = self._levels.get(bucket.id, (bucket.capacity, now))
        return bucket.refill(tokens, at, now)

    def take(self, bucket: Bucket, cost: float, now: float) -> Take:
        with self._lock:
            tokens = self._current(bucket, now)
            if tokens < cost:
                return Take(False, tokens, wait_for(bucket, tokens, cost))
            self._levels[bucket.id] = (tokens - cost, now)
            return Take(True, tokens - cost, 0.0)

    def level(self, bucket: Bucket, now: float) -> float:
        with self._lock:
            return self._current(bucket, now)
