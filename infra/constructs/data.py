"""Data: the S3 buckets, DynamoDB tables and SQS queues of WIRING, and the bucket notification.

Encryption choices: buckets use S3-managed keys (SSE-S3) and queues SQS-managed keys (SSE-SQS).
A customer-managed KMS key would add a key policy every cross-stack grant must edit, a KMS call
per object and per message, and S3 event notifications cannot publish to a queue encrypted with
the AWS-managed aws/sqs key; SSE-S3/SSE-SQS encrypt at rest with no such coupling. Tables use the
AWS-managed DynamoDB key (aws/dynamodb), which shows in CloudTrail without a key to administer.
"""

from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from infra import constants as c
from infra.constructs.nag import acknowledge, tag_wiring
from infra.settings import DeploymentSettings

# buckets whose objects people upload or the agent keeps: versioned against overwrite and delete
VERSIONED_BUCKETS = frozenset({c.DOCUMENTS_BUCKET, c.AGENT_BUCKET})
NONCURRENT_VERSION_DAYS = 30
ACCESS_LOG_DAYS = 90


class DataStore(Construct):
    """Buckets, tables and queues declared in WIRING, plus a bucket for S3 server access logs."""

    def __init__(
        self, scope: Construct, id: str, *, settings: DeploymentSettings, wiring: c.Wiring
    ) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if settings.retain_data else RemovalPolicy.DESTROY
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(ACCESS_LOG_DAYS))],
            removal_policy=removal,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server access log bucket itself; logging it into itself would loop.",
        )
        self.buckets: dict[str, s3.Bucket] = {}
        for name in wiring.buckets:
            versioned = name in VERSIONED_BUCKETS
            bucket = s3.Bucket(
                self,
                _construct_id(name, "Bucket"),
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=versioned,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                server_access_logs_bucket=self.access_logs,
                server_access_logs_prefix=f"{name}/",
                lifecycle_rules=[
                    s3.LifecycleRule(
                        noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
                removal_policy=removal,
            )
            tag_wiring(bucket, name)
            self.buckets[name] = bucket

        self.tables: dict[str, ddb.Table] = {}
        for spec in wiring.tables:
            table = ddb.Table(
                self,
                _construct_id(spec.name, "Table"),
                table_name=c.physical_name(spec.name, settings.stage),
                partition_key=ddb.Attribute(name=spec.partition_key, type=ddb.AttributeType.STRING),
                sort_key=(
                    ddb.Attribute(name=spec.sort_key, type=ddb.AttributeType.STRING)
                    if spec.sort_key
                    else None
                ),
                billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
                encryption=ddb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                stream=ddb.StreamViewType.NEW_AND_OLD_IMAGES if spec.stream else None,
                time_to_live_attribute=spec.ttl_attribute,
                removal_policy=removal,
            )
            for index in spec.indexes:
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=ddb.Attribute(
                        name=index.partition_key, type=ddb.AttributeType.STRING
                    ),
                    sort_key=ddb.Attribute(name=index.sort_key, type=ddb.AttributeType.STRING),
                    projection_type=ddb.ProjectionType.ALL,
                )
            tag_wiring(table, spec.name)
            self.tables[spec.name] = table

        self.queues: dict[str, sqs.Queue] = {}
        for q in sorted(wiring.queues, key=lambda q: q.dead_letter_queue is not None):
            dlq = (
                sqs.DeadLetterQueue(
                    queue=self.queues[q.dead_letter_queue], max_receive_count=q.max_receive_count
                )
                if q.dead_letter_queue
                else None
            )
            queue = sqs.Queue(
                self,
                _construct_id(q.name, "Queue"),
                queue_name=c.physical_name(q.name, settings.stage),
                visibility_timeout=Duration.seconds(q.visibility_timeout),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                dead_letter_queue=dlq,
                retention_period=Duration.days(14) if dlq is None else Duration.days(4),
            )
            if dlq is None:
                acknowledge(
                    queue,
                    "AwsSolutions-SQS3",
                    "This queue is itself a dead-letter queue (WIRING); its depth is alarmed on.",
                )
            tag_wiring(queue, q.name)
            self.queues[q.name] = queue

        for n in wiring.notifications:
            destination = s3n.SqsDestination(self.queues[n.queue])
            for event in n.events:
                self.buckets[n.bucket].add_event_notification(
                    _event_type(event), destination, s3.NotificationKeyFilter(prefix=n.prefix)
                )


def _construct_id(name: str, kind: str) -> str:
    """docket-ingest-dlq + Queue -> IngestDlqQueue (stable logical ids)."""
    parts = name.removeprefix(f"{c.SERVICE}-").split("-")
    return "".join(p.capitalize() for p in parts) + kind


def _event_type(event: str) -> s3.EventType:
    """s3:ObjectCreated:* -> EventType.OBJECT_CREATED; s3:ObjectCreated:Put -> OBJECT_CREATED_PUT."""
    parts = [p for p in event.removeprefix("s3:").split(":") if p != "*"]
    name = "_".join(re.sub(r"(?<!^)(?=[A-Z])", "_", p).upper() for p in parts)
    try:
        return s3.EventType[name]
    except KeyError:
        raise ValueError(f"unknown S3 event {event!r}") from None
