"""Builds the ingestion service with its real adapters, once per process (per Lambda container)."""

from __future__ import annotations

from functools import cache

from docket.config import get_settings
from docket.ingest.service import IngestService
from docket.store.dynamodb import DynamoChunkStore, DynamoDocumentStore
from docket.store.s3 import S3BlobStore, SqsDeadLetterSink


@cache
def get_ingest_service() -> IngestService:
    from docket.cache.service import get_answer_cache
    from docket.generations.live import write_targets

    settings = get_settings()
    cache = get_answer_cache(settings)
    return IngestService(
        settings,
        documents=DynamoDocumentStore(settings.documents_table),
        chunks=DynamoChunkStore(settings.chunks_table),
        blobs=S3BlobStore(),
        dead_letters=SqsDeadLetterSink(settings.ingest_dlq_url or ""),
        targets=(lambda: write_targets(settings)) if settings.generations_table else None,
        evict=cache.evict if cache is not None else None,
    )
