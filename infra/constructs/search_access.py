"""Search access: maps the functions' IAM roles to docket roles inside OpenSearch.

With fine-grained access control, an IAM identity the domain policy admits still needs an
OpenSearch role. A custom resource runs as the master role, in the VPC, and writes two roles and
their mappings through the security plugin's REST API: docket_writer (the embed function: create
and write chunks* indexes and aliases) and docket_reader (the api and agent-tool functions: search
chunks*).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from infra.constructs.nag import acknowledge, allow
from infra.constructs.network import Network

HANDLER_DIR = Path(__file__).parent / "search_access_handler"
INDEX_PATTERN = "chunks*"  # settings.opensearch_index_prefix + "*"

ROLES = {
    "docket_writer": {
        "cluster_permissions": [
            "cluster_monitor",
            "cluster_composite_ops",
            "cluster:admin/search/pipeline/*",
            "indices:admin/aliases*",
        ],
        "index_permissions": [
            {
                "index_patterns": [INDEX_PATTERN],
                "allowed_actions": ["crud", "create_index", "manage", "indices:admin/aliases*"],
            }
        ],
    },
    # the query path and the document/agent deletes: search, the analyzer (coordination
    # matching), index and alias lookups when the index is opened, delete-by-query + refresh
    "docket_reader": {
        "cluster_permissions": ["cluster_composite_ops_ro", "cluster:admin/search/pipeline/get"],
        "index_permissions": [
            {
                "index_patterns": [INDEX_PATTERN],
                "allowed_actions": [
                    "read",
                    "search",
                    "indices:admin/get",
                    "indices:admin/analyze",
                    "indices:admin/aliases/get*",
                    "indices:admin/mappings/get*",
                    "indices:admin/refresh*",
                    "indices:data/write/delete/byquery",
                ],
            }
        ],
    },
}


class SearchAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        network: Network,
        master_role: iam.Role,
        domain_endpoint: str,
        domain_arn: str,
        writers: list[iam.IRole],
        readers: list[iam.IRole],
    ) -> None:
        super().__init__(scope, id)
        log_group = logs.LogGroup(
            self,
            "Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        allow(
            master_role,
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group.log_group_arn],
            reason="Log streams of this handler's own log group (the ARN ends in :*).",
        )
        allow(
            master_role,
            "AdministerSecurityPlugin",
            ["es:ESHttpGet", "es:ESHttpPut"],
            [f"{domain_arn}/_plugins/_security/*"],
            reason="The security plugin's REST paths (roles, rolesmapping) of this one domain.",
        )
        handler = lambda_.Function(
            self,
            "Handler",
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler="index.handler",
            code=lambda_.Code.from_asset(str(HANDLER_DIR)),
            timeout=Duration.minutes(2),
            role=master_role,
            log_group=log_group,
            vpc=network.vpc,
            vpc_subnets=network.private_subnets,
            security_groups=[network.functions_sg],
            description="docket: maps function roles to OpenSearch roles (deploy time only)",
        )
        acknowledge(
            handler,
            "AwsSolutions-L1",
            "Runs once per deployment with the standard library and botocore; 3.11 matches the "
            "rest of docket.",
        )
        self.mapping = CustomResource(
            self,
            "RoleMapping",
            service_token=handler.function_arn,
            properties={
                "Endpoint": domain_endpoint,
                "Roles": ROLES,
                "Mappings": {
                    "docket_writer": [r.role_arn for r in writers],
                    "docket_reader": [r.role_arn for r in readers],
                },
            },
        )
