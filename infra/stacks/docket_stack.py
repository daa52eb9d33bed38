"""The docket stack: composes one construct per capability, in dependency order.

One stack is the deployable unit: the functions, the state machine and the search domain
reference one another's ARNs, and inside one stack those are plain GetAtt/Ref (no cross-stack
exports that lock resources in place); cdk-nag's acknowledgments can then name them too.
Stateful resources keep RemovalPolicy.RETAIN (``docket:retainData``) so a destroy keeps the data.
"""

from __future__ import annotations

import json

from aws_cdk import Aws, CfnOutput, Stack

from constructs import Construct
from infra import constants as c
from infra.constructs.access import Access, Resources
from infra.constructs.agent import Agent, state_machine_arn
from infra.constructs.api import Api
from infra.constructs.data import DataStore
from infra.constructs.functions import Functions
from infra.constructs.ingestion import Ingestion
from infra.constructs.nag import acknowledge
from infra.constructs.network import Network
from infra.constructs.observability import Observability
from infra.constructs.reembed import ReembedEvents, reembed_job_role
from infra.constructs.search import SearchDomain
from infra.constructs.search_access import SearchAccess
from infra.constructs.secrets import Secrets
from infra.settings import DeploymentSettings


class DocketStack(Stack):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        settings: DeploymentSettings,
        layer_asset: str,
        wiring: c.Wiring = c.WIRING,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, id, **kwargs)  # type: ignore[arg-type]
        stage = settings.stage
        data = DataStore(self, "Data", settings=settings, wiring=wiring)
        network = Network(self, "Network", settings=settings)
        search = SearchDomain(self, "Search", settings=settings, network=network)
        secrets = Secrets(self, "Secrets", stage=stage)
        machine_arn = state_machine_arn(self, c.physical_name(c.AGENT_STATE_MACHINE, stage))
        reembed_arn = state_machine_arn(self, c.physical_name(c.REEMBED_STATE_MACHINE, stage))
        backfill_arn = state_machine_arn(
            self, c.physical_name(c.SYNC_BACKFILL_STATE_MACHINE, stage)
        )
        job_role = reembed_job_role(
            self, data.buckets[c.TEXT_BUCKET], settings.reembed_job_model_data
        )

        functions = Functions(
            self,
            "Functions",
            wiring=wiring,
            stage=stage,
            layer_asset=layer_asset,
            environment=function_environment(
                settings,
                buckets={n: b.bucket_name for n, b in data.buckets.items()},
                tables={n: t.table_name for n, t in data.tables.items()},
                ingest_dlq_url=data.queues[c.INGEST_DLQ].queue_url,
                state_machine_arn=machine_arn,
                reembed_state_machine_arn=reembed_arn,
                sync_backfill_state_machine_arn=backfill_arn,
                reembed_job_role_arn=job_role.role_arn,
                opensearch_endpoint=f"https://{search.endpoint}",
                provider_secret_name=secrets.providers.secret_name,
            ),
            network=network,
        )
        fns = functions.functions
        agent = Agent(
            self,
            "Agent",
            wiring=wiring,
            stage=stage,
            functions=fns,
            sender_email=settings.sender_email,
        )
        Access(
            self,
            "Access",
            roles=dict(functions.roles),
            resources=Resources(
                buckets=data.buckets,
                tables=data.tables,
                queues=data.queues,
                domain_arn=search.domain_arn,
                state_machine_arn=machine_arn,
                reembed_state_machine_arn=reembed_arn,
                sync_backfill_state_machine_arn=backfill_arn,
                reembed_job_role=job_role,
                sender_identity_arn=agent.sender_identity_arn,
                provider_secret=secrets.providers,
            ),
            settings=settings,
        )
        Ingestion(
            self,
            "Ingestion",
            wiring=wiring,
            functions=fns,
            tables=data.tables,
            queues=data.queues,
        )
        ReembedEvents(self, "ReembedEvents", function=fns["docket-reembed"])
        api = Api(
            self,
            "Api",
            stage=stage,
            function=fns[wiring.api_function],
            mcp_function=fns[wiring.mcp_function],
            authorizer_function=fns[wiring.authorizer_function],
        )
        # approval links point at the API; the signing keys are read at run time from Secrets
        # Manager (docket.secrets) by the functions that sign or verify, never put in env vars
        link, slack = secrets.approval_link, secrets.slack
        per_function = {
            "docket-api": {
                "DOCKET_APPROVAL_BASE_URL": api.url,
                "DOCKET_APPROVAL_LINK_SECRET_NAME": link.secret_name,
                "DOCKET_SLACK_SECRET_NAME": slack.secret_name,
            },
            "docket-agent-approval": {
                "DOCKET_APPROVAL_BASE_URL": api.url,
                "DOCKET_APPROVAL_LINK_SECRET_NAME": link.secret_name,
                "DOCKET_SLACK_SECRET_NAME": slack.secret_name,
            },
            "docket-agent-tool": {"DOCKET_SLACK_SECRET_NAME": slack.secret_name},
            # the rebuild's optional Approve step notifies as the agent's approvals do
            "docket-reembed": {
                "DOCKET_APPROVAL_BASE_URL": api.url,
                "DOCKET_APPROVAL_LINK_SECRET_NAME": link.secret_name,
                "DOCKET_SLACK_SECRET_NAME": slack.secret_name,
            },
        }
        # model calls: the API answers within API Gateway's 29 s, so a hung provider must time
        # out early enough for the fallback; the agent's CallModel is retried by the state
        # machine, so the routed model does not retry inside it as well (no 4 x 3 x 2 storms)
        model_env = {
            "docket-api": {"DOCKET_PROVIDER_TIMEOUT_SECONDS": "12"},
            "docket-mcp": {"DOCKET_PROVIDER_TIMEOUT_SECONDS": "12"},
            "docket-agent-model": {"DOCKET_PROVIDER_MAX_RETRIES": "0"},
        }
        for name, env in model_env.items():
            for key, value in env.items():
                fns[name].add_environment(key, value)
        for name, env in per_function.items():
            if "DOCKET_APPROVAL_LINK_SECRET_NAME" in env:
                link.grant_read(fns[name])
            slack.grant_read(fns[name])
        for name, env in per_function.items():
            for key, value in env.items():
                fns[name].add_environment(key, value)

        SearchAccess(
            self,
            "SearchAccess",
            network=network,
            master_role=search.master_role,
            domain_endpoint=search.endpoint,
            domain_arn=search.domain_arn,
            writers=[functions.roles["docket-embed"], functions.roles["docket-reembed"]],
            readers=[
                functions.roles["docket-api"],
                functions.roles["docket-mcp"],
                functions.roles["docket-agent-tool"],
            ],
        )
        Observability(
            self,
            "Observability",
            stage=stage,
            wiring=wiring,
            functions=fns,
            queues=data.queues,
            state_machines=agent.state_machines,
            http_api=api.http_api,
            alarm_email=settings.alarm_email,
        )
        acknowledge(
            self,
            "AwsSolutions-L1",
            "docket's functions run Python 3.11, the version pyproject pins (<3.12) and the "
            "layer's wheels are built for; CDK's deploy-time handlers pin their own runtime.",
        )
        CfnOutput(self, "ApiUrl", value=api.url, description="DOCKET_URL for the CLI")
        CfnOutput(self, "DocumentsBucket", value=data.buckets[c.DOCUMENTS_BUCKET].bucket_name)
        CfnOutput(self, "SearchEndpoint", value=search.endpoint)
        CfnOutput(self, "AgentStateMachineArn", value=machine_arn)
        CfnOutput(self, "ReembedStateMachineArn", value=reembed_arn)
        CfnOutput(self, "TicketsTable", value=data.tables[c.TICKETS_TABLE].table_name)
        CfnOutput(self, "SlackSecretName", value=secrets.slack.secret_name)
        CfnOutput(self, "ProviderSecretName", value=secrets.providers.secret_name)


def function_environment(
    settings: DeploymentSettings,
    *,
    buckets: dict[str, str],
    tables: dict[str, str],
    ingest_dlq_url: str,
    state_machine_arn: str,
    reembed_state_machine_arn: str,
    sync_backfill_state_machine_arn: str,
    reembed_job_role_arn: str,
    opensearch_endpoint: str,
    provider_secret_name: str,
) -> dict[str, str]:
    """The DOCKET_* settings (docket.config.Settings) every function gets: resource names, the
    search backend, auth mode and providers. Secrets are not here (see DocketStack)."""
    env = {
        "DOCKET_STAGE": settings.stage,
        "DOCKET_REGION": Aws.REGION,
        "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "DOCKET_DOCUMENTS_BUCKET": buckets[c.DOCUMENTS_BUCKET],
        "DOCKET_TEXT_BUCKET": buckets[c.TEXT_BUCKET],
        "DOCKET_AGENT_BUCKET": buckets[c.AGENT_BUCKET],
        "DOCKET_DOCUMENTS_TABLE": tables[c.DOCUMENTS_TABLE],
        "DOCKET_CHUNKS_TABLE": tables[c.CHUNKS_TABLE],
        "DOCKET_AGENT_TABLE": tables[c.AGENT_TABLE],
        "DOCKET_IDEMPOTENCY_TABLE": tables[c.IDEMPOTENCY_TABLE],
        "DOCKET_GENERATIONS_TABLE": tables[c.GENERATIONS_TABLE],
        "DOCKET_KEYS_TABLE": tables[c.KEYS_TABLE],
        "DOCKET_LIMITS_TABLE": tables[c.LIMITS_TABLE],
        "DOCKET_SYNC_TABLE": tables[c.SYNC_TABLE],
        "DOCKET_ANSWER_CACHE_TABLE": tables[c.ANSWER_CACHE_TABLE],
        # the example source (docket.wiring.TICKETS_SOURCE), reading the deployed tickets table
        "DOCKET_SYNC_SOURCES": json.dumps([{**c.TICKETS_SOURCE, "table": tables[c.TICKETS_TABLE]}]),
        "DOCKET_SYNC_BACKFILL_STATE_MACHINE_ARN": sync_backfill_state_machine_arn,
        # every table has point-in-time recovery (data.py): backfills export instead of scanning
        "DOCKET_SYNC_BACKFILL_METHOD": "export",
        "DOCKET_REEMBED_STATE_MACHINE_ARN": reembed_state_machine_arn,
        "DOCKET_REEMBED_JOB_ROLE_ARN": reembed_job_role_arn,
        "DOCKET_INGEST_DLQ_URL": ingest_dlq_url,
        "DOCKET_AGENT_STATE_MACHINE_ARN": state_machine_arn,
        "DOCKET_TOKENIZER_PATH": "/opt/python/docket_tokenizer/tokenizer.json",
        "DOCKET_SEARCH_BACKEND": "opensearch",
        "DOCKET_OPENSEARCH_ENDPOINT": opensearch_endpoint,
        "DOCKET_OPENSEARCH_AUTH": "sigv4",
        "DOCKET_AUTH_MODE": "jwt_authorizer",
        "DOCKET_TOKEN_ISSUER": settings.jwt_issuer,
        "DOCKET_TOKEN_AUDIENCE": ",".join(settings.jwt_audience),
        "DOCKET_PROVIDER_SECRET_NAME": provider_secret_name,
        "DOCKET_EMBEDDING_PROVIDER": settings.embedding_provider,
        "DOCKET_EMBEDDING_MODEL": settings.embedding_model,
        "DOCKET_EMBEDDING_DIMENSIONS": str(settings.embedding_dimensions),
        "DOCKET_ANSWERER": settings.answerer,
        "DOCKET_LLM_PROVIDER": settings.llm_provider,
        "DOCKET_LLM_MODEL": settings.llm_model,
        "DOCKET_AGENT_MODEL_PROVIDER": settings.agent_model_provider,
        "DOCKET_AGENT_MODEL": settings.agent_model,
        "DOCKET_EMAIL_SENDER": settings.sender_email,
        "DOCKET_APPROVAL_EMAILS": json.dumps(list(settings.approval_emails)),
        "DOCKET_QUERY_TABLES": json.dumps(list(settings.query_tables)),
        "DOCKET_HTTP_ALLOWED_HOSTS": json.dumps(list(settings.http_allowed_hosts)),
    }
    if settings.approval_slack_channel:
        env["DOCKET_APPROVAL_SLACK_CHANNEL"] = settings.approval_slack_channel
    env["DOCKET_REEMBED_JOB_INSTANCE_TYPE"] = settings.reembed_job_instance_type
    if settings.reembed_job_image:
        env["DOCKET_REEMBED_JOB_IMAGE"] = settings.reembed_job_image
    if settings.reembed_job_model_data:
        env["DOCKET_REEMBED_JOB_MODEL_DATA"] = settings.reembed_job_model_data
    env.update(settings.extra_env)
    return env
