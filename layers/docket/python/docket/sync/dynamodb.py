"""DynamoDB adapters: the source table (read only) and the sync state table.

Sync state: partition key ``pk`` = ``{source}#{item_id}``; a claim is a PutItem on the condition
that no newer ``order`` is stored (``attribute_not_exists(pk) OR #order <= :order``).
"""

from __future__ import annotations

from typing import Any

from docket import aws
from docket.store.dynamodb import _wrap, codec
from docket.sync.service import SyncRecord


class DynamoSourceTable:
    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def get(self, table: str, key_attribute: str, key: str) -> dict[str, Any] | None:
        try:
            resp = self._ddb.get_item(
                TableName=table, Key={key_attribute: {"S": key}}, ConsistentRead=True
            )
        except Exception as exc:
            raise _wrap(exc, f"source table {table} get") from exc
        item = resp.get("Item")
        return codec.from_item(item) if item else None

    def scan(
        self, table: str, segment: int, segments: int, start: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": segments,
            "Limit": limit,
            "ConsistentRead": True,
        }
        if start:
            kwargs["ExclusiveStartKey"] = codec.to_item(start)
        try:
            resp = self._ddb.scan(**kwargs)
        except Exception as exc:
            raise _wrap(exc, f"source table {table} scan") from exc
        last = resp.get("LastEvaluatedKey")
        items = [codec.from_item(i) for i in resp.get("Items", [])]
        return items, (codec.from_item(last) if last else None)


class DynamoSyncState:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def get(self, source: str, item_id: str) -> SyncRecord | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"{source}#{item_id}"}},
                ConsistentRead=True,
            )
        except Exception as exc:
            raise _wrap(exc, "sync table get") from exc
        item = resp.get("Item")
        if not item:
            return None
        data = codec.from_item(item)
        data.pop("pk", None)
        return SyncRecord.model_validate(data)

    def claim(self, record: SyncRecord) -> bool:
        item = codec.to_item(
            {"pk": f"{record.source}#{record.item_id}", **record.model_dump(mode="json")}
        )
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #order <= :order",
                ExpressionAttributeNames={"#order": "order"},
                ExpressionAttributeValues={":order": {"S": record.order}},
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                return False
            raise _wrap(exc, "sync table claim") from exc
        return True
