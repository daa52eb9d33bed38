"""Ports for everything the ingestion and query flows persist. Tests inject in-memory fakes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from docket.models import ChunkRecord, DocumentRecord


class DocumentStore(Protocol):
    def get(self, tenant: str, document_id: str) -> DocumentRecord | None: ...

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], DocumentRecord]:
        """The records of those (tenant, document_id) keys that exist, read consistently."""
        ...

    def put(self, doc: DocumentRecord) -> None: ...

    def update(
        self, tenant: str, document_id: str, *, expect_hash: str | None = None, **fields: Any
    ) -> bool:
        """Set fields; with ``expect_hash`` only if the stored content_hash still equals it."""
        ...

    def delete(self, tenant: str, document_id: str) -> None: ...

    def list(self, tenant: str) -> list[DocumentRecord]: ...


class ChunkStore(Protocol):
    def list_for_document(self, tenant: str, document_id: str) -> list[ChunkRecord]: ...

    def put_many(self, chunks: Sequence[ChunkRecord]) -> None: ...

    def delete_many(self, tenant: str, document_id: str, chunk_ids: Iterable[str]) -> None: ...

    def scan(self, segment: int, segments: int) -> Iterator[ChunkRecord]:
        """Segment ``segment`` of ``segments`` of a scan of every tenant's chunks (the segments
        together hold each chunk once): a rebuild's snapshot."""
        ...


class BlobStore(Protocol):
    def get(self, bucket: str, key: str) -> bytes: ...

    def put(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """{"size": int, "metadata": {...}, "content_type": str} or None when missing."""
        ...

    def delete(self, bucket: str, key: str) -> None: ...


class DeadLetterSink(Protocol):
    def send(self, payload: dict[str, Any], *, reason_code: str, reason: str) -> None: ...
