"""Access: what each function's role may do, function by function.

Every statement names the resources that function touches and nothing else; a statement whose
resource must hold a wildcard (objects under a prefix, executions of one state machine) carries
the reason, which infra.constructs.nag turns into the cdk-nag acknowledgment.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as ddb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs

from constructs import Construct
from infra import constants as c
from infra.constructs.nag import allow
from infra.settings import DeploymentSettings

TABLE_READ = [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
]
TABLE_WRITE = [
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
]
SEARCH_READ = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"]
SEARCH_WRITE = [*SEARCH_READ, "es:ESHttpPut", "es:ESHttpDelete", "es:ESHttpPatch"]
OBJECTS_REASON = "Objects are addressed by key under this bucket (tenants/{tenant}/...): object ARNs need a key pattern."
MODELS_REASON = (
    "The model behind each task (qa, agent, contextualise, embeddings) is chosen at run time by "
    "the routing settings; the grant covers foundation models and inference profiles only."
)


@dataclass(frozen=True)
class Resources:
    """What the roles are granted on."""

    buckets: dict[str, s3.Bucket]
    tables: dict[str, ddb.Table]
    queues: dict[str, sqs.Queue]
    domain_arn: str
    state_machine_arn: str
    reembed_state_machine_arn: str
    sync_backfill_state_machine_arn: str
    reembed_job_role: iam.IRole
    sender_identity_arn: str
    provider_secret: secretsmanager.ISecret


class Access(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        roles: dict[str, iam.IRole],
        resources: Resources,
        settings: DeploymentSettings,
    ) -> None:
        super().__init__(scope, id)
        self.r = resources
        self.settings = settings
        stack = Stack.of(self)
        self.models = [
            # cross-region inference profiles (us.*, global.*) route to models in other regions
            stack.format_arn(
                service="bedrock", region="*", account="", resource="foundation-model/*"
            ),
            stack.format_arn(service="bedrock", resource="inference-profile/*"),
        ]
        grants = {
            "docket-extract": self._extract,
            "docket-chunk": self._chunk,
            "docket-embed": self._embed,
            "docket-api": self._api,
            "docket-mcp": self._mcp,
            "docket-authorizer": self._authorizer,
            "docket-sync": self._sync,
            "docket-agent-model": self._agent_model,
            "docket-agent-tool": self._agent_tool,
            "docket-agent-approval": self._agent_approval,
            "docket-reembed": self._reembed,
        }
        missing = set(roles) ^ set(grants)
        if missing:
            raise ValueError(
                f"functions without a grant list (or grants without a function): {missing}"
            )
        for name, grant in grants.items():
            grant(roles[name])

    # --- building blocks --------------------------------------------------------------------

    def _table(
        self, role: iam.IRole, sid: str, name: str, *, write: bool, indexes: bool = False
    ) -> None:
        table = self.r.tables[name]
        resources = [table.table_arn]
        if indexes:
            spec = next(t for t in c.WIRING.tables if t.name == name)
            resources += [f"{table.table_arn}/index/{i.name}" for i in spec.indexes]
        allow(role, sid, TABLE_READ + (TABLE_WRITE if write else []), resources)

    def _answer_cache(self, role: iam.IRole, *, lookup: bool) -> None:
        """The answer cache: the query path reads and stores entries (``lookup``), the embed step
        evicts the ones that depend on changed chunks (docket.cache.dynamodb)."""
        table = self.r.tables[c.ANSWER_CACHE_TABLE].table_arn
        if lookup:
            actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem"]
            actions.append("dynamodb:BatchWriteItem")  # an entry's links, one per chunk
        else:
            actions = ["dynamodb:Query", "dynamodb:DeleteItem"]
        allow(role, "AnswerCache", actions, [table])

    def _buckets(self, role: iam.IRole) -> None:
        """Rate-limit buckets: read one, update it on a condition (docket.access.dynamodb)."""
        table = self.r.tables[c.LIMITS_TABLE]
        allow(role, "RateLimits", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [table.table_arn])

    def _objects(
        self, role: iam.IRole, sid: str, bucket: str, actions: list[str], prefix: str = "*"
    ) -> None:
        allow(
            role,
            sid,
            actions,
            [self.r.buckets[bucket].arn_for_objects(prefix)],
            reason=OBJECTS_REASON,
        )

    def _list(self, role: iam.IRole, sid: str, bucket: str, prefix: str) -> None:
        """ListBucket under a prefix: a missing object then reads as 404, not 403."""
        allow(
            role,
            sid,
            ["s3:ListBucket"],
            [self.r.buckets[bucket].bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix]}},
        )

    def _models(self, role: iam.IRole) -> None:
        allow(
            role,
            "InvokeModels",
            ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
            self.models,
            reason=MODELS_REASON,
        )
        allow(
            role,
            "ReadProviderKeys",
            ["secretsmanager:GetSecretValue"],
            [self.r.provider_secret.secret_arn],
        )

    def _search(self, role: iam.IRole, *, write: bool) -> None:
        allow(
            role,
            "WriteSearchIndex" if write else "QuerySearchIndex",
            SEARCH_WRITE if write else SEARCH_READ,
            [self.r.domain_arn, f"{self.r.domain_arn}/*"],
            reason="OpenSearch HTTP paths (indexes, aliases, _bulk, _search) are sub-resources "
            "of this one domain; fine-grained access control limits them to chunks* indexes.",
        )

    def _start_and_follow(
        self, role: iam.IRole, sid: str, arn: str, named: str, start_sid: str | None = None
    ) -> None:
        """Start executions of one state machine and describe them (``named``: how they are
        named, the reason their grant is an ARN pattern)."""
        allow(role, start_sid or sid, ["states:StartExecution"], [arn])
        allow(
            role,
            f"{sid}Executions",
            ["states:DescribeExecution"],
            [arn.replace(":stateMachine:", ":execution:") + ":*"],
            reason=f"{named} at run time; the ARN pattern is this one state machine's executions.",
        )

    def _send_email(self, role: iam.IRole) -> None:
        allow(role, "SendEmailAsSender", ["ses:SendRawEmail"], [self.r.sender_identity_arn])

    # --- per function -----------------------------------------------------------------------

    def _extract(self, role: iam.IRole) -> None:
        self._objects(role, "ReadUploads", c.DOCUMENTS_BUCKET, ["s3:GetObject"], "tenants/*")
        self._list(role, "ListUploads", c.DOCUMENTS_BUCKET, "tenants/*")
        self._objects(role, "WriteText", c.TEXT_BUCKET, ["s3:PutObject", "s3:DeleteObject"])
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=True)
        allow(role, "DeadLetters", ["sqs:SendMessage"], [self.r.queues[c.INGEST_DLQ].queue_arn])
        # the ingest queue's receive/delete grant comes with its event source (ingestion.py)

    def _chunk(self, role: iam.IRole) -> None:
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=True)
        self._table(role, "Chunks", c.CHUNKS_TABLE, write=True)
        self._objects(role, "ReadText", c.TEXT_BUCKET, ["s3:GetObject"])
        self._models(role)  # contextual chunks ("llm") call a chat model

    def _embed(self, role: iam.IRole) -> None:
        self._answer_cache(role, lookup=False)
        self._table(role, "Chunks", c.CHUNKS_TABLE, write=False)
        self._table(role, "Generations", c.GENERATIONS_TABLE, write=False)
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=True)
        self._search(role, write=True)
        self._models(role)

    def _uploads(self, role: iam.IRole) -> None:
        """Document records and their uploads: write, head (a missing object reads as 404),
        delete; for the API's presigned PUT the signature carries this role's permission."""
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=True)
        self._objects(
            role,
            "Uploads",
            c.DOCUMENTS_BUCKET,
            ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
            "tenants/*",
        )
        self._list(role, "ListUploads", c.DOCUMENTS_BUCKET, "tenants/*")

    def _api(self, role: iam.IRole) -> None:
        self._uploads(role)
        self._table(role, "Agent", c.AGENT_TABLE, write=True, indexes=True)
        self._objects(role, "AgentObjects", c.AGENT_BUCKET, ["s3:GetObject", "s3:PutObject"])
        self._list(role, "ListAgentObjects", c.AGENT_BUCKET, "*")
        self._search(role, write=False)
        self._models(role)
        self._table(role, "Generations", c.GENERATIONS_TABLE, write=True)
        self._table(role, "Keys", c.KEYS_TABLE, write=True, indexes=True)  # /keys
        self._buckets(role)  # rate limits, quotas, /usage
        self._answer_cache(role, lookup=True)
        self._sync_rows(role)  # docket sync verify repairs rows in the request
        self._start_and_follow(
            role,
            "SyncBackfill",
            self.r.sync_backfill_state_machine_arn,
            "Backfill executions are named per run",
        )
        self._start_and_follow(
            role,
            "Reembed",
            self.r.reembed_state_machine_arn,
            "Rebuild executions are named per generation",
            start_sid="ReembedStateMachine",
        )
        sm = self.r.state_machine_arn
        executions = sm.replace(":stateMachine:", ":execution:") + ":*"
        allow(role, "AgentStateMachine", ["states:StartExecution"], [sm])
        # a decision resumes an agent task, or a rebuild waiting for its cutover's approval
        allow(
            role,
            "SendDecisions",
            ["states:SendTaskSuccess", "states:SendTaskFailure"],
            [sm, self.r.reembed_state_machine_arn],
        )
        allow(
            role,
            "AgentExecutions",
            ["states:DescribeExecution", "states:StopExecution"],
            [executions],
            reason="Executions of the agent state machine are named per task at run time; the "
            "ARN pattern is this one state machine's executions.",
        )

    def _reembed(self, role: iam.IRole) -> None:
        """The rebuild's steps: scan the chunks, write the shards, start the transform job,
        load the new generation, move the live pointer, answer the waiting task token."""
        self._table(role, "Chunks", c.CHUNKS_TABLE, write=False)
        # the snapshot and the gate read every tenant's chunks: a parallel Scan
        allow(role, "ScanChunks", ["dynamodb:Scan"], [self.r.tables[c.CHUNKS_TABLE].table_arn])
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=False)
        self._table(role, "Generations", c.GENERATIONS_TABLE, write=True)
        self._objects(
            role, "ReembedShards", c.TEXT_BUCKET, ["s3:GetObject", "s3:PutObject"], "reembed/*"
        )
        self._list(role, "ListReembedShards", c.TEXT_BUCKET, "reembed/*")
        self._search(role, write=True)
        self._models(role)  # hosted generations and the gate's queries embed through providers
        # the optional Approve step: the agent's approvals (records, e-mailed links)
        self._table(role, "Agent", c.AGENT_TABLE, write=True, indexes=True)
        self._send_email(role)
        stack = Stack.of(self)
        allow(
            role,
            "TransformJobs",
            ["sagemaker:CreateModel", "sagemaker:CreateTransformJob"],
            [
                stack.format_arn(service="sagemaker", resource="model/docket-reembed-*"),
                stack.format_arn(service="sagemaker", resource="transform-job/docket-reembed-*"),
            ],
            reason="Jobs and their models are named per generation at run time "
            "(docket-reembed-g{n}-{time}).",
        )
        allow(
            role,
            "PassJobRole",
            ["iam:PassRole"],
            [self.r.reembed_job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        )
        allow(
            role,
            "ResumeRebuild",
            ["states:SendTaskSuccess", "states:SendTaskFailure"],
            [self.r.reembed_state_machine_arn],
        )

    def _agent_model(self, role: iam.IRole) -> None:
        self._table(role, "Agent", c.AGENT_TABLE, write=True, indexes=True)
        self._objects(role, "AgentObjects", c.AGENT_BUCKET, ["s3:GetObject", "s3:PutObject"])
        self._list(role, "ListAgentObjects", c.AGENT_BUCKET, "*")
        self._models(role)

    def _mcp(self, role: iam.IRole) -> None:
        # the MCP server reads what the query and document routes read, and writes nothing
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=False)
        self._table(role, "Chunks", c.CHUNKS_TABLE, write=False)  # get_document's text
        self._table(role, "Generations", c.GENERATIONS_TABLE, write=False)
        self._buckets(role)  # its rate limit
        self._answer_cache(role, lookup=True)  # its ask tool answers through the cache
        self._search(role, write=False)
        self._models(role)

    def _sync_rows(self, role: iam.IRole) -> None:
        """What syncing a source row takes besides its document (``_uploads``): read the row
        (and scan the table), record its state, dead-letter what cannot be taken."""
        tickets = self.r.tables[c.TICKETS_TABLE].table_arn
        allow(role, "ReadSourceRows", ["dynamodb:GetItem", "dynamodb:Scan"], [tickets])
        self._table(role, "SyncState", c.SYNC_TABLE, write=True)
        allow(role, "DeadLetters", ["sqs:SendMessage"], [self.r.queues[c.INGEST_DLQ].queue_arn])

    def _sync(self, role: iam.IRole) -> None:
        # the stream's read grant comes with its event source (ingestion.py)
        self._uploads(role)
        self._sync_rows(role)
        # the backfill exports the table to S3 (point-in-time recovery) and reads the files
        tickets = self.r.tables[c.TICKETS_TABLE].table_arn
        allow(
            role,
            "ExportSourceTable",
            ["dynamodb:DescribeTable", "dynamodb:ExportTableToPointInTime"],
            [tickets],
        )
        allow(
            role,
            "DescribeExports",
            ["dynamodb:DescribeExport"],
            [f"{tickets}/export/*"],
            reason="Exports are named by DynamoDB when they start; the ARN pattern is this one "
            "table's exports.",
        )
        self._objects(
            role,
            "ExportFiles",
            c.TEXT_BUCKET,
            ["s3:PutObject", "s3:PutObjectAcl", "s3:AbortMultipartUpload", "s3:GetObject"],
            "sync-exports/*",
        )

    def _authorizer(self, role: iam.IRole) -> None:
        # it reads keys (never writes them); JWTs are checked against the provider's public keys
        self._table(role, "Keys", c.KEYS_TABLE, write=False)

    def _agent_tool(self, role: iam.IRole) -> None:
        # its search tool asks the query path, which reads the live generation
        self._table(role, "Generations", c.GENERATIONS_TABLE, write=False)
        self._table(role, "Agent", c.AGENT_TABLE, write=True, indexes=True)
        self._objects(role, "AgentObjects", c.AGENT_BUCKET, ["s3:GetObject", "s3:PutObject"])
        self._list(role, "ListAgentObjects", c.AGENT_BUCKET, "*")
        self._table(role, "Idempotency", c.IDEMPOTENCY_TABLE, write=True)
        # the documents tools: read text, delete a document (marks it, removes the upload)
        self._table(role, "Documents", c.DOCUMENTS_TABLE, write=True)
        self._objects(
            role, "Uploads", c.DOCUMENTS_BUCKET, ["s3:GetObject", "s3:DeleteObject"], "tenants/*"
        )
        self._list(role, "ListUploads", c.DOCUMENTS_BUCKET, "tenants/*")
        self._objects(role, "ReadText", c.TEXT_BUCKET, ["s3:GetObject"])
        self._search(role, write=False)
        self._models(role)  # the search tool embeds its query
        self._send_email(role)
        if self.settings.query_tables:
            stack = Stack.of(self)
            allow(
                role,
                "QueryAllowedTables",
                ["dynamodb:PartiQLSelect"],
                [
                    stack.format_arn(service="dynamodb", resource="table", resource_name=t)
                    for t in self.settings.query_tables
                ],
            )

    def _agent_approval(self, role: iam.IRole) -> None:
        # the sweeper sends decisions that were recorded but never delivered
        allow(
            role,
            "SweepDecisions",
            ["states:SendTaskSuccess", "states:SendTaskFailure"],
            [self.r.state_machine_arn, self.r.reembed_state_machine_arn],
        )
        self._table(role, "Agent", c.AGENT_TABLE, write=True, indexes=True)
        self._objects(role, "AgentObjects", c.AGENT_BUCKET, ["s3:GetObject"])
        self._send_email(role)
