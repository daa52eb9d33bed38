"""The DynamoDB document store's batch read, against moto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from docket.models import DocumentRecord, DocumentStatus, document_id_for
from docket.store.dynamodb import DynamoDocumentStore

TABLE = "docs"


@pytest.fixture
def store() -> Iterator[DynamoDocumentStore]:
    with mock_aws():
        import boto3

        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "tenant", "KeyType": "HASH"},
                {"AttributeName": "document_id", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "tenant", "AttributeType": "S"},
                {"AttributeName": "document_id", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoDocumentStore(TABLE)


def did(tenant: str, n: int) -> str:
    return document_id_for(tenant, f"f{n}.txt")


def doc(tenant: str, n: int) -> DocumentRecord:
    return DocumentRecord(
        tenant=tenant,
        document_id=did(tenant, n),
        source=f"f{n}.txt",
        s3_key=f"tenants/{tenant}/f{n}.txt",
        status=DocumentStatus.PENDING,
        chunk_count=n,
    )


def test_get_many_reads_every_existing_key_across_batches(store: DynamoDocumentStore) -> None:
    # Given 230 documents in two tenants (more than one BatchGetItem of 100 keys)
    for n in range(230):
        store.put(doc("acme" if n % 2 else "globex", n))
    keys = [("acme", did("acme", n)) if n % 2 else ("globex", did("globex", n)) for n in range(230)]
    # When they are read together with keys that do not exist and a repeated key
    found = store.get_many([*keys, ("acme", did("acme", 999)), ("other", did("acme", 1)), keys[0]])
    # Then every existing record comes back under its key, as get() reads it, and nothing else
    assert set(found) == set(keys)
    assert found[("acme", did("acme", 7))] == store.get("acme", did("acme", 7))
    assert found[("globex", did("globex", 100))].chunk_count == 100


def test_get_many_of_nothing_is_empty(store: DynamoDocumentStore) -> None:
    assert store.get_many([]) == {}


def test_unprocessed_keys_are_asked_again(store: DynamoDocumentStore, monkeypatch: Any) -> None:
    # Given a table that answers a batch in two parts (DynamoDB may leave keys unprocessed)
    store.put(doc("acme", 1))
    store.put(doc("acme", 2))
    real = store._ddb
    calls: list[int] = []

    class Partial:
        def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
            keys = RequestItems[TABLE]["Keys"]
            calls.append(len(keys))
            first = {TABLE: {**RequestItems[TABLE], "Keys": keys[:1]}}
            resp = real.batch_get_item(RequestItems=first)
            rest = keys[1:]
            if rest:
                resp["UnprocessedKeys"] = {TABLE: {**RequestItems[TABLE], "Keys": rest}}
            return dict(resp)

    monkeypatch.setattr(DynamoDocumentStore, "_ddb", property(lambda self: Partial()))
    # When both are read
    found = store.get_many([("acme", did("acme", 1)), ("acme", did("acme", 2))])
    # Then both arrive, the second on a retry
    assert set(found) == {("acme", did("acme", 1)), ("acme", did("acme", 2))}
    assert calls == [2, 1]


def test_the_codec_round_trips_every_number_exactly() -> None:
    from docket.store.dynamodb import codec

    data = {
        "price": 9.99,
        "tiny": 1e-12,
        "count": 3,
        "big": 2**63 + 1,
        "negative": -0.5,
        "flag": True,
        "nested": {"scores": [1.5, 2, 0.1], "inner": {"x": 123.456}},
        "none": None,
    }
    back = codec.from_item(codec.to_item(data))
    assert back == {k: v for k, v in data.items() if v is not None}
    assert type(back["count"]) is int and type(back["price"]) is float
    assert type(back["nested"]["scores"][1]) is int
    assert back["flag"] is True


def test_the_codec_refuses_numbers_dynamodb_cannot_hold() -> None:
    from docket.store.dynamodb import codec

    with pytest.raises(ValueError, match="nan"):
        codec.to_item({"x": float("nan")})


def test_a_write_the_table_refuses_is_permanent_and_an_outage_is_not(
    store: DynamoDocumentStore, monkeypatch: Any
) -> None:
    from docket.errors import StoreRejected, StoreUnavailable

    # Given a record over DynamoDB's 400 KB item limit: no retry can store it
    huge = doc("acme", 1).model_copy(update={"title": "x" * 450_000})
    with pytest.raises(StoreRejected) as rejected:
        store.put(huge)
    assert rejected.value.permanent
    # while a throttled or unreachable table is worth retrying
    from botocore.exceptions import ClientError

    def throttled(**_: Any) -> Any:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "PutItem",
        )

    monkeypatch.setattr(store._ddb, "put_item", throttled)
    with pytest.raises(StoreUnavailable) as unavailable:
        store.put(doc("acme", 2))
    assert not unavailable.value.permanent
