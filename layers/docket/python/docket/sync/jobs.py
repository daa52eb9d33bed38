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
    """A step of state_machines/sync_backfill.asl.json: ``plan`` (a segmented scan, or an
    export to S3 started), ``page`` (a page of a segment), ``export_status`` (the export's data
    files once it is done), ``file`` (a page of rows of one exported file)."""
    action = event.get("action")
    source = sync.source(str(event.get("source")))
    settings = get_settings()
    if action == "plan":
        segments = int(event.get("segments") or settings.sync_backfill_segments)
        plan: dict[str, Any] = {"source": source.name, "method": settings.sync_backfill_method}
        if settings.sync_backfill_method == "export":
            plan["export_arn"] = start_export(
                source.table, settings.text_bucket, export_prefix(source.name)
            )
        plan.update(segments=segments, items=list(range(segments)))
        return plan
    if action == "page":
        page = backfill_page(
            sync, source, int(event["segment"]), int(event["segments"]), event.get("start")
        )
        return page.model_dump(mode="json")
    if action == "export_status":
        return export_status(str(event["export_arn"]), settings.text_bucket)
    if action == "file":
        return file_page(
            sync, source, settings.text_bucket, str(event["key"]), int(event.get("start") or 0)
        )
    raise InvalidRequest(f"unknown sync action {action!r}")


FILE_PAGE = 5000  # rows of an exported file per step


def export_prefix(source: str) -> str:
    return f"{get_settings().sync_export_prefix.rstrip('/')}/{source}/"


def start_export(table: str, bucket: str, prefix: str) -> str:
    """An export of the table as it is now (point-in-time recovery must be on): its ARN."""
    from docket import aws

    ddb = aws.client("dynamodb")
    arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    resp = ddb.export_table_to_point_in_time(
        TableArn=arn, S3Bucket=bucket, S3Prefix=prefix, ExportFormat="DYNAMODB_JSON"
    )
    return str(resp["ExportDescription"]["ExportArn"])


def export_status(export_arn: str, bucket: str) -> dict[str, Any]:
    """IN_PROGRESS, FAILED, or COMPLETED with the export's data files (from its manifest)."""
    import json

    from docket import aws

    described = aws.client("dynamodb").describe_export(ExportArn=export_arn)["ExportDescription"]
    status = str(described["ExportStatus"])
    out: dict[str, Any] = {"status": status, "files": []}
    if status == "COMPLETED":
        s3 = aws.client("s3")
        if described.get("ExportManifest"):  # .../manifest-summary.json, beside manifest-files
            files_key = str(described["ExportManifest"]).rsplit("/", 1)[0] + "/manifest-files.json"
            body = s3.get_object(Bucket=bucket, Key=files_key)["Body"].read()
            out["files"] = [
                json.loads(line)["dataFileS3Key"]
                for line in body.decode().splitlines()
                if line.strip()
            ]
        else:  # no manifest (an emulator): the data files under the export's prefix, listed
            export_id = export_arn.rsplit("/", 1)[1]
            pages = s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=str(described.get("S3Prefix") or "")
            )
            keys = [
                o["Key"]
                for page in pages
                for o in page.get("Contents", [])
                if "AWSDynamoDB/" in o["Key"] and "/data/" in o["Key"]
            ]
            # this export's folder if it is named by the export's id (older exports' rows are
            # harmless anyway: each row goes through its version claim)
            own = [k for k in keys if f"AWSDynamoDB/{export_id}/" in k]
            out["files"] = sorted(own or keys)
    elif status == "FAILED":
        out["reason"] = str(described.get("FailureMessage") or described.get("FailureCode"))
    return out


def file_page(sync: SyncService, source: Any, bucket: str, key: str, start: int) -> dict[str, Any]:
    """Rows ``start`` to ``start + FILE_PAGE`` of an exported data file (gzipped DynamoDB JSON,
    one ``{"Item": ...}`` per line), each applied through its version claim: a row deleted or
    changed since the export is never brought back (docket.sync.service)."""
    import gzip
    import json
    from collections import Counter

    from docket import aws
    from docket.store.dynamodb import codec

    data = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    lines = [line for line in gzip.decompress(data).decode().splitlines() if line.strip()]
    rows = [codec.from_item(json.loads(line)["Item"]) for line in lines[start : start + FILE_PAGE]]
    outcomes = Counter(sync.apply_row(source, row) for row in rows)
    end = start + len(rows)
    done = end >= len(lines)
    return {
        "key": key,
        "start": None if done else end,
        "rows": len(rows),
        "outcomes": dict(outcomes),
        "done": done,
    }


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
