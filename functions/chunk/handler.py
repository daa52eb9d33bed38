"""Chunk: Documents table stream → Chunks table.

A new content hash is chunked (chunk ids derive from content, so unchanged chunks keep their id and
are not written again); stale chunks are deleted; a removed or failed document loses its chunks.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.ingest.events import document_change
from docket.ingest.factory import get_ingest_service
from docket.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)


@tracer.capture_method
def record_handler(record: DynamoDBStreamRecordModel) -> None:
    event_name, old, new = document_change(record)
    get_ingest_service().on_document_change(event_name, old, new)  # type: ignore[arg-type]


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
