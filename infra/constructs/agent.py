"""Agent: the Standard state machine of state_machines/ and the SES identity of its notices.

The definition is the same file the local cloud runs; its ${Placeholders} become the functions'
ARNs through definition_substitutions. The state machine's name is fixed per stage, so the API
function learns its ARN from the name (agent_state_machine_arn) without a circular reference.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses
from aws_cdk import aws_stepfunctions as sfn

from constructs import Construct
from infra import constants as c
from infra.constructs.nag import allow, tag_wiring
from infra.constructs.schedule import every


def state_machine_arn(scope: Construct, name: str) -> str:
    """The ARN a state machine named ``name`` will have in this stack's account and region."""
    return Stack.of(scope).format_arn(
        service="states",
        resource="stateMachine",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class Agent(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        wiring: c.Wiring,
        stage: str,
        functions: dict[str, lambda_.Function],
        sender_email: str,
    ) -> None:
        super().__init__(scope, id)
        self.sender = ses.EmailIdentity(self, "Sender", identity=ses.Identity.email(sender_email))
        self.sender_identity_arn = self.sender.email_identity_arn
        # decisions recorded but never delivered to their task (a crash in between) are sent
        # within minutes, not left waiting for the approval timeout
        self.sweep = every(
            self,
            "ApprovalSweep",
            rate=Duration.minutes(5),
            function=functions["docket-agent-approval"],
            event={"action": "sweep"},
            description="docket: deliver approval decisions that never reached their task",
        )
        self.state_machines: dict[str, sfn.StateMachine] = {}
        for spec in wiring.state_machines:
            name = c.physical_name(spec.name, stage)
            cid = "".join(p.capitalize() for p in spec.name.split("-")[1:])
            log_group = logs.LogGroup(
                self,
                f"{cid}Logs",
                log_group_name=f"/aws/vendedlogs/states/{name}",
                retention=logs.RetentionDays.THREE_MONTHS,
                removal_policy=RemovalPolicy.DESTROY,
            )
            machine = sfn.StateMachine(
                self,
                cid,
                state_machine_name=name,
                state_machine_type=sfn.StateMachineType.STANDARD,
                definition_body=sfn.DefinitionBody.from_file(
                    str(c.STATE_MACHINES_DIR / spec.definition)
                ),
                definition_substitutions={
                    placeholder: functions[fn].function_arn
                    for placeholder, fn in spec.functions.items()
                },
                logs=sfn.LogOptions(
                    destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True
                ),
                tracing_enabled=True,
            )
            allow(
                machine.role,
                "InvokeAgentFunctions",
                ["lambda:InvokeFunction"],
                sorted({functions[fn].function_arn for fn in spec.functions.values()}),
            )
            tag_wiring(machine, spec.name)
            self.state_machines[spec.name] = machine
