"""The Step Functions calls the agent makes, behind one small class (tests and the local cloud use
moto's Step Functions; nothing else in the agent imports boto3)."""

from __future__ import annotations

import json
from typing import Any

from docket import aws
from docket.errors import ApprovalClosed, StoreUnavailable

# SendTask* errors meaning the waiting state is gone: the execution ended, timed out or was stopped
_CLOSED = {"InvalidToken", "TaskTimedOut", "TaskDoesNotExist", "ExecutionDoesNotExist"}

DENIED_ERROR = "Docket.ApprovalDenied"  # the ASL's RequestApproval catches it


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class StepFunctions:
    @property
    def _sfn(self) -> Any:
        return aws.client("stepfunctions")

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        try:
            resp = self._sfn.start_execution(
                stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload)
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot start the agent state machine: {exc}") from exc
        return str(resp["executionArn"])

    def stop(self, execution_arn: str, *, error: str, cause: str) -> None:
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause[:32_000])
        except Exception as exc:
            if _code(exc) not in _CLOSED:
                raise StoreUnavailable(f"cannot stop {execution_arn}: {exc}") from exc

    def status(self, execution_arn: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED ("ABORTED" when it is unknown)."""
        try:
            return str(self._sfn.describe_execution(executionArn=execution_arn)["status"])
        except Exception as exc:
            if _code(exc) in _CLOSED:
                return "ABORTED"
            raise StoreUnavailable(f"cannot describe {execution_arn}: {exc}") from exc

    def succeed(self, task_token: str, output: dict[str, Any]) -> None:
        self._send("send_task_success", taskToken=task_token, output=json.dumps(output))

    def fail(self, task_token: str, *, error: str, cause: str) -> None:
        self._send("send_task_failure", taskToken=task_token, error=error, cause=cause[:32_000])

    def _send(self, op: str, **kw: Any) -> None:
        try:
            getattr(self._sfn, op)(**kw)
        except Exception as exc:
            if _code(exc) in _CLOSED:
                raise ApprovalClosed("the task is no longer waiting for this approval") from exc
            raise StoreUnavailable(f"{op} failed: {exc}") from exc
