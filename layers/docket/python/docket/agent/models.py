"""Records of the agent: tasks, their steps (the timeline), approvals. Stored in the agent table.

Key layout of the agent table (partition ``pk``, sort ``sk``, sparse index ``gsi1`` on
``gsi1pk``/``gsi1sk``):

- task:      pk ``TASK#{task_id}``      sk ``TASK``                 gsi1 ``TENANT#{tenant}`` / created
- step:      pk ``TASK#{task_id}``      sk ``STEP#{seq:04d}#{n:02d}#{kind}``
- approval:  pk ``APPROVAL#{id}``       sk ``APPROVAL``             gsi1 ``PENDING#{tenant}`` / created
  (decided and not yet delivered: gsi1 ``UNDELIVERED`` / decided; else out of the index:
  docket.agent.approval_store; a task's approvals: pk ``TASKAPPROVALS#{task_id}`` pointers)
- budget:    pk ``BUDGET#{tenant}``     sk ``{YYYY-MM}``            tokens used that month
- outbox:    pk ``OUTBOX#{key}``        sk ``OUTBOX``               one side effect, at most once

Conversation messages and large results live in the agent bucket (``tasks/{task_id}/...``); the
state machine carries only ids, so its 256 KiB payload limit never binds.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from docket.models import utcnow

RiskLevel = Literal["low", "high"]

TaskStatus = Literal[
    "running",
    "waiting_approval",
    "succeeded",
    "failed",
    "step_limit",
    "budget_exceeded",
    "stopped",
]
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "step_limit", "budget_exceeded", "stopped"}
)

ApprovalStatus = Literal["pending", "approved", "denied", "expired", "cancelled"]


def new_task_id() -> str:
    return "task_" + secrets.token_hex(12)


def new_approval_id() -> str:
    return "apv_" + secrets.token_hex(12)


class TaskRecord(BaseModel):
    task_id: str
    tenant: str
    owner: str = Field(description="the subject who started the task")
    groups: list[str] = Field(default_factory=list)
    prompt: str
    status: TaskStatus = "running"
    model: str = ""
    max_steps: int = 12
    steps: int = Field(default=0, description="model calls made so far")
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    execution_arn: str | None = None
    answer: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


StepKind = Literal["model", "tool", "approval", "finish"]
StepStatus = Literal["ok", "error", "refused", "pending", "approved", "denied", "expired"]


class StepRecord(BaseModel):
    """One entry of a task's timeline."""

    task_id: str
    seq: int = Field(description="the model step this belongs to (0-based)")
    n: int = Field(default=0, description="order within the step: 0 the model call, then calls")
    kind: StepKind
    status: StepStatus = "ok"
    at: datetime = Field(default_factory=utcnow)
    latency_ms: float = 0.0
    # model steps
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model_input_ref: str | None = Field(default=None, description="blob key of the full request")
    output_text: str | None = None
    # tool steps (and the model step's calls)
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    call_id: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    risk: RiskLevel | None = None
    result: str | None = Field(default=None, description="the result, cut to a preview")
    result_ref: str | None = Field(default=None, description="blob key of the whole result")
    detail: str | None = None


class ApprovalRecord(BaseModel):
    approval_id: str = Field(default_factory=new_approval_id)
    task_id: str
    tenant: str
    execution_arn: str
    step: int
    call_id: str
    tool: str
    arguments: dict[str, Any]
    summary: list[tuple[str, str]] = Field(
        default_factory=list, description="what will happen, as (label, value) lines"
    )
    requester: str
    task_token: str = Field(repr=False, description="never leaves the store (no URL, no page)")
    status: ApprovalStatus = "pending"
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_channel: Literal["email", "slack", "api"] | None = None
    comment: str | None = None
    # when the decision reached the waiting task (its token was sent); a decision without it is
    # re-sent by the sweeper (ApprovalService.sweep)
    delivered_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """The record as shown to people and API clients: everything but the task token."""
        return self.model_dump(mode="json", exclude={"task_token"})


# what an ApprovalRepository.update may not change: the approval's identity and its place in lists
APPROVAL_IDENTITY: frozenset[str] = frozenset({"approval_id", "task_id", "tenant", "created_at"})


def check_approval_update(set_: Mapping[str, Any], remove: Collection[str]) -> set[str]:
    """The fields an update clears (``remove``, and ``set_`` names whose value is None);
    ``ValueError`` for a name that is no field of ``ApprovalRecord``, a part of its identity, or
    a required field (or the status) cleared."""
    names = set(set_) | set(remove)
    unknown = sorted(names - set(ApprovalRecord.model_fields))
    if unknown:
        raise ValueError(f"not fields of an approval: {', '.join(unknown)}")
    fixed = sorted(names & APPROVAL_IDENTITY)
    if fixed:
        raise ValueError(f"an approval's {', '.join(fixed)} cannot change")
    cleared = set(remove) | {name for name, value in set_.items() if value is None}
    required = sorted(
        n for n in cleared if n == "status" or ApprovalRecord.model_fields[n].is_required()
    )
    if required:
        raise ValueError(f"an approval's {', '.join(required)} cannot be cleared")
    return cleared


def apply_approval_update(
    record: ApprovalRecord, set_: Mapping[str, Any], remove: Collection[str]
) -> ApprovalRecord:
    """``record`` with the update applied (cleared fields back to their defaults), validated."""
    cleared = check_approval_update(set_, remove)
    data = record.model_dump()
    for name in cleared:
        data[name] = ApprovalRecord.model_fields[name].get_default(call_default_factory=True)
    data.update({name: value for name, value in set_.items() if value is not None})
    return ApprovalRecord.model_validate(data)
