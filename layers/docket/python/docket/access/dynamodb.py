"""DynamoDB adapters for API keys and rate-limit buckets.

Keys table: partition key ``key_id``; the ``by_tenant`` index (``tenant``, ``created_at``) lists a
tenant's keys. The item holds the record and ``digest`` (SHA-256 of the secret), never the secret.

Limits table: partition key ``pk`` = the bucket's id; ``tokens`` and ``at`` (the level and when it
was measured), ``v`` (a version each take increments) and ``expires_at`` (TTL: when the bucket
would be full again anyway, plus a day). A take reads the item, refills it to now in Python, and
writes the new level on the condition that ``v`` is still the one it read: an atomic
compare-and-set, retried a few times when another instance got there first.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from docket import aws
from docket.access.keys import ApiKey
from docket.access.limits import Bucket, Take, wait_for
from docket.errors import StoreUnavailable
from docket.store.dynamodb import _wrap, codec

TENANT_INDEX = "by_tenant"
MAX_ATTEMPTS = 8


def _conditional_failure(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return bool(code == "ConditionalCheckFailedException")


class DynamoKeyStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def put(self, key: ApiKey, digest: str) -> None:
        item = codec.to_item({**key.model_dump(mode="json"), "digest": digest})
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(key_id)",
            )
        except Exception as exc:
            raise _wrap(exc, "keys table put") from exc

    def get(self, key_id: str) -> tuple[ApiKey, str] | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name, Key={"key_id": {"S": key_id}}, ConsistentRead=True
            )
        except Exception as exc:
            raise _wrap(exc, "keys table get") from exc
        item = resp.get("Item")
        if not item:
            return None
        data = codec.from_item(item)
        digest = str(data.pop("digest"))
        return ApiKey.model_validate(data), digest

    def list(self, tenant: str) -> list[ApiKey]:
        keys: list[ApiKey] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": TENANT_INDEX,
            "KeyConditionExpression": "tenant = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant}},
        }
        try:
            while True:
                resp = self._ddb.query(**kwargs)
                for item in resp.get("Items", []):
                    data = codec.from_item(item)
                    data.pop("digest", None)
                    keys.append(ApiKey.model_validate(data))
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "keys table query") from exc
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        try:
            resp = self._ddb.update_item(
                TableName=self.table_name,
                Key={"key_id": {"S": key_id}},
                # the tenant in the condition: another tenant's key id revokes nothing
                ConditionExpression="tenant = :t",
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                ExpressionAttributeValues={":t": {"S": tenant}, ":at": {"S": at.isoformat()}},
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _conditional_failure(exc):
                return None
            raise _wrap(exc, "keys table revoke") from exc
        data = codec.from_item(resp["Attributes"])
        data.pop("digest", None)
        return ApiKey.model_validate(data)


class DynamoBuckets:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def _read(self, bucket: Bucket, now: float) -> tuple[float, int | None]:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name, Key={"pk": {"S": bucket.id}}, ConsistentRead=True
            )
        except Exception as exc:
            raise _wrap(exc, "limits table get") from exc
        item = resp.get("Item")
        if not item:
            return bucket.capacity, None
        data = codec.from_item(item)
        return bucket.refill(float(data["tokens"]), float(data["at"]), now), int(data["v"])

    def take(self, bucket: Bucket, cost: float, now: float) -> Take:
        for _ in range(MAX_ATTEMPTS):
            tokens, version = self._read(bucket, now)
            if tokens < cost:
                return Take(False, tokens, wait_for(bucket, tokens, cost))
            left = tokens - cost
            values = {
                ":tokens": {"N": repr(left)},
                ":at": {"N": repr(now)},
                ":next": {"N": str((version or 0) + 1)},
                ":exp": {
                    "N": str(math.ceil(now + wait_for(bucket, left, bucket.capacity)) + 86_400)
                },
            }
            if version is None:
                condition = "attribute_not_exists(pk)"
            else:
                condition = "v = :v"
                values[":v"] = {"N": str(version)}
            try:
                self._ddb.update_item(
                    TableName=self.table_name,
                    Key={"pk": {"S": bucket.id}},
                    UpdateExpression="SET tokens = :tokens, #at = :at, v = :next, expires_at = :exp",
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#at": "at"},
                    ExpressionAttributeValues=values,
                )
            except Exception as exc:
                if _conditional_failure(exc):
                    continue  # another instance took first: read again
                raise _wrap(exc, "limits table update") from exc
            return Take(True, left, 0.0)
        raise StoreUnavailable(f"limits table: {bucket.id} contended {MAX_ATTEMPTS} times")

    def level(self, bucket: Bucket, now: float) -> float:
        return self._read(bucket, now)[0]
