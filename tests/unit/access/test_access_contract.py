"""The access contract (tests/access_contract.py) against the in-process adapters and the
DynamoDB ones (moto, with the tables the wiring declares)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from docket.access.dynamodb import DynamoBuckets, DynamoKeyStore
from docket.access.memory import MemoryBuckets, MemoryKeyStore
from docket.local.cloud import _table_definition
from docket.wiring import KEYS_TABLE, LIMITS_TABLE, WIRING
from tests.access_contract import *  # noqa: F403


@pytest.fixture(params=["memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield "memory"
        return
    with mock_aws():
        import boto3

        ddb = boto3.client("dynamodb", region_name="us-east-1")
        for spec in WIRING.tables:
            if spec.name in (KEYS_TABLE, LIMITS_TABLE):
                ddb.create_table(**_table_definition(spec))
        yield "dynamodb"


@pytest.fixture
def key_store(backend: str) -> Any:
    return MemoryKeyStore() if backend == "memory" else DynamoKeyStore(KEYS_TABLE)


@pytest.fixture
def buckets(backend: str) -> Any:
    return MemoryBuckets() if backend == "memory" else DynamoBuckets(LIMITS_TABLE)
