"""Observability: alarms on dead letters, function errors and throttles, failed or timed-out
agent executions and API 5xx, sent to an SNS topic; and one dashboard.

Structured logs (Powertools JSON) go to each function's log group, with retention, and X-Ray
tracing is active on every function and the state machine (infra.constructs.functions/agent).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from infra import constants as c

PERIOD = Duration.minutes(5)


def dead_letter_queues(wiring: c.Wiring) -> list[str]:
    """Queues that hold failures: redrive targets and on-failure destinations."""
    names = {q.dead_letter_queue for q in wiring.queues if q.dead_letter_queue}
    names |= {e.on_failure_queue for e in wiring.event_sources if e.on_failure_queue}
    return sorted(n for n in names if n)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        wiring: c.Wiring,
        functions: dict[str, lambda_.Function],
        queues: dict[str, sqs.Queue],
        state_machines: dict[str, sfn.StateMachine],
        http_api: apigw.HttpApi,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, id)
        # a key of our own: the AWS-managed alias/aws/sns key's policy cannot let CloudWatch
        # encrypt, so alarms would fail to publish to a topic that uses it, silently
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"docket {stage}: encrypts the alarm topic",
            enable_key_rotation=True,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
            )
        )
        self.topic = sns.Topic(
            self,
            "Alarms",
            display_name=f"docket {stage} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []

        def alarm(cid: str, metric: cw.IMetric, description: str) -> cw.Alarm:
            a = cw.Alarm(
                self,
                cid,
                metric=metric,
                threshold=0,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            a.add_alarm_action(action)
            self.alarms.append(a)
            return a

        for name in dead_letter_queues(wiring):
            alarm(
                _cid(name, "Depth"),
                queues[name].metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                f"{name}: messages are waiting in a dead-letter queue",
            )
        for name, fn in functions.items():
            alarm(
                _cid(name, "Errors"),
                fn.metric_errors(period=PERIOD, statistic="Sum"),
                f"{name}: invocations failed",
            )
            alarm(
                _cid(name, "Throttles"),
                fn.metric_throttles(period=PERIOD, statistic="Sum"),
                f"{name}: invocations were throttled",
            )
        for name, machine in state_machines.items():
            alarm(
                _cid(name, "Failed"),
                machine.metric_failed(period=PERIOD, statistic="Sum"),
                f"{name}: executions failed",
            )
            alarm(
                _cid(name, "TimedOut"),
                machine.metric_timed_out(period=PERIOD, statistic="Sum"),
                f"{name}: executions timed out",
            )
        alarm("Api5xx", http_api.metric_server_error(period=PERIOD, statistic="Sum"), "API 5xx")

        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"docket-{stage}")
        dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests, 4xx, 5xx",
                left=[
                    http_api.metric_count(period=PERIOD),
                    http_api.metric_client_error(period=PERIOD),
                    http_api.metric_server_error(period=PERIOD),
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency p50/p99",
                left=[
                    http_api.metric_latency(period=PERIOD, statistic="p50"),
                    http_api.metric_latency(period=PERIOD, statistic="p99"),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Function errors",
                left=[fn.metric_errors(period=PERIOD, label=n) for n, fn in functions.items()],
                width=8,
            ),
            cw.GraphWidget(
                title="Function duration p99",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p99", label=n)
                    for n, fn in functions.items()
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[fn.metric_throttles(period=PERIOD, label=n) for n, fn in functions.items()],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Dead-letter queue depth",
                left=[
                    queues[n].metric_approximate_number_of_messages_visible(period=PERIOD, label=n)
                    for n in dead_letter_queues(wiring)
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="Agent executions",
                left=[
                    m
                    for machine in state_machines.values()
                    for m in (
                        machine.metric_started(period=PERIOD),
                        machine.metric_succeeded(period=PERIOD),
                        machine.metric_failed(period=PERIOD),
                        machine.metric_timed_out(period=PERIOD),
                    )
                ],
                width=12,
            ),
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24),
        )


def _cid(name: str, what: str) -> str:
    return "".join(p.capitalize() for p in name.split("-")[1:]) + what
