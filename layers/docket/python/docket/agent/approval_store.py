"""``DynamoApprovalRepository``: the ``ApprovalRepository`` port (docket/agent/ports.py) on the
agent table.

Items:

- ``pk APPROVAL#{id}``, ``sk APPROVAL``: the record (``arguments`` and ``summary`` as JSON text:
  DynamoDB numbers drop floats). ``notified`` is the string set of channels already told.
  ``gsi1pk``/``gsi1sk`` place it in one list of the sparse index ``gsi1``, derived from its
  fields on every write:

  - pending: ``PENDING#{tenant}`` / ``created_at`` (one Query lists a tenant's, oldest first);
  - decided (approved or denied) and not yet delivered: ``UNDELIVERED`` / ``decided_at`` (the
    sweeper's Query);
  - otherwise neither (the attributes are removed).

- ``pk TASKAPPROVALS#{task_id}``, ``sk APPROVAL#{id}``: a key-only pointer (with the id), written
  in the same transaction, so a task's approvals are one Query (no Scan), in a partition of its
  own that the task's timeline query never reads.

Every update is conditional on the status (``attribute_exists(pk) AND #status = :expect``): that
condition, not the Step Functions call, makes a decision single-use.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic_core import to_jsonable_python

from docket import aws
from docket.agent.models import ApprovalRecord, ApprovalStatus, check_approval_update
from docket.errors import StoreUnavailable
from docket.observability import logger
from docket.store.dynamodb import codec

# gsi1 partition of decisions not yet delivered to their task (ApprovalService.sweep)
UNDELIVERED = "UNDELIVERED"

_JSON_FIELDS = ("arguments", "summary")  # stored as JSON text: DynamoDB numbers drop floats
_DECIDED = ("approved", "denied")
_INDEX = ("gsi1pk", "gsi1sk")

# what an update does to the gsi1 entry: keep it, read the item to know, or this entry (None: none)
_IndexChange = Literal["keep", "read"] | tuple[str, str] | None


def _is_conditional_failure(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in ("ConditionalCheckFailedException", "TransactionCanceledException")


class DynamoApprovalRepository:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    # --- writes --------------------------------------------------------------------------------

    def create(self, record: ApprovalRecord) -> bool:
        data = self._to_item(record)
        index = _index(data)
        if index is not None:
            data.update(gsi1pk=index[0], gsi1sk=index[1])
        pointer = {"pk": f"TASKAPPROVALS#{record.task_id}", "sk": f"APPROVAL#{record.approval_id}"}
        new = "attribute_not_exists(pk)"
        try:
            self._ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": codec.to_item(data),
                            "ConditionExpression": new,
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": codec.to_item({**pointer, "approval_id": record.approval_id}),
                            "ConditionExpression": new,
                        }
                    },
                ]
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return False
            raise StoreUnavailable(f"cannot store approval {record.approval_id}: {exc}") from exc
        logger.info("approval requested", approval_id=record.approval_id, tool=record.tool)
        return True

    def mark_notified(self, approval_id: str, channel: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(approval_id),
                UpdateExpression="ADD notified :c",
                ExpressionAttributeValues={":c": {"SS": [channel]}},
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot record the notice of {approval_id}: {exc}") from exc

    def update(
        self,
        approval_id: str,
        *,
        expect: ApprovalStatus,
        set_: Mapping[str, Any],
        remove: Collection[str] = (),
    ) -> ApprovalRecord | None:
        cleared = check_approval_update(set_, remove)
        if not set_ and not cleared:  # nothing to write: the record, if its status is expected
            record = self.get(approval_id)
            return record if record is not None and record.status == expect else None
        values = {name: _stored(name, value) for name, value in set_.items() if value is not None}
        change = _index_change(expect, values, cleared)
        if change == "read":  # the new entry needs fields the update does not carry
            item = self._item(approval_id)
            if item is None:
                return None
            if self._record(item).status != expect:
                return None
            data = {k: v for k, v in codec.from_item(item).items() if k not in cleared}
            change = _index({**data, **values})
        if change is None:
            cleared = cleared | set(_INDEX)
        elif change != "keep":
            values.update(gsi1pk=change[0], gsi1sk=change[1])
        return self._conditional_update(approval_id, expect, values, cleared)

    def _conditional_update(
        self, approval_id: str, expect: str, values: Mapping[str, Any], cleared: Collection[str]
    ) -> ApprovalRecord | None:
        names = {"#status": "status"}
        attrs: dict[str, Any] = {":expect": {"S": expect}}
        sets, removes = [], []
        for i, (name, value) in enumerate(codec.to_item(dict(values)).items()):
            names[f"#n{i}"] = name
            attrs[f":v{i}"] = value
            sets.append(f"#n{i} = :v{i}")
        for i, name in enumerate(sorted(cleared)):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expr = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE " + ", ".join(removes) if removes else ""
        )
        try:
            resp = self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(approval_id),
                UpdateExpression=expr.strip(),
                ConditionExpression="attribute_exists(pk) AND #status = :expect",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attrs,
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                return None
            raise StoreUnavailable(f"cannot update approval {approval_id}: {exc}") from exc
        return self._record(resp["Attributes"])

    # --- reads ---------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRecord | None:
        item = self._item(approval_id)
        return self._record(item) if item else None

    def notified(self, approval_id: str) -> set[str]:
        item = self._item(approval_id)
        return set(item.get("notified", {}).get("SS", [])) if item else set()

    def list_pending(self, tenant: str) -> list[ApprovalRecord]:
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": f"PENDING#{tenant}"}},
            ScanIndexForward=True,
        )
        return [self._record(i) for i in items]

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        pointers = self._query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={
                ":p": {"S": f"TASKAPPROVALS#{task_id}"},
                ":s": {"S": "APPROVAL#"},
            },
        )
        records = [r for p in pointers if (r := self.get(str(p["approval_id"]["S"])))]
        return sorted(records, key=lambda r: r.created_at)

    def undelivered(self, decided_before: datetime) -> list[ApprovalRecord]:
        items = self._query(
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p AND gsi1sk <= :t",
            ExpressionAttributeValues={
                ":p": {"S": UNDELIVERED},
                ":t": {"S": decided_before.isoformat()},
            },
        )
        return [self._record(i) for i in items]

    def _item(self, approval_id: str) -> dict[str, Any] | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name, Key=self._key(approval_id), ConsistentRead=True
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot read approval {approval_id}: {exc}") from exc
        return resp.get("Item")  # type: ignore[no-any-return]

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        try:
            while True:
                resp = self._ddb.query(TableName=self.table_name, **kwargs)
                items.extend(resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    return items
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise StoreUnavailable(f"cannot query approvals: {exc}") from exc

    # --- items ---------------------------------------------------------------------------------

    @staticmethod
    def _key(approval_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"APPROVAL#{approval_id}"}, "sk": {"S": "APPROVAL"}}

    @staticmethod
    def _to_item(record: ApprovalRecord) -> dict[str, Any]:
        data = record.model_dump(mode="json")
        for name in _JSON_FIELDS:
            data[name] = json.dumps(data[name])
        return {"pk": f"APPROVAL#{record.approval_id}", "sk": "APPROVAL", **data}

    @staticmethod
    def _record(item: dict[str, Any]) -> ApprovalRecord:
        data = codec.from_item(item)
        for name in _JSON_FIELDS:
            if isinstance(data.get(name), str):
                data[name] = json.loads(data[name])
        return ApprovalRecord.model_validate(data)


def _stored(name: str, value: Any) -> Any:
    """A field's value as the item holds it (times set by an update as ``isoformat()``)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if name in _JSON_FIELDS:
        return json.dumps(to_jsonable_python(value))
    return to_jsonable_python(value)


def _index(data: Mapping[str, Any]) -> tuple[str, str] | None:
    """The gsi1 entry of an item (its stored fields): which list it is in, and where."""
    status = data.get("status")
    if status == "pending":
        return f"PENDING#{data['tenant']}", str(data["created_at"])
    if status in _DECIDED and not data.get("delivered_at") and data.get("decided_at"):
        return UNDELIVERED, str(data["decided_at"])
    return None


def _index_change(expect: str, values: Mapping[str, Any], cleared: Collection[str]) -> _IndexChange:
    """The gsi1 entry after an update, from the update alone where it tells (a decision, its
    delivery, a close, a new token); "read" where it depends on fields the update leaves."""
    status = values.get("status", expect)
    if status == "pending":
        return "keep" if expect == "pending" else "read"  # back to pending: tenant, created_at
    if status not in _DECIDED:
        return None
    if values.get("delivered_at"):
        return None
    touched = {"decided_at", "delivered_at"} & (set(values) | set(cleared))
    if status == expect and not touched:
        return "keep"
    if "delivered_at" in cleared and touched == {"decided_at", "delivered_at"}:
        decided_at = values.get("decided_at")
        return (UNDELIVERED, str(decided_at)) if decided_at else None
    return "read"
