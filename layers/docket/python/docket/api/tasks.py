"""Agent task routes: start a task, read its timeline, stop it. The loop itself runs in the agent
state machine (docket.agent.service)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, ConfigDict, Field

from docket.agent.models import TaskRecord
from docket.models import JSON_INTEGER

router = APIGatewayHttpRouter()

TaskIdParam = Annotated[str, PathParam(pattern=r"^task_[0-9a-f]{24}$")]


class CreateTaskRequest(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    prompt: str = Field(min_length=1, max_length=20_000, description="the task, in plain words")
    max_steps: Annotated[int, Field(ge=1, le=100), JSON_INTEGER] | None = Field(
        default=None, description="model calls allowed (default: the configured cap)"
    )


class TaskResponse(BaseModel):
    task: TaskRecord


def _principal() -> Any:
    """The caller; an API key needs the ``tasks`` scope."""
    from docket.auth import principal_from_event, require_scope

    caller = principal_from_event(router.current_event.raw_event)
    return require_scope(caller, "tasks", to="agent tasks")


def _service() -> Any:
    from docket.agent.factory import get_agent_service

    return get_agent_service()


@router.post("/tasks")
def create_task(body: CreateTaskRequest) -> Response[TaskResponse]:
    task = _service().start(_principal(), body.prompt, body.max_steps)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=TaskResponse(task=task),
        headers={"Location": f"/tasks/{task.task_id}"},
    )


@router.get("/tasks/<task_id>")
def get_task(task_id: TaskIdParam) -> dict[str, Any]:
    """The task, its timeline (every model call and tool call: input, output, latency, tokens,
    cost) and its approvals."""
    return _service().show(_principal(), task_id)  # type: ignore[no-any-return]


@router.delete("/tasks/<task_id>")
def stop_task(task_id: TaskIdParam) -> Response[TaskResponse]:
    task = _service().stop(_principal(), task_id)
    return Response(
        status_code=202, content_type=content_types.APPLICATION_JSON, body=TaskResponse(task=task)
    )
