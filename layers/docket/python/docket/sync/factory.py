"""The sync service with its real adapters, once per process."""

from __future__ import annotations

from functools import cache

from docket.config import get_settings
from docket.store.dynamodb import DynamoDocumentStore
from docket.store.s3 import S3BlobStore, SqsDeadLetterSink
from docket.sync.dynamodb import DynamoSourceTable, DynamoSyncState
from docket.sync.service import SyncService


@cache
def get_sync_service() -> SyncService:
    settings = get_settings()
    return SyncService(
        settings,
        settings.sync_sources,
        table=DynamoSourceTable(),
        state=DynamoSyncState(settings.sync_table),
        documents=DynamoDocumentStore(settings.documents_table),
        blobs=S3BlobStore(),
        dead_letters=SqsDeadLetterSink(settings.ingest_dlq_url or ""),
    )
