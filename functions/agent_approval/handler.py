"""Agent RequestApproval state (lambda:invoke.waitForTaskToken): stores the approval with its
task token and notifies people. The execution waits until a decision sends the token back.
``{"action": "sweep"}`` (a schedule) sends decisions that were recorded but never delivered."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.agent.events import RequestApprovalInput
from docket.agent.factory import get_agent_service
from docket.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="task_id")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == "sweep":  # the schedule, and the local cloud's start
        from docket.agent.factory import get_approval_service

        return {"settled": len(get_approval_service().sweep())}
    request = RequestApprovalInput.model_validate(event)
    approval = get_agent_service().request_approval(
        request.task_id,
        request.step,
        request.call.call_id,
        request.call.n,
        request.token,
        request.execution,
    )
    return {"approval_id": approval.approval_id}
