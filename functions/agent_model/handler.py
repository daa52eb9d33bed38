"""Agent CallModel and Finish states: one model step of a task, or its final record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import TypeAdapter

from docket.agent.events import CallModelInput, FinishInput
from docket.agent.factory import get_agent_service
from docket.observability import logger, metrics, tracer

_input: TypeAdapter[CallModelInput | FinishInput] = TypeAdapter(CallModelInput | FinishInput)


@logger.inject_lambda_context(correlation_id_path="task_id")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = _input.validate_python(event)
    service = get_agent_service()
    if isinstance(request, CallModelInput):
        return service.call_model(request.task_id, request.step).model_dump()
    return service.finish(request.task_id, request.outcome, request.error)
