"""Functions: the shared layer and one Lambda function per WIRING entry.

Code assets are ``functions/<code_dir>`` only (thin handlers); everything else comes from the one
layer built from the runtime requirements. Each function has its own role (granted only what it
touches, by infra.constructs.access), its own log group with retention, and active X-Ray tracing.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from infra import constants as c
from infra.constructs.nag import tag_wiring
from infra.constructs.network import Network

RUNTIME = lambda_.Runtime.PYTHON_3_11
ARCHITECTURE = lambda_.Architecture.X86_64  # the layer's wheels are manylinux x86_64


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        wiring: c.Wiring,
        stage: str,
        layer_asset: str,
        environment: dict[str, str],
        network: Network,
    ) -> None:
        super().__init__(scope, id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(layer_asset),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="docket: runtime requirements and the docket package",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for spec in wiring.functions:
            name = c.physical_name(spec.name, stage)
            key = spec.name.removeprefix(f"{c.SERVICE}-")
            cid = "".join(p.capitalize() for p in key.split("-"))
            log_group = logs.LogGroup(
                self,
                f"{cid}Logs",
                log_group_name=f"/aws/lambda/{name}",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=RemovalPolicy.DESTROY,
            )
            role = iam.Role(
                self,
                f"{cid}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{name}: its own least-privilege role",
            )
            # logs to its own group only (instead of AWSLambdaBasicExecutionRole's logs:* on *)
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[log_group.log_group_arn],
                )
            )
            in_vpc = spec.name in c.VPC_FUNCTIONS
            function = lambda_.Function(
                self,
                cid,
                function_name=name,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=spec.handler,
                code=lambda_.Code.from_asset(str(c.FUNCTIONS_DIR / spec.code_dir)),
                layers=[self.layer],
                memory_size=spec.memory_mb,
                timeout=Duration.seconds(spec.timeout_s),
                reserved_concurrent_executions=spec.reserved_concurrency,
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                environment={**environment, "POWERTOOLS_SERVICE_NAME": c.SERVICE},
                vpc=network.vpc if in_vpc else None,
                vpc_subnets=network.private_subnets if in_vpc else None,
                security_groups=[network.functions_sg] if in_vpc else None,
                description=f"docket {key}: functions/{spec.code_dir}/{spec.handler}",
            )
            tag_wiring(function, spec.name)
            self.functions[spec.name] = function
            self.roles[spec.name] = role
            self.log_groups[spec.name] = log_group
