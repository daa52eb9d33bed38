"""The deployment's configuration, read from CDK context (cdk.json, or ``-c key=value``).

Everything a deployer may change lives under ``docket:*`` keys; defaults suit a small dev stage.
Nothing here looks anything up in an AWS account: synth works offline.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from infra import constants as c

CONTEXT_PREFIX = "docket:"
LAYER_ASSET_ENV = "DOCKET_LAYER_ASSET"


def _strings(value: Any) -> tuple[str, ...]:
    """A list from context: a JSON list, a comma-separated string, or a list."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else text.split(",")
    else:
        items = list(value)
    return tuple(str(i).strip() for i in items if str(i).strip())


@dataclass(frozen=True)
class DeploymentSettings:
    stage: str = "dev"
    account: str | None = None  # None: environment-agnostic templates
    region: str | None = None
    # the identity provider whose tokens the HTTP API's JWT authorizer accepts
    jwt_issuer: str = ""  # required: the identity provider whose tokens the API trusts
    jwt_audience: tuple[str, ...] = ("docket",)
    sender_email: str = "docket@example.com"  # SES identity that sends approval notices
    alarm_email: str | None = None  # alarm notifications; none: the SNS topic has no subscriber
    approval_emails: tuple[str, ...] = ()
    approval_slack_channel: str | None = None
    # prebuilt layer directory (holds python/...); unset: infra.layer builds it with pip
    layer_asset: str | None = None
    embedding_provider: str = "bedrock"
    embedding_model: str = "amazon.titan-embed-text-v2:0"
    embedding_dimensions: int = 1024
    llm_provider: str = "bedrock"
    llm_model: str = "global.anthropic.claude-sonnet-5-5"
    agent_model_provider: str = "bedrock"
    agent_model: str = "global.anthropic.claude-sonnet-5-5"
    answerer: str = "llm"
    opensearch_instance_type: str = c.OPENSEARCH_INSTANCE_TYPE
    opensearch_data_nodes: int = c.OPENSEARCH_DATA_NODES
    opensearch_volume_gb: int = c.OPENSEARCH_VOLUME_GB
    nat_gateways: int = 1
    # tables the agent's query_table tool may read (PartiQL SELECT only)
    query_tables: tuple[str, ...] = ()
    http_allowed_hosts: tuple[str, ...] = ()
    retain_data: bool = True  # buckets, tables and the domain survive `cdk destroy`
    # the re-embedding job (P6): the embedding container's image (jobs/embed as its entry point)
    # and the model artifact (s3://.../model.tar.gz); unset: only hosted-model rebuilds can run
    reembed_job_image: str | None = None
    reembed_job_model_data: str | None = None
    reembed_job_instance_type: str = "ml.g5.xlarge"
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_context(cls, get: Any) -> DeploymentSettings:
        """``get(key)`` is ``node.try_get_context``; unknown keys are ignored."""

        def ctx(name: str, default: Any = None) -> Any:
            value = get(CONTEXT_PREFIX + name)
            return default if value is None else value

        d = cls()
        return cls(
            stage=str(ctx("stage", d.stage)),
            account=ctx("account") or os.environ.get("CDK_DEFAULT_ACCOUNT") or None,
            region=ctx("region") or os.environ.get("CDK_DEFAULT_REGION") or None,
            jwt_issuer=str(ctx("jwtIssuer", d.jwt_issuer)),
            jwt_audience=_strings(ctx("jwtAudience", list(d.jwt_audience))),
            sender_email=str(ctx("senderEmail", d.sender_email)),
            alarm_email=ctx("alarmEmail") or None,
            approval_emails=_strings(ctx("approvalEmails")),
            approval_slack_channel=ctx("approvalSlackChannel") or None,
            layer_asset=ctx("layerAsset") or os.environ.get(LAYER_ASSET_ENV) or None,
            embedding_provider=str(ctx("embeddingProvider", d.embedding_provider)),
            embedding_model=str(ctx("embeddingModel", d.embedding_model)),
            embedding_dimensions=int(ctx("embeddingDimensions", d.embedding_dimensions)),
            llm_provider=str(ctx("llmProvider", d.llm_provider)),
            llm_model=str(ctx("llmModel", d.llm_model)),
            agent_model_provider=str(ctx("agentModelProvider", d.agent_model_provider)),
            agent_model=str(ctx("agentModel", d.agent_model)),
            answerer=str(ctx("answerer", d.answerer)),
            opensearch_instance_type=str(ctx("opensearchInstanceType", d.opensearch_instance_type)),
            opensearch_data_nodes=int(ctx("opensearchDataNodes", d.opensearch_data_nodes)),
            opensearch_volume_gb=int(ctx("opensearchVolumeGb", d.opensearch_volume_gb)),
            nat_gateways=int(ctx("natGateways", d.nat_gateways)),
            query_tables=_strings(ctx("queryTables")),
            http_allowed_hosts=_strings(ctx("httpAllowedHosts")),
            retain_data=str(ctx("retainData", "true")).lower() in ("true", "1", "yes"),
            reembed_job_image=ctx("reembedJobImage") or None,
            reembed_job_model_data=ctx("reembedJobModelData") or None,
            reembed_job_instance_type=str(
                ctx("reembedJobInstanceType", d.reembed_job_instance_type)
            ),
            extra_env={str(k): str(v) for k, v in dict(ctx("extraEnv", {}) or {}).items()},
        ).checked()

    def checked(self) -> DeploymentSettings:
        """Refuse settings that would deploy something unsafe or broken, before synthesis."""
        if not self.jwt_issuer.startswith("https://"):
            raise ValueError(
                "set docket:jwtIssuer (cdk.json or -c) to your identity provider's https issuer: "
                "the API trusts every token it signs"
            )
        if self.nat_gateways < 1:
            raise ValueError(
                "docket:natGateways must be at least 1: the functions in the VPC reach Bedrock, "
                "Secrets Manager, Step Functions, SES and model providers through it"
            )
        return self
