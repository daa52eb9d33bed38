"""The sync function's two inputs: a stream record, and a step of the backfill state machine."""

from __future__ import annotations

from typing import Any

from docket.config import get_settings
from docket.errors import InvalidRequest
from docket.sync.reconcile import backfill_page
from docket.sync.service import Outcome, SyncService


def _plain(image: Any) -> dict[str, Any] | None:
    from docket.store.dynamodb import _from_dynamo

    if not image:
        return None
    if not isinstance(image, dict):
        image = image.model_dump() if hasattr(image, "model_dump") else dict(image)
    return {k: _from_dynamo(v) for k, v in image.items()}


def stream_change(sync: SyncService, record: Any) -> Outcome:
    """One stream record: the row it names is synced from the table as it is now."""
    source = sync.source_of_table(str(record.eventSourceARN or ""))
    keys = _plain(record.dynamodb.Keys) or {}
    if not isinstance(keys.get(source.key), str):
        raise InvalidRequest(f"{source.table}: key {source.key!r} is not a string: {keys}")
    hint = _plain(record.dynamodb.OldImage) or _plain(record.dynamodb.NewImage)
    return sync.sync_item(source, keys[source.key], hint)


def run_action(sync: SyncService, event: dict[str, Any]) -> dict[str, Any]:
    action = event.get("action")
    source = sync.source(str(event.get("source")))
    if action == "plan":
        segments = int(event.get("segments") or get_settings().sync_backfill_segments)
        return {"source": source.name, "segments": segments, "items": list(range(segments))}
    if action == "page":
        page = backfill_page(
            sync, source, int(event["segment"]), int(event["segments"]), event.get("start")
        )
        return page.model_dump(mode="json")
    raise InvalidRequest(f"unknown sync action {action!r}")


class Backfills:
    """Executions of the backfill state machine."""

    def __init__(self, state_machine_arn: str | None) -> None:
        from docket.errors import ConfigurationError

        if not state_machine_arn:
            raise ConfigurationError(
                "backfills need their state machine: set DOCKET_SYNC_BACKFILL_STATE_MACHINE_ARN"
            )
        self.arn = state_machine_arn

    def _sfn(self) -> Any:
        from docket import aws

        return aws.client("stepfunctions")

    def start(self, source: str, segments: int) -> str:
        import json
        import time

        name = f"{source}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
        self._sfn().start_execution(
            stateMachineArn=self.arn,
            name=name,
            input=json.dumps({"source": source, "segments": segments}),
        )
        return name

    def status(self, name: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED; NotFound for no such run."""
        from docket.errors import NotFound

        sfn = self._sfn()
        arn = self.arn.replace(":stateMachine:", ":execution:") + f":{name}"
        try:
            return str(sfn.describe_execution(executionArn=arn)["status"])
        except sfn.exceptions.ExecutionDoesNotExist as exc:
            raise NotFound(f"no backfill {name}") from exc
