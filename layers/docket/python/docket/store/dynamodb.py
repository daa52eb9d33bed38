"""DynamoDB adapters for the Documents and Chunks tables.

Documents: partition key ``tenant``, sort key ``document_id``.
Chunks: partition key ``pk`` = ``{tenant}#{document_id}``, sort key ``chunk_id``; one Query lists a
document's chunks. Both tables stream NEW_AND_OLD_IMAGES into the next step of the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any

from docket import aws
from docket.errors import StoreRejected, StoreUnavailable
from docket.models import ChunkRecord, DocumentRecord, utcnow


def chunk_pk(tenant: str, document_id: str) -> str:
    return f"{tenant}#{document_id}"


class _Codec:
    """Python values ↔ DynamoDB attribute values, every number exactly.

    DynamoDB numbers are decimals: a float goes in as the decimal of its shortest repr (9.99, not
    9.9900000000000002131628...), and comes back as that float; an integral number comes back as
    an int of any size. Nested maps and lists are converted the same way.
    """

    @cached_property
    def _ser(self) -> Any:
        from boto3.dynamodb.types import TypeSerializer

        return TypeSerializer()

    @cached_property
    def _de(self) -> Any:
        from boto3.dynamodb.types import TypeDeserializer

        return TypeDeserializer()

    def to_item(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: self._ser.serialize(_to_dynamo(v)) for k, v in data.items() if v is not None}

    def from_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {k: _from_dynamo(self._de.deserialize(v)) for k, v in item.items()}


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"DynamoDB cannot store the number {value}")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


codec = _Codec()


# Errors DynamoDB gives for the request itself: retrying it cannot help.
_REJECTIONS = {"ValidationException", "ItemCollectionSizeLimitExceededException"}


def _wrap(exc: Exception, what: str) -> StoreUnavailable | StoreRejected:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in _REJECTIONS:
        return StoreRejected(f"{what}: {exc}")
    return StoreUnavailable(f"{what}: {exc}")


class DynamoDocumentStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def get(self, tenant: str, document_id: str) -> DocumentRecord | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name,
                Key={"tenant": {"S": tenant}, "document_id": {"S": document_id}},
                ConsistentRead=True,
            )
        except Exception as exc:
            raise _wrap(exc, "documents table get") from exc
        item = resp.get("Item")
        return DocumentRecord.model_validate(codec.from_item(item)) if item else None

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], DocumentRecord]:
        """BatchGetItem, 100 keys a request; unprocessed keys are asked again."""
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], DocumentRecord] = {}
        for start in range(0, len(wanted), 100):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [
                        {"tenant": {"S": tenant}, "document_id": {"S": document_id}}
                        for tenant, document_id in wanted[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            for resp in _until_processed(
                self._ddb.batch_get_item, pending, "UnprocessedKeys", "documents table batch get"
            ):
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    doc = DocumentRecord.model_validate(codec.from_item(item))
                    found[(doc.tenant, doc.document_id)] = doc
        return found

    def put(self, doc: DocumentRecord) -> None:
        try:
            self._ddb.put_item(
                TableName=self.table_name, Item=codec.to_item(doc.model_dump(mode="json"))
            )
        except Exception as exc:
            raise _wrap(exc, "documents table put") from exc

    def update(
        self, tenant: str, document_id: str, *, expect_hash: str | None = None, **fields: Any
    ) -> bool:
        fields = {**fields, "updated_at": utcnow().isoformat()}
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, v in enumerate(fields.values()):
            if v is None:
                removes.append(f"#f{i}")
            else:
                values[f":v{i}"] = codec._ser.serialize(v.value if hasattr(v, "value") else v)
                sets.append(f"#f{i} = :v{i}")
        expr = ("SET " + ", ".join(sets) if sets else "") + (
            " REMOVE " + ", ".join(removes) if removes else ""
        )
        condition = "attribute_exists(document_id)"
        if expect_hash is not None:
            names["#h"] = "content_hash"
            values[":h"] = {"S": expect_hash}
            condition += " AND #h = :h"
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": {"tenant": {"S": tenant}, "document_id": {"S": document_id}},
            "UpdateExpression": expr.strip(),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._ddb.update_item(**kwargs)
        except Exception as exc:
            if type(
                exc
            ).__name__ == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in str(exc):
                return False
            raise _wrap(exc, "documents table update") from exc
        return True

    def delete(self, tenant: str, document_id: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self.table_name,
                Key={"tenant": {"S": tenant}, "document_id": {"S": document_id}},
            )
        except Exception as exc:
            raise _wrap(exc, "documents table delete") from exc

    def list(self, tenant: str) -> list[DocumentRecord]:
        out: list[DocumentRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "tenant = :t",
            "ExpressionAttributeValues": {":t": {"S": tenant}},
        }
        try:
            while True:
                resp = self._ddb.query(**kwargs)
                out.extend(DocumentRecord.model_validate(codec.from_item(i)) for i in resp["Items"])
                if "LastEvaluatedKey" not in resp:
                    return out
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "documents table query") from exc


class DynamoChunkStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def list_for_document(self, tenant: str, document_id: str) -> list[ChunkRecord]:
        out: list[ChunkRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": chunk_pk(tenant, document_id)}},
        }
        try:
            while True:
                resp = self._ddb.query(**kwargs)
                out.extend(chunk_from_item(i) for i in resp["Items"])
                if "LastEvaluatedKey" not in resp:
                    return sorted(out, key=lambda c: c.ordinal)
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "chunks table query") from exc

    def scan(self, segment: int, segments: int) -> Iterator[ChunkRecord]:
        """One segment of a parallel Scan (consistent reads) of every tenant's chunks."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": segments,
            "ConsistentRead": True,
        }
        try:
            while True:
                resp = self._ddb.scan(**kwargs)
                yield from (chunk_from_item(i) for i in resp["Items"])
                if "LastEvaluatedKey" not in resp:
                    return
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "chunks table scan") from exc

    def put_many(self, chunks: Sequence[ChunkRecord]) -> None:
        self._batch([{"PutRequest": {"Item": chunk_to_item(c)}} for c in chunks])

    def delete_many(self, tenant: str, document_id: str, chunk_ids: Iterable[str]) -> None:
        pk = chunk_pk(tenant, document_id)
        self._batch(
            [
                {"DeleteRequest": {"Key": {"pk": {"S": pk}, "chunk_id": {"S": cid}}}}
                for cid in chunk_ids
            ]
        )

    def _batch(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.table_name: requests[start : start + 25]}
            writes = _until_processed(
                self._ddb.batch_write_item,
                pending,
                "UnprocessedItems",
                "chunks table batch write",
                max_pause=2.0,
            )
            for _ in writes:
                pass


def _until_processed(
    send: Callable[..., dict[str, Any]],
    pending: dict[str, Any],
    leftover: str,
    what: str,
    max_pause: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """Each response of a batch request, sent again with what DynamoDB left unprocessed
    (``leftover``: UnprocessedKeys / UnprocessedItems) after a growing pause, up to 8 tries."""
    for attempt in range(8):
        try:
            resp = send(RequestItems=pending)
        except Exception as exc:
            raise _wrap(exc, what) from exc
        yield resp
        pending = resp.get(leftover) or {}
        if not pending:
            return
        time.sleep(min(0.05 * 2**attempt, max_pause))
    raise StoreUnavailable(f"{what}: left unprocessed after retries")


def chunk_to_item(chunk: ChunkRecord) -> dict[str, Any]:
    data = chunk.model_dump(mode="json")
    data["pk"] = chunk_pk(chunk.tenant, chunk.document_id)
    return codec.to_item(data)


def chunk_from_item(item: dict[str, Any]) -> ChunkRecord:
    data = codec.from_item(item)
    data.pop("pk", None)
    return ChunkRecord.model_validate(data)


def document_from_image(image: dict[str, Any]) -> DocumentRecord:
    """A DynamoDB stream image (typed JSON) → DocumentRecord."""
    return DocumentRecord.model_validate(codec.from_item(image))
