"""Extract: S3 ObjectCreated/ObjectRemoved notifications (via SQS) → Documents table.

Reads the uploaded object, extracts and cleans its text, stores it, and upserts the document.
Bad files end as status ``failed`` with a typed reason and a dead-letter message; the rest of the
batch goes on (per-record failures reported through Powertools' batch utility).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.ingest.events import S3Notification, S3NotificationInSqs
from docket.ingest.factory import get_ingest_service
from docket.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.SQS, model=S3NotificationInSqs)


@tracer.capture_method
def record_handler(record: S3NotificationInSqs) -> None:
    if not isinstance(record.body, S3Notification):
        return  # s3:TestEvent
    service = get_ingest_service()
    for s3 in record.body.Records:
        key = unquote_plus(s3.s3.object.key)  # notifications URL-encode keys
        if s3.eventName.startswith("ObjectRemoved"):
            service.on_object_removed(key)
        else:
            outcome = service.on_object_created(s3.s3.bucket.name, key)
            metrics.add_metric(name=f"Documents_{outcome}", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
