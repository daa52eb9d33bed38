"""A function invoked on a schedule with a fixed event (the approval sweep, generation cleanup)."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_

from constructs import Construct


def every(
    scope: Construct,
    id: str,
    *,
    rate: Duration,
    function: lambda_.IFunction,
    event: dict[str, Any],
    description: str,
) -> events.Rule:
    rule = events.Rule(scope, id, description=description, schedule=events.Schedule.rate(rate))
    rule.add_target(
        targets.LambdaFunction(function, event=events.RuleTargetInput.from_object(event))
    )
    return rule
