"""Re-embed: the steps of state_machines/reembed.asl.json ({"action": ..., "generation": n}),
and SageMaker's transform-job state-change events (EventBridge), which resume the waiting build."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from docket.generations.factory import get_rebuild_service
from docket.generations.jobs import JOB_EVENT
from docket.observability import logger, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any] | None:
    service = get_rebuild_service()
    if event.get("detail-type") == JOB_EVENT:
        service.on_job_event(event)
        return None
    return service.run(str(event["action"]), event)
