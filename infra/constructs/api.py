"""API: an HTTP API (v2) in front of the api function (and of the mcp function at /mcp),
behind a Lambda authorizer.

Every route needs a bearer token the authorizer verified, a JWT from the identity provider or an
API key (docket.api.authorizer: a route takes one authorizer, so one function checks both; tenant,
groups and scopes come from its context), except the ones that authenticate themselves or are
public: the e-mailed approval page (a signed link and a CSRF cookie), Slack's interactions
(Slack's signature), /health and /openapi.json. API Gateway caches an authorization for
``AUTHORIZER_CACHE`` per Authorization header: a revoked key stops within that time.
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from constructs import Construct
from infra import constants as c
from infra.constructs.nag import acknowledge

ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "method": "$context.httpMethod",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sub": "$context.authorizer.sub",
    "keyId": "$context.authorizer.key_id",
}
THROTTLE_RATE = 50  # requests per second, per stage
THROTTLE_BURST = 100
AUTHORIZER_CACHE = Duration.seconds(60)  # docket.api.authorizer.RESULT_TTL_S


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        function: lambda_.IFunction,
        mcp_function: lambda_.IFunction,
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id)
        integration = integrations.HttpLambdaIntegration(
            "Api", function, payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0
        )
        self.authorizer = authorizers.HttpLambdaAuthorizer(
            "Bearer",
            authorizer_function,
            authorizer_name="docket-bearer",
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            identity_source=["$request.header.Authorization"],
            results_cache_ttl=AUTHORIZER_CACHE,
        )
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"docket-{stage}",
            description="docket: documents, questions, agent tasks and approvals",
            create_default_stage=False,
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=THROTTLE_RATE, burst_limit=THROTTLE_BURST),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
        )
        # everything else: a verified bearer token
        self.http_api.add_routes(
            path="/{proxy+}",
            methods=[apigw.HttpMethod.ANY],
            integration=integration,
            authorizer=self.authorizer,
        )
        # the MCP server (streamable HTTP, stateless JSON): its own function, the same authorizer
        self.http_api.add_routes(
            path="/mcp",
            methods=[apigw.HttpMethod.ANY],
            integration=integrations.HttpLambdaIntegration(
                "Mcp", mcp_function, payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0
            ),
            authorizer=self.authorizer,
        )
        for method, path in c.PUBLIC_ROUTES:
            for route in self.http_api.add_routes(
                path=path,
                methods=[apigw.HttpMethod(method)],
                integration=integration,
                authorizer=apigw.HttpNoneAuthorizer(),
            ):
                acknowledge(
                    route,
                    "AwsSolutions-APIG4",
                    f"{method} {path} has no bearer token by design: it is public (health, the "
                    "OpenAPI document) or authenticates itself (a signed approval link with a "
                    "CSRF cookie; Slack's request signature), in docket.api.approvals.",
                )
        # the URL approval links and the CLI use (no trailing slash)
        self.url = self.http_api.api_endpoint
