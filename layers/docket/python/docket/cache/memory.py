"""The cache in a dictionary: tests, one-process tools."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from docket.cache.port import CacheEntry


class MemoryCacheStore:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], CacheEntry] = {}
        self._links: dict[tuple[str, str], set[tuple[str, str]]] = {}  # (tenant, chunk) → keys
        self._lock = threading.Lock()

    def get(self, partition: str, entry_id: str) -> CacheEntry | None:
        return self._entries.get((partition, entry_id))

    def candidates(self, partition: str, limit: int) -> Sequence[CacheEntry]:
        found = [e for (p, _), e in self._entries.items() if p == partition]
        return sorted(found, key=lambda e: -e.created_at)[:limit]

    def put(self, entry: CacheEntry) -> None:
        key = (entry.partition, entry.entry_id)
        with self._lock:
            self._entries[key] = entry
            for chunk_id in entry.chunk_ids:
                self._links.setdefault((entry.tenant, chunk_id), set()).add(key)

    def evict(self, tenant: str, chunk_ids: Iterable[str]) -> int:
        evicted = 0
        with self._lock:
            for chunk_id in chunk_ids:
                for key in self._links.pop((tenant, chunk_id), set()):
                    evicted += self._entries.pop(key, None) is not None
        return evicted
