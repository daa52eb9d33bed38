"""Test doubles for the agent's integration tests: tools with counters, an in-memory approvals
service that answers task tokens through the real (moto) Step Functions, and a service builder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from docket.agent.models import ApprovalRecord, RiskLevel
from docket.agent.service import AgentService
from docket.agent.store import TaskStore
from docket.agent.tools.base import Tool, ToolContext, ToolOutput, ToolRegistry
from docket.agent.workflow import DENIED_ERROR, StepFunctions
from docket.config import get_settings
from docket.errors import ApprovalClosed
from docket.models import utcnow
from docket.providers.llm import ChatModel


class EchoInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1)
    repeat: int = Field(default=1, ge=1, le=1_000_000)


class EchoTool(Tool[EchoInput]):
    name = "echo"
    description = "Repeats the text."
    Input = EchoInput

    def __init__(self) -> None:
        self.runs = 0

    def run(self, ctx: ToolContext, args: EchoInput) -> ToolOutput:
        self.runs += 1
        return ToolOutput(args.text * args.repeat)


class SendInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str
    body: str


class SendTool(Tool[SendInput]):
    name = "send"
    description = "Sends a message (high risk)."
    Input = SendInput
    side_effect = True

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def risk(self, args: SendInput) -> RiskLevel:
        return "high"

    def run(self, ctx: ToolContext, args: SendInput) -> ToolOutput:
        self.sent.append((args.to, args.body))
        return ToolOutput(f"sent to {args.to}")


@dataclass
class MemoryApprovals:
    """The approvals port in memory; decisions go to the real (moto) Step Functions."""

    workflow: StepFunctions = field(default_factory=StepFunctions)
    records: dict[str, ApprovalRecord] = field(default_factory=dict)

    def request(self, record: ApprovalRecord) -> ApprovalRecord:
        for existing in self.records.values():
            if (existing.task_id, existing.step, existing.call_id) == (
                record.task_id,
                record.step,
                record.call_id,
            ):
                return existing
        self.records[record.approval_id] = record
        return record

    def get(self, approval_id: str) -> ApprovalRecord | None:
        return self.records.get(approval_id)

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        return [r for r in self.records.values() if r.task_id == task_id]

    def pending(self, task_id: str) -> list[ApprovalRecord]:
        return [r for r in self.for_task(task_id) if r.status == "pending"]

    def cancel_for_task(self, task_id: str) -> None:
        for r in self.pending(task_id):
            self.records[r.approval_id] = r.model_copy(update={"status": "cancelled"})

    def expire_for_call(self, task_id: str, step: int, call_id: str) -> None:
        for r in self.pending(task_id):
            if (r.step, r.call_id) == (step, call_id):
                self.records[r.approval_id] = r.model_copy(update={"status": "expired"})

    def decide(
        self, approval_id: str, *, approve: bool, decided_by: str = "boss"
    ) -> ApprovalRecord:
        record = self.records[approval_id]
        if record.status != "pending":
            raise ApprovalClosed(f"approval {approval_id} is {record.status}")
        record = record.model_copy(
            update={
                "status": "approved" if approve else "denied",
                "decided_by": decided_by,
                "decided_at": utcnow(),
            }
        )
        self.records[approval_id] = record
        if approve:
            self.workflow.succeed(record.task_token, {"approved": True, "approval_id": approval_id})
        else:
            self.workflow.fail(
                record.task_token,
                error=DENIED_ERROR,
                cause=json.dumps({"approval_id": approval_id, "decided_by": decided_by}),
            )
        return record


def build_service(
    model: ChatModel,
    tools: list[Tool[Any]],
    approvals: MemoryApprovals | None = None,
    **settings_update: Any,
) -> tuple[AgentService, MemoryApprovals]:
    settings = get_settings().model_copy(update=settings_update)
    approvals = approvals or MemoryApprovals()
    service = AgentService(
        settings,
        TaskStore(settings.agent_table, settings.agent_bucket),
        ToolRegistry(tools),
        model,
        StepFunctions(),
        approvals=lambda: approvals,
        services=lambda: None,
    )
    return service, approvals


class SlowTool(Tool[EchoInput]):
    """Hangs longer than any deadline a test sets."""

    name = "slow"
    description = "Takes its time."
    Input = EchoInput

    def run(self, ctx: ToolContext, args: EchoInput) -> ToolOutput:
        import time

        time.sleep(ctx.timeout_s + 2)
        return ToolOutput("too late")


class FlakyApiTool(Tool[EchoInput]):
    """An external API answering 503."""

    name = "flaky_api"
    description = "Calls an API that is down."
    Input = EchoInput

    def run(self, ctx: ToolContext, args: EchoInput) -> ToolOutput:
        from docket.errors import ToolUnavailable

        raise ToolUnavailable("api.example.com answered 503 Service Unavailable")
