"""The inputs the agent state machine passes its Lambda tasks (state_machines/agent_loop.asl.json).
A Step Functions task has no envelope: handlers validate these models directly."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TaskId = Annotated[str, Field(pattern=r"^task_[0-9a-f]{24}$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallRef(_Input):
    """One item of the Map over a model reply's tool calls (what CallModel returned)."""

    call_id: str
    tool: str
    n: int = Field(ge=1)
    high_risk: bool


class CallModelInput(_Input):
    action: Literal["call_model"]
    task_id: TaskId
    step: int = Field(ge=0)


class FinishInput(_Input):
    action: Literal["finish"]
    task_id: TaskId
    outcome: Literal["final", "step_limit", "budget_exceeded", "failed"]
    error: dict[str, Any] | None = None


class RequestApprovalInput(_Input):
    task_id: TaskId
    step: int = Field(ge=0)
    call: CallRef
    execution: str
    token: str = Field(min_length=1, repr=False)


class RunToolInput(_Input):
    action: Literal["run"]
    task_id: TaskId
    step: int = Field(ge=0)
    call: CallRef
    execution: str
    approval: dict[str, Any] | None = None


class RefuseInput(_Input):
    action: Literal["refuse"]
    task_id: TaskId
    step: int = Field(ge=0)
    call: CallRef
    execution: str
    refusal: dict[str, Any] = Field(description="the caught error: {Error, Cause}")
