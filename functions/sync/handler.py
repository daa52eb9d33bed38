"""Sync: a source table's stream (NEW_AND_OLD_IMAGES) → documents, and the backfill's steps
(state_machines/sync_backfill.asl.json: {"action": "plan" | "page", ...}); docket.sync."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.observability import logger, metrics, tracer
from docket.sync.factory import get_sync_service
from docket.sync.jobs import run_action, stream_change

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)


@tracer.capture_method
def record_handler(record: DynamoDBStreamRecordModel) -> None:
    outcome = stream_change(get_sync_service(), record)
    metrics.add_metric(name=f"Sync_{outcome}", unit="Count", value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    return run_action(get_sync_service(), event)
