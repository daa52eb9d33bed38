"""The cache in DynamoDB: one table, partition key ``pk``, sort key ``sk``, TTL ``expires_at``.

- An entry: ``pk`` = its partition, ``sk`` = ``q#{entry_id}``; the question's vector as float32
  bytes (base64). The semantic tier reads a partition's entries with one Query (a partition holds one
  tenant's questions for one group set, generation and answerer: small).
- A link per chunk an entry depends on: ``pk`` = ``dep#{tenant}#{chunk_id}``, ``sk`` =
  ``{partition}|{entry_id}``. Evicting a chunk queries its links and deletes the entries and
  links. Links expire with their entry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from docket import aws
from docket.cache.port import CacheEntry
from docket.store.dynamodb import _wrap


def _entry_item(entry: CacheEntry) -> dict[str, Any]:
    # float32 bytes, as base64 text (a string attribute: tools that dump items as JSON take it)
    vector = base64.b64encode(np.asarray(entry.vector, dtype=np.float32).tobytes()).decode()
    return {
        "pk": {"S": entry.partition},
        "sk": {"S": f"q#{entry.entry_id}"},
        "tenant": {"S": entry.tenant},
        "question": {"S": entry.question},
        "terms": {"S": " ".join(entry.terms)},
        "vector": {"S": vector},
        "documents": {"S": json.dumps(entry.documents)},
        "response": {"S": entry.response},
        "chunk_ids": {"S": " ".join(entry.chunk_ids)},
        "created_at": {"N": repr(entry.created_at)},
        "expires_at": {"N": str(int(entry.expires_at) + 1)},
        "expires_exact": {"N": repr(entry.expires_at)},
    }


def _entry(item: dict[str, Any]) -> CacheEntry:
    raw = base64.b64decode(item["vector"]["S"])
    return CacheEntry(
        partition=item["pk"]["S"],
        entry_id=item["sk"]["S"][2:],
        tenant=item["tenant"]["S"],
        question=item["question"]["S"],
        terms=item["terms"]["S"].split(),
        vector=np.frombuffer(bytes(raw), dtype=np.float32).tolist(),
        response=item["response"]["S"],
        chunk_ids=item["chunk_ids"]["S"].split(),
        documents=json.loads(item.get("documents", {}).get("S") or "{}"),
        created_at=float(item["created_at"]["N"]),
        expires_at=float(item["expires_exact"]["N"]),
    )


class DynamoCacheStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    @property
    def _ddb(self) -> Any:
        return aws.client("dynamodb")

    def get(self, partition: str, entry_id: str) -> CacheEntry | None:
        try:
            resp = self._ddb.get_item(
                TableName=self.table_name,
                Key={"pk": {"S": partition}, "sk": {"S": f"q#{entry_id}"}},
                ConsistentRead=True,
            )
        except Exception as exc:
            raise _wrap(exc, "cache get") from exc
        item = resp.get("Item")
        return _entry(item) if item else None

    def candidates(self, partition: str, limit: int) -> Sequence[CacheEntry]:
        """Without their responses (the bulk of an item): ``get`` reads the one that matches."""
        try:
            resp = self._ddb.query(
                TableName=self.table_name,
                KeyConditionExpression="pk = :p AND begins_with(sk, :q)",
                ExpressionAttributeValues={":p": {"S": partition}, ":q": {"S": "q#"}},
                ProjectionExpression="pk, sk, tenant, question, terms, vector, created_at, "
                "expires_exact",
                Limit=limit,
            )
        except Exception as exc:
            raise _wrap(exc, "cache query") from exc
        # read without them: an entry's response and documents come with ``get``
        blank = {"response": {"S": ""}, "chunk_ids": {"S": ""}}
        entries = [_entry({**i, **blank}) for i in resp.get("Items", [])]
        return sorted(entries, key=lambda e: -e.created_at)

    def put(self, entry: CacheEntry) -> None:
        links = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": f"dep#{entry.tenant}#{chunk_id}"},
                        "sk": {"S": f"{entry.partition}|{entry.entry_id}"},
                        "expires_at": {"N": str(int(entry.expires_at) + 1)},
                    }
                }
            }
            for chunk_id in dict.fromkeys(entry.chunk_ids)
        ]
        try:
            # the links first: an entry is never stored without the way to evict it
            for start in range(0, len(links), 25):
                pending = {self.table_name: links[start : start + 25]}
                while pending:
                    resp = self._ddb.batch_write_item(RequestItems=pending)
                    pending = resp.get("UnprocessedItems") or {}
            self._ddb.put_item(TableName=self.table_name, Item=_entry_item(entry))
        except Exception as exc:
            raise _wrap(exc, "cache put") from exc

    def evict(self, tenant: str, chunk_ids: Iterable[str]) -> int:
        evicted = 0
        try:
            for chunk_id in dict.fromkeys(chunk_ids):
                pk = f"dep#{tenant}#{chunk_id}"
                kwargs: dict[str, Any] = {
                    "TableName": self.table_name,
                    "KeyConditionExpression": "pk = :p",
                    "ExpressionAttributeValues": {":p": {"S": pk}},
                }
                while True:
                    resp = self._ddb.query(**kwargs)
                    for link in resp.get("Items", []):
                        partition, entry_id = link["sk"]["S"].rsplit("|", 1)
                        gone = self._ddb.delete_item(
                            TableName=self.table_name,
                            Key={"pk": {"S": partition}, "sk": {"S": f"q#{entry_id}"}},
                            ReturnValues="ALL_OLD",
                        )
                        evicted += "Attributes" in gone
                        self._ddb.delete_item(
                            TableName=self.table_name, Key={"pk": {"S": pk}, "sk": link["sk"]}
                        )
                    if "LastEvaluatedKey" not in resp:
                        break
                    kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except Exception as exc:
            raise _wrap(exc, "cache evict") from exc
        return evicted
