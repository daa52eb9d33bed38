"""cdk-nag: every acknowledged finding carries a written reason, kept with the code it applies to.

cdk-nag v3 acknowledges each finding by its exact id (``AwsSolutions-IAM5[Resource::<X.Arn>/*]``),
and those ids hold logical ids only synthesis knows. So statements are added through ``allow``,
which records the reason for the statement's wildcards under its Sid, and the ``WildcardReasons``
aspect, run before validation, computes each wildcard finding the way cdk-nag does and
acknowledges it with that reason. A wildcard without a reason stays a finding and fails synth.
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Acknowledgment, CfnResource, IAspect, Stack, Validations
from aws_cdk import aws_iam as iam

from constructs import IConstruct
from infra.constants import WIRING_METADATA

_REASONS: dict[str, str] = {}

# statements CDK writes itself (no Sid): the reason for their wildcard, by their actions
GENERATED: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}),
        "X-Ray trace segment and telemetry APIs support no resource-level permissions.",
    ),
    (
        frozenset(
            {
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            }
        ),
        "CloudWatch Logs vended-delivery and resource-policy APIs (state machine logging) "
        "support no resource-level permissions.",
    ),
    (
        frozenset({"dynamodb:ListStreams"}),
        "DynamoDB ListStreams supports no resource-level permissions (stream reads are scoped "
        "to the table's stream ARN).",
    ),
    (
        frozenset({"s3:PutBucketNotification"}),
        "CDK's bucket-notification handler configures notifications at deploy time; the API "
        "takes the bucket from the request.",
    ),
    (
        frozenset(
            {
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            }
        ),
        "Lambda's VPC network-interface actions support no resource-level permissions.",
    ),
)

MANAGED_POLICY_REASONS = {
    "AWSLambdaBasicExecutionRole": "A CDK-provided deployment-time handler uses the AWS basic "
    "execution policy (logs only); it runs only while CloudFormation deploys.",
    "AWSLambdaVPCAccessExecutionRole": "CDK attaches the AWS VPC access policy to functions in "
    "a VPC; its network-interface actions support no resource-level permissions.",
}


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on ``scope`` (and below), with a reason a reviewer reads."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule}: a suppression needs a real reason, not {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def allow(
    role: iam.IRole,
    sid: str,
    actions: list[str],
    resources: list[str],
    *,
    conditions: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Add one statement to a role; ``reason`` explains any wildcard in its resources."""
    if reason is not None:
        known = _REASONS.setdefault(sid, reason)
        if known != reason:
            raise ValueError(f"statement {sid} has two different reasons")
    role.add_to_principal_policy(
        iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)
    )


def tag_wiring(construct: IConstruct, name: str) -> None:
    """Name the WIRING entry a resource implements in its CloudFormation Metadata (the drift
    test maps the synthesized resources back to docket.wiring with it)."""
    child = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{construct} has no CloudFormation resource to tag")
    child.add_metadata(WIRING_METADATA, name)


def _resolve(value: Any) -> str:
    """A policy resource as cdk-nag names it in a finding: ``<Logical.Attr>`` for Fn::GetAtt,
    ``<Logical>`` or ``<AWS::Region>`` for Ref, Fn::Join's parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::Join":
            return str(arg[0]).join(_resolve(part) for part in arg[1])
    return str(value)


def _generated_reason(actions: set[str]) -> str | None:
    for known, reason in GENERATED:
        if actions and actions <= known:
            return reason
    return None


@jsii.implements(IAspect)
class WildcardReasons:
    """Acknowledges IAM5 (wildcard) and IAM4 (managed policy) findings that have a reason."""

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, iam.CfnPolicy):
            self._policy(node)
        elif isinstance(node, iam.CfnRole):
            self._managed(node)

    def _policy(self, node: iam.CfnPolicy) -> None:
        document = Stack.of(node).resolve(node.policy_document)
        for statement in document.get("Statement", []):
            actions = _as_list(statement.get("Action"))
            resources = _as_list(statement.get("Resource"))
            sid = statement.get("Sid")
            reason = _REASONS.get(sid) if sid else _generated_reason(set(actions))
            if reason is None:
                continue
            for action in actions:
                if "*" in action:
                    acknowledge(node, f"AwsSolutions-IAM5[Action::{action}]", reason)
            for resource in resources:
                text = _resolve(resource)
                if "*" in text:
                    acknowledge(node, f"AwsSolutions-IAM5[Resource::{text}]", reason)

    def _managed(self, node: iam.CfnRole) -> None:
        arns = Stack.of(node).resolve(node.managed_policy_arns) or []
        for arn in arns:
            text = _resolve(arn)
            name = text.rsplit("/", 1)[-1]
            if name in MANAGED_POLICY_REASONS:
                acknowledge(
                    node, f"AwsSolutions-IAM4[Policy::{text}]", MANAGED_POLICY_REASONS[name]
                )


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
