"""Secrets: the approval-link signing key, Slack's signing secret and bot token, and the model
providers' API keys, in Secrets Manager.

The approval and Slack secrets reach the functions that need them as CloudFormation dynamic
references (resolved at deploy time into the function's KMS-encrypted environment): the settings
read them from DOCKET_* variables today. The provider keys are read at run time by name
(DOCKET_PROVIDER_SECRET_NAME) through Powertools parameters, so they rotate without a deploy.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as sm

from constructs import Construct
from infra.constructs.nag import acknowledge

NO_ROTATION = (
    "{what} is issued outside AWS ({by}); it is replaced by an operator, so there is no "
    "rotation Lambda to run."
)


class Secrets(Construct):
    def __init__(self, scope: Construct, id: str, *, stage: str) -> None:
        super().__init__(scope, id)
        self.approval_link = sm.Secret(
            self,
            "ApprovalLink",
            secret_name=f"docket/{stage}/approval-link",
            description="HMAC key of the signed single-use approval links (DOCKET_APPROVAL_LINK_SECRET)",
            generate_secret_string=sm.SecretStringGenerator(
                password_length=64, exclude_punctuation=True
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.approval_link,
            "AwsSolutions-SMG4",
            "Rotating the link key invalidates links already e-mailed to approvers; rotate it by "
            "hand (put a new value, redeploy) when approvals are drained.",
        )
        self.slack = sm.Secret(
            self,
            "Slack",
            secret_name=f"docket/{stage}/slack",
            description="Slack app: signing_secret (verifies interactions) and bot_token (posts)",
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template='{"bot_token": ""}',
                generate_string_key="signing_secret",
                password_length=64,
                exclude_punctuation=True,
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.slack,
            "AwsSolutions-SMG4",
            NO_ROTATION.format(what="The Slack signing secret and bot token", by="by Slack"),
        )
        self.providers = sm.Secret(
            self,
            "Providers",
            secret_name=f"docket/{stage}/providers",
            description="Model provider keys: openai_api_key, anthropic_api_key, cohere_api_key",
            generate_secret_string=sm.SecretStringGenerator(
                secret_string_template='{"openai_api_key": "", "anthropic_api_key": "", "cohere_api_key": ""}',
                generate_string_key="unused",
                password_length=16,
            ),
            removal_policy=RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.providers,
            "AwsSolutions-SMG4",
            NO_ROTATION.format(what="Model provider API keys", by="by OpenAI, Anthropic, Cohere"),
        )
