"""The TaskRepository contract (tests/agent_contract.py) against both adapters: the in-memory one
and the DynamoDB + S3 one (on moto, each call applied whole, as DynamoDB applies writes)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from moto import mock_aws

from docket.agent.memory import InMemoryTaskRepository
from docket.agent.ports import TaskRepository
from docket.agent.store import TaskStore
from tests.agent_contract import *  # noqa: F403  (the contract cases)

from .test_outbox import TABLE, create_agent_table


class _OneCallAtATime:
    """DynamoDB applies the writes to one item one after another; moto does not (two threads can
    both read the old value under load). Serialising each *call* models DynamoDB and still
    catches a read-then-write reservation: its two calls interleave between tasks."""

    def __init__(self, client: object) -> None:
        self._client, self._lock = client, threading.Lock()

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._client, name)
        if not callable(attr) or name == "exceptions":
            return attr

        def call(*args: object, **kwargs: object) -> object:
            with self._lock:
                return attr(*args, **kwargs)

        return call


@pytest.fixture(params=["memory", "dynamodb"])
def repo(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TaskRepository]:
    if request.param == "memory":
        yield InMemoryTaskRepository()
        return
    with mock_aws():
        from docket import aws

        create_agent_table(aws.client("dynamodb"))
        aws.client("s3").create_bucket(Bucket="agent-bucket")
        store = TaskStore(TABLE, "agent-bucket")
        serial = _OneCallAtATime(aws.client("dynamodb"))
        monkeypatch.setattr(TaskStore, "_ddb", property(lambda self: serial))
        yield store
