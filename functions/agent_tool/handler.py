"""Agent RunTool state: one tool call, run at most once per idempotency key (execution, step,
call id, hash of the arguments); or the record of a call whose approval was refused."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from docket.agent.events import RefuseInput, RunToolInput
from docket.agent.factory import get_agent_service, get_tool_runner
from docket.observability import logger, metrics, tracer

_input: TypeAdapter[RunToolInput | RefuseInput] = TypeAdapter(RunToolInput | RefuseInput)


@logger.inject_lambda_context(correlation_id_path="task_id")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = _input.validate_python(event)
    service = get_agent_service()
    call = request.call
    if isinstance(request, RefuseInput):
        return service.refuse(
            request.task_id,
            request.step,
            call.call_id,
            call.n,
            str(request.refusal.get("Error", "")),
            str(request.refusal.get("Cause") or ""),
        )
    run, config = get_tool_runner()
    config.register_lambda_context(context)
    key = service.idempotency_key(request.task_id, request.step, call.call_id, request.execution)
    return run(
        request={
            "idempotency_key": key,
            "task_id": request.task_id,
            "step": request.step,
            "call_id": call.call_id,
            "n": call.n,
            "execution": request.execution,
            "approval": request.approval,
        }
    )
