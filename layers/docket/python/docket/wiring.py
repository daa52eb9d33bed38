"""The resources and their wiring, declared once.

The local cloud builds exactly this in moto; the CDK app (infra/) builds the same on AWS, and
tests/infra checks that the two do not drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index (string keys, all attributes projected)."""

    name: str
    partition_key: str
    sort_key: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    partition_key: str
    sort_key: str | None = None
    stream: bool = True  # NEW_AND_OLD_IMAGES
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int = 360
    dead_letter_queue: str | None = None
    max_receive_count: int = 3


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    code_dir: str  # functions/<code_dir>/handler.py
    handler: str = "handler.handler"
    memory_mb: int = 1024
    timeout_s: int = 60
    reserved_concurrency: int | None = None
    local_containers: int = 1  # concurrent in-process instances in the local cloud


@dataclass(frozen=True)
class EventSourceSpec:
    function: str
    kind: Literal["sqs", "dynamodb_stream"]
    source: str  # queue name or table name
    batch_size: int
    max_batching_window_s: float = 0.0
    max_retry_attempts: int = 3  # streams only; SQS uses the queue's redrive policy
    bisect_on_error: bool = True  # streams only
    on_failure_queue: str | None = None  # streams only
    report_batch_item_failures: bool = True


@dataclass(frozen=True)
class BucketNotificationSpec:
    bucket: str
    queue: str
    prefix: str
    events: tuple[str, ...] = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@dataclass(frozen=True)
class StateMachineSpec:
    name: str
    definition: str  # a file in state_machines/
    # ${Placeholder} → the function whose ARN fills it
    functions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Wiring:
    buckets: tuple[str, ...]
    tables: tuple[TableSpec, ...]
    queues: tuple[QueueSpec, ...]
    functions: tuple[FunctionSpec, ...]
    event_sources: tuple[EventSourceSpec, ...]
    notifications: tuple[BucketNotificationSpec, ...]
    state_machines: tuple[StateMachineSpec, ...] = ()
    api_function: str = "docket-api"
    mcp_function: str = "docket-mcp"  # the /mcp route (docket.api.mcp_server)
    # verifies the bearer token (a JWT or an API key) of every route that needs one
    authorizer_function: str = "docket-authorizer"
    extra: dict[str, str] = field(default_factory=dict)

    def function(self, name: str) -> FunctionSpec:
        return next(f for f in self.functions if f.name == name)


DOCUMENTS_BUCKET = "docket-documents"
TEXT_BUCKET = "docket-text"
DOCUMENTS_TABLE = "docket-documents"
CHUNKS_TABLE = "docket-chunks"
INGEST_QUEUE = "docket-ingest"
INGEST_DLQ = "docket-ingest-dlq"
PIPELINE_DLQ = "docket-pipeline-dlq"
AGENT_BUCKET = "docket-agent"
AGENT_TABLE = "docket-agent"
IDEMPOTENCY_TABLE = "docket-idempotency"
AGENT_STATE_MACHINE = "docket-agent-loop"
GENERATIONS_TABLE = "docket-generations"
REEMBED_STATE_MACHINE = "docket-reembed"
KEYS_TABLE = "docket-keys"
LIMITS_TABLE = "docket-limits"
TICKETS_TABLE = "docket-tickets"
SYNC_TABLE = "docket-sync"
ANSWER_CACHE_TABLE = "docket-answer-cache"
SYNC_BACKFILL_STATE_MACHINE = "docket-sync-backfill"
# the example source table (a service desk's tickets) and how it is synced (docket.sync.config):
# resolved tickets only, the title as the heading, the body and the resolution as the text
TICKETS_SOURCE = {
    "name": "tickets",
    "table": TICKETS_TABLE,
    "key": "id",
    "title": "title",
    "text": ["body", "resolution"],
    "tenant": "tenant",
    "acl": "acl_groups",
    "version": "version",
    "updated_at": "updated_at",
    "filter": {"status": "resolved"},
}


WIRING = Wiring(
    buckets=(DOCUMENTS_BUCKET, TEXT_BUCKET, AGENT_BUCKET),
    tables=(
        TableSpec(DOCUMENTS_TABLE, partition_key="tenant", sort_key="document_id"),
        TableSpec(CHUNKS_TABLE, partition_key="pk", sort_key="chunk_id"),
        # tasks, timelines, approvals, budgets and the outbox (docket.agent.models)
        TableSpec(
            AGENT_TABLE,
            partition_key="pk",
            sort_key="sk",
            stream=False,
            indexes=(IndexSpec("gsi1", "gsi1pk", "gsi1sk"),),
        ),
        # Powertools idempotency records of RunTool
        TableSpec(IDEMPOTENCY_TABLE, partition_key="id", stream=False, ttl_attribute="expiration"),
        # index generations: the live pointer and each generation's record (docket.generations)
        TableSpec(GENERATIONS_TABLE, partition_key="pk", stream=False),
        # API keys, hashed, and a tenant's keys by creation (docket.access.dynamodb)
        TableSpec(
            KEYS_TABLE,
            partition_key="key_id",
            stream=False,
            indexes=(IndexSpec("by_tenant", "tenant", "created_at"),),
        ),
        # rate-limit and quota token buckets, one item each
        TableSpec(LIMITS_TABLE, partition_key="pk", stream=False, ttl_attribute="expires_at"),
        # the example source table of change data capture (its stream feeds docket-sync), and
        # the state of each synced row (docket.sync)
        TableSpec(TICKETS_TABLE, partition_key="id", ttl_attribute="expires_at"),
        TableSpec(SYNC_TABLE, partition_key="pk", stream=False),
        # cached answers and, per chunk, the entries that depend on it (docket.cache.dynamodb)
        TableSpec(
            ANSWER_CACHE_TABLE,
            partition_key="pk",
            sort_key="sk",
            stream=False,
            ttl_attribute="expires_at",
        ),
    ),
    queues=(
        QueueSpec(INGEST_DLQ),
        QueueSpec(PIPELINE_DLQ),
        QueueSpec(INGEST_QUEUE, visibility_timeout=360, dead_letter_queue=INGEST_DLQ),
    ),
    functions=(
        FunctionSpec("docket-extract", "extract", memory_mb=2048, timeout_s=60),
        FunctionSpec("docket-chunk", "chunk", memory_mb=1024, timeout_s=60),
        FunctionSpec("docket-embed", "embed", memory_mb=2048, timeout_s=120),
        FunctionSpec("docket-api", "api", memory_mb=1024, timeout_s=29),
        FunctionSpec("docket-mcp", "mcp", memory_mb=1024, timeout_s=29),
        FunctionSpec("docket-authorizer", "authorizer", memory_mb=512, timeout_s=10),
        FunctionSpec("docket-sync", "sync", memory_mb=512, timeout_s=120),
        FunctionSpec("docket-agent-model", "agent_model", memory_mb=1024, timeout_s=300),
        FunctionSpec("docket-agent-tool", "agent_tool", memory_mb=1024, timeout_s=900),
        FunctionSpec("docket-agent-approval", "agent_approval", memory_mb=512, timeout_s=30),
        FunctionSpec("docket-reembed", "reembed", memory_mb=3008, timeout_s=900),
    ),
    event_sources=(
        EventSourceSpec(
            "docket-extract", "sqs", INGEST_QUEUE, batch_size=10, max_batching_window_s=0.2
        ),
        EventSourceSpec(
            "docket-chunk",
            "dynamodb_stream",
            DOCUMENTS_TABLE,
            batch_size=25,
            max_batching_window_s=0.2,
            on_failure_queue=PIPELINE_DLQ,
        ),
        EventSourceSpec(
            "docket-embed",
            "dynamodb_stream",
            CHUNKS_TABLE,
            batch_size=64,
            max_batching_window_s=0.5,
            on_failure_queue=PIPELINE_DLQ,
        ),
        EventSourceSpec(
            "docket-sync",
            "dynamodb_stream",
            TICKETS_TABLE,
            batch_size=25,
            max_batching_window_s=0.2,
            on_failure_queue=PIPELINE_DLQ,
        ),
    ),
    notifications=(BucketNotificationSpec(DOCUMENTS_BUCKET, INGEST_QUEUE, prefix="tenants/"),),
    state_machines=(
        StateMachineSpec(
            AGENT_STATE_MACHINE,
            "agent_loop.asl.json",
            functions={
                "AgentModelFunctionArn": "docket-agent-model",
                "AgentToolFunctionArn": "docket-agent-tool",
                "AgentApprovalFunctionArn": "docket-agent-approval",
            },
        ),
        StateMachineSpec(
            REEMBED_STATE_MACHINE,
            "reembed.asl.json",
            functions={"ReembedFunctionArn": "docket-reembed"},
        ),
        StateMachineSpec(
            SYNC_BACKFILL_STATE_MACHINE,
            "sync_backfill.asl.json",
            functions={"SyncFunctionArn": "docket-sync"},
        ),
    ),
)
