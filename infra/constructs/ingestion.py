"""Ingestion: the event sources of WIRING (SQS and DynamoDB streams) on their functions.

Batch sizes, windows, bisect on error, retries, on-failure queues and partial batch responses are
WIRING's; only the window rounds up to whole seconds (constants.batching_window_seconds).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from infra import constants as c


class Ingestion(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        wiring: c.Wiring,
        functions: dict[str, lambda_.Function],
        tables: dict[str, ddb.Table],
        queues: dict[str, sqs.Queue],
    ) -> None:
        super().__init__(scope, id)
        for es in wiring.event_sources:
            window = c.batching_window_seconds(es.max_batching_window_s)
            source: lambda_.IEventSource
            if es.kind == "sqs":
                source = sources.SqsEventSource(
                    queues[es.source],
                    batch_size=es.batch_size,
                    max_batching_window=Duration.seconds(window) if window else None,
                    report_batch_item_failures=es.report_batch_item_failures,
                )
            else:
                source = sources.DynamoEventSource(
                    tables[es.source],
                    starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                    batch_size=es.batch_size,
                    max_batching_window=Duration.seconds(window),
                    bisect_batch_on_error=es.bisect_on_error,
                    retry_attempts=es.max_retry_attempts,
                    on_failure=(
                        sources.SqsDlq(queues[es.on_failure_queue]) if es.on_failure_queue else None
                    ),
                    report_batch_item_failures=es.report_batch_item_failures,
                )
            functions[es.function].add_event_source(source)
