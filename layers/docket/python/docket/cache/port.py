"""The cache's storage port and its entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import BaseModel


class CacheEntry(BaseModel):
    partition: str  # "{tenant}#{hash of groups, generation, answerer, request options}"
    entry_id: str  # hash of the normalised question
    tenant: str
    question: str
    terms: list[str]  # the question's content terms, in order (the semantic guard's)
    vector: list[float]  # the question's embedding, unit length
    response: str  # the QueryResponse, as JSON
    chunk_ids: list[str]  # cited and retrieved: a change to any of them evicts the entry
    # their documents, each with the content hash it had indexed: checked again on every hit
    documents: dict[str, str] = {}
    created_at: float  # epoch seconds
    expires_at: float  # absolute: a hit does not extend it


class AnswerCacheStore(Protocol):
    def get(self, partition: str, entry_id: str) -> CacheEntry | None: ...

    def candidates(self, partition: str, limit: int) -> Sequence[CacheEntry]:
        """The partition's entries (at most ``limit``): the semantic tier's. Their ``response``
        and ``documents`` may be left empty: the matching one is read whole with ``get``."""
        ...

    def put(self, entry: CacheEntry) -> None:
        """Store the entry and, per chunk it depends on, the link that lets ``evict`` find it."""
        ...

    def evict(self, tenant: str, chunk_ids: Iterable[str]) -> int:
        """Remove every entry of ``tenant`` that depends on one of ``chunk_ids``; how many."""
        ...
