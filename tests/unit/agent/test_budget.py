"""The tenant's monthly token budget: reserved in one conditional update, then settled."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from moto import mock_aws

from docket.agent.store import TaskStore

from .test_outbox import TABLE, create_agent_table


@pytest.fixture
def store() -> Iterator[TaskStore]:
    with mock_aws():
        from docket import aws

        create_agent_table(aws.client("dynamodb"))
        yield TaskStore(TABLE, "bucket")


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


def test_parallel_reservations_never_pass_the_budget(
    store: TaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _OneCallAtATime(store._ddb)
    monkeypatch.setattr(TaskStore, "_ddb", property(lambda self: client))
    # Given a budget of 1,000 tokens and 24 tasks each wanting 100 at the same moment
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(24)

    def task() -> None:
        start.wait()
        ok = store.reserve_tokens("acme", 100, 1_000)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=task) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly ten got their reservation, and the month's usage is exactly the budget
    assert results.count(True) == 10
    assert store.tokens_used("acme") == 1_000


def test_a_reservation_that_would_pass_the_budget_adds_nothing(store: TaskStore) -> None:
    assert store.reserve_tokens("acme", 700, 1_000)
    assert not store.reserve_tokens("acme", 301, 1_000)
    assert store.tokens_used("acme") == 700
    assert store.reserve_tokens("acme", 300, 1_000)  # exactly up to the budget is allowed
    assert not store.reserve_tokens("other", 1_001, 1_000)  # more than the whole budget
    assert store.tokens_used("other") == 0


def test_settling_gives_back_what_a_call_did_not_use(store: TaskStore) -> None:
    assert store.reserve_tokens("acme", 500, 1_000)
    assert store.add_tokens("acme", 120 - 500) == 120  # the call used 120
    assert store.reserve_tokens("acme", 880, 1_000)
    assert store.tokens_used("acme", period=TaskStore.period()) == 1_000
