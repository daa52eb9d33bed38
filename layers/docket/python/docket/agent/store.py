"""Where a task lives: its record and timeline in the agent table, its conversation in the agent
bucket (one object per message, so a retried step overwrites rather than duplicates), and the
tenant's monthly token budget. Key layout: docket.agent.models."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from docket import aws
from docket.agent.models import TERMINAL_STATUSES, StepRecord, TaskRecord
from docket.errors import NotFound, StoreUnavailable
from docket.models import utcnow
from docket.providers.llm import ChatMessage
from docket.store.dynamodb import codec

_STEP_PREFIX = "STEP#"


def _task_key(task_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"TASK#{task_id}"}, "sk": {"S": "TASK"}}


def _wrap(exc: Exception, what: str) -> StoreUnavailable:
    return StoreUnavailable(f"agent store: {what}: {exc}")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class TaskStore:
    def __init__(self, table_name: str, bucket: str) -> None:
        self.table_name = table_name
        self.bucket = bucket

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    @property
    def _s3(self) -> Any:
        return aws.client("s3")

    # --- tasks ----------------------------------------------------------------------------------

    def create(self, task: TaskRecord) -> None:
        item = codec.to_item(
            {
                "pk": f"TASK#{task.task_id}",
                "sk": "TASK",
                "gsi1pk": f"TENANT#{task.tenant}",
                "gsi1sk": task.created_at.isoformat(),
                "record": task.model_dump_json(),
                "terminal": False,
            }
        )
        try:
            self._ddb.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except Exception as exc:
            raise _wrap(exc, "create task") from exc

    def get(self, task_id: str) -> TaskRecord:
        try:
            item = self._ddb.get_item(
                TableName=self.table_name, Key=_task_key(task_id), ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise _wrap(exc, "get task") from exc
        if not item:
            raise NotFound(f"task {task_id} not found")
        return TaskRecord.model_validate_json(item["record"]["S"])

    def save(self, task: TaskRecord, *, unless_terminal: bool = False) -> bool:
        """Write the record. With ``unless_terminal``, a task already ended (stopped by a person
        while a step ran, say) is left as it is and False is returned."""
        task = task.model_copy(update={"updated_at": utcnow()})
        names = {"#r": "record", "#t": "terminal"}
        values: dict[str, Any] = {
            ":r": {"S": task.model_dump_json()},
            ":terminal": {"BOOL": task.status in TERMINAL_STATUSES},
        }
        condition: dict[str, Any] = {}
        if unless_terminal:
            values[":no"] = {"BOOL": False}
            condition["ConditionExpression"] = "attribute_not_exists(#t) OR #t = :no"
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=_task_key(task.task_id),
                UpdateExpression="SET #r = :r, #t = :terminal",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **condition,
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise _wrap(exc, "save task") from exc
        return True

    def unfinished(self) -> list[TaskRecord]:
        """Every tenant's tasks not yet ended (a Scan: for recovery after a crash, not requests)."""
        tasks: list[TaskRecord] = []
        try:
            for page in self._ddb.get_paginator("scan").paginate(
                TableName=self.table_name,
                FilterExpression="sk = :task AND #t = :no",
                ExpressionAttributeNames={"#t": "terminal"},
                ExpressionAttributeValues={":task": {"S": "TASK"}, ":no": {"BOOL": False}},
            ):
                tasks += [TaskRecord.model_validate_json(i["record"]["S"]) for i in page["Items"]]
        except Exception as exc:
            raise _wrap(exc, "scan unfinished tasks") from exc
        return tasks

    # --- the timeline ---------------------------------------------------------------------------

    def record_step(self, step: StepRecord) -> None:
        """Idempotent: a retried step overwrites its own entry."""
        item = codec.to_item(
            {
                "pk": f"TASK#{step.task_id}",
                # kind last: a call's approval and its run are two entries, "approval" first
                "sk": f"{_STEP_PREFIX}{step.seq:04d}#{step.n:02d}#{step.kind}",
                "record": step.model_dump_json(),
            }
        )
        try:
            self._ddb.put_item(TableName=self.table_name, Item=item)
        except Exception as exc:
            raise _wrap(exc, "record step") from exc

    def timeline(self, task_id: str) -> list[StepRecord]:
        out: list[StepRecord] = []
        kw: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :p)",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"TASK#{task_id}"},
                ":p": {"S": _STEP_PREFIX},
            },
            "ConsistentRead": True,
        }
        try:
            while True:
                resp = self._ddb.query(**kw)
                out.extend(StepRecord.model_validate_json(i["record"]["S"]) for i in resp["Items"])
                if "LastEvaluatedKey" not in resp:
                    return out
                kw["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "read timeline") from exc

    # --- the conversation -----------------------------------------------------------------------

    def _message_key(self, task_id: str, turn: int, n: int) -> str:
        return f"tasks/{task_id}/messages/{turn:04d}-{n:03d}.json"

    def put_message(self, task_id: str, turn: int, n: int, message: ChatMessage) -> str:
        """Turn 0 is the task; turn s+1 holds model step s's reply (n=0) and its tool results."""
        key = self._message_key(task_id, turn, n)
        self.put_blob(key, message.model_dump_json().encode(), "application/json")
        return key

    def get_message(self, task_id: str, turn: int, n: int) -> ChatMessage | None:
        key = self._message_key(task_id, turn, n)
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise _wrap(exc, f"get {key}") from exc
        return ChatMessage.model_validate_json(body)

    def messages(self, task_id: str) -> list[ChatMessage]:
        prefix = f"tasks/{task_id}/messages/"
        keys: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                keys.extend(o["Key"] for o in page.get("Contents", []))
        except Exception as exc:
            raise _wrap(exc, "list messages") from exc
        return [ChatMessage.model_validate_json(self.get_blob(k)) for k in sorted(keys)]

    def put_blob(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise _wrap(exc, f"put {key}") from exc

    def get_blob(self, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise _wrap(exc, f"get {key}") from exc

    # --- the tenant's token budget ----------------------------------------------------------------

    @staticmethod
    def period(now: datetime | None = None) -> str:
        return (now or utcnow()).strftime("%Y-%m")

    def tokens_used(self, tenant: str, period: str | None = None) -> int:
        try:
            item = self._ddb.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"BUDGET#{tenant}"}, "sk": {"S": period or self.period()}},
                ConsistentRead=True,
            ).get("Item")
        except Exception as exc:
            raise _wrap(exc, "read budget") from exc
        return int(item["tokens"]["N"]) if item else 0

    def reserve_tokens(
        self, tenant: str, tokens: int, limit: int, period: str | None = None
    ) -> bool:
        """Add ``tokens`` to the month's usage only if the total stays within ``limit``: one
        conditional update, so parallel tasks of a tenant cannot together pass its budget.
        False (nothing added) when it would."""
        if tokens > limit:
            return False
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"BUDGET#{tenant}"}, "sk": {"S": period or self.period()}},
                UpdateExpression="ADD #n :n",
                ConditionExpression="attribute_not_exists(#n) OR #n <= :room",
                ExpressionAttributeNames={"#n": "tokens"},
                ExpressionAttributeValues={
                    ":n": {"N": str(int(tokens))},
                    ":room": {"N": str(int(limit) - int(tokens))},
                },
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise _wrap(exc, "reserve budget") from exc
        return True

    def add_tokens(self, tenant: str, tokens: int, period: str | None = None) -> int:
        """Atomically add to the month's usage (negative: give back); returns the new total."""
        try:
            resp = self._ddb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"BUDGET#{tenant}"}, "sk": {"S": period or self.period()}},
                UpdateExpression="ADD #n :n",
                ExpressionAttributeNames={"#n": "tokens"},
                ExpressionAttributeValues={":n": {"N": str(int(tokens))}},
                ReturnValues="UPDATED_NEW",
            )
        except Exception as exc:
            raise _wrap(exc, "update budget") from exc
        return int(resp["Attributes"]["tokens"]["N"])


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
