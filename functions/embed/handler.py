"""Embed: Chunks table stream → search index (k-NN vectors and BM25 text).

The whole batch is embedded in one call (the model is the cost); failures are then reported per
record through Powertools' batch utility so only the failed records are retried.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.ingest.events import chunk_change
from docket.ingest.factory import get_ingest_service
from docket.observability import logger, metrics, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams, model=DynamoDBStreamRecordModel)


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    changes = [chunk_change(DynamoDBStreamRecordModel.model_validate(r)) for r in event["Records"]]
    outcome = get_ingest_service().on_chunk_changes(changes)
    metrics.add_metric(name="ChunksEmbedded", unit=MetricUnit.Count, value=outcome.embedded)

    def record_handler(record: DynamoDBStreamRecordModel) -> None:
        failure = outcome.failures.get(record.dynamodb.SequenceNumber)
        if failure is not None:
            raise failure

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
