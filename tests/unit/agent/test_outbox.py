"""The outbox: a side effect runs at most once per key, on a moto agent table."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from docket.agent.memory import InMemoryOutbox
from docket.agent.outbox import Outbox
from docket.errors import EffectInDoubt, StoreUnavailable, ToolTimeout, ToolUnavailable

TABLE = "docket-agent-test"


def create_agent_table(client: Any, name: str = TABLE) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_agent_table(client)
        yield client


@pytest.fixture
def outbox(ddb: Any) -> Outbox:
    return Outbox(TABLE, client=ddb)


@pytest.fixture(params=["dynamodb", "memory"])
def any_outbox(request: pytest.FixtureRequest) -> Iterator[Outbox]:
    """The cases that speak only ``once`` run against both adapters."""
    if request.param == "memory":
        yield InMemoryOutbox()
        return
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_agent_table(client)
        yield Outbox(TABLE, client=client)


class Effect:
    """Counts its runs; returns a result that says which run it was."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        return {"message_id": f"m-{self.calls}"}


def record(ddb: Any, key: str) -> dict[str, Any] | None:
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"OUTBOX#{key}"}, "sk": {"S": "OUTBOX"}})
    return item.get("Item")


def test_the_effect_runs_once_and_a_second_call_replays_its_result(outbox: Outbox, ddb: Any):
    # Given an effect
    effect = Effect()
    # When the same key is used twice
    first = outbox.once("k1", effect)
    second = outbox.once("k1", effect)
    # Then it ran once, and the second call got the stored result, marked replayed
    assert effect.calls == 1
    assert first == ({"message_id": "m-1"}, False)
    assert second == ({"message_id": "m-1"}, True)
    stored = record(ddb, "k1")
    assert stored is not None and stored["status"]["S"] == "done"


def test_different_keys_are_different_effects(any_outbox: Outbox):
    outbox = any_outbox
    effect = Effect()
    outbox.once("a", effect)
    result, replayed = outbox.once("b", effect)
    assert effect.calls == 2
    assert result == {"message_id": "m-2"} and not replayed


def test_a_crash_after_the_effect_does_not_repeat_it_on_retry(any_outbox: Outbox):
    outbox = any_outbox
    # Given a step that runs the effect, then crashes before it records anything of its own
    effect = Effect()

    def step() -> dict[str, Any]:
        result, _ = outbox.once("k2", effect)
        raise RuntimeError("Lambda died before the step was recorded")

    with pytest.raises(RuntimeError):
        step()
    # When the step is retried
    result, replayed = outbox.once("k2", effect)
    # Then the effect is not run again: the first run's result comes back
    assert effect.calls == 1
    assert result == {"message_id": "m-1"} and replayed


def test_a_pending_record_is_in_doubt_and_never_retried(outbox: Outbox, ddb: Any):
    # Given a claim whose attempt died mid-effect (status still pending)
    ddb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "OUTBOX#k3"},
            "sk": {"S": "OUTBOX"},
            "status": {"S": "pending"},
            "started_at": {"S": "2026-01-01T00:00:00+00:00"},
        },
    )
    effect = Effect()
    # When the call is retried, then it is in doubt and the effect does not run
    with pytest.raises(EffectInDoubt, match="may have happened"):
        outbox.once("k3", effect)
    assert effect.calls == 0


def test_a_failing_effect_releases_the_key_so_a_retry_may_run_it(outbox: Outbox, ddb: Any):
    # Given an effect that fails (SES refused it: nothing was sent)
    failing = Effect(fail=ToolUnavailable("SES is down"))
    with pytest.raises(ToolUnavailable):
        outbox.once("k4", failing)
    # Then no record is left behind
    assert record(ddb, "k4") is None
    # And a retry runs the effect
    working = Effect()
    result, replayed = outbox.once("k4", working)
    assert working.calls == 1 and result == {"message_id": "m-1"} and not replayed


def test_a_timed_out_effect_stays_in_doubt(any_outbox: Outbox):
    outbox = any_outbox
    # Given an effect that timed out (the request may have reached the server)
    with pytest.raises(ToolTimeout):
        outbox.once("k5", Effect(fail=ToolTimeout("no answer in 20 s")))
    # When the call is retried, then it is not attempted again
    retry = Effect()
    with pytest.raises(EffectInDoubt):
        outbox.once("k5", retry)
    assert retry.calls == 0


def test_a_concurrent_attempt_does_not_run_the_effect_twice(any_outbox: Outbox):
    outbox = any_outbox
    # Given an attempt whose effect is in flight
    started, release = threading.Event(), threading.Event()
    effect = Effect()

    def slow() -> dict[str, Any]:
        started.set()
        assert release.wait(5)
        return effect()

    results: list[tuple[dict[str, Any], bool]] = []
    worker = threading.Thread(target=lambda: results.append(outbox.once("k6", slow)))
    worker.start()
    assert started.wait(5)
    # When a second attempt arrives meanwhile, then it refuses rather than running it again
    try:
        with pytest.raises(EffectInDoubt):
            outbox.once("k6", effect)
    finally:
        release.set()
        worker.join(5)
    assert effect.calls == 1
    assert results == [({"message_id": "m-1"}, False)]
    # And once the first attempt is done, later retries replay its result
    assert outbox.once("k6", effect) == ({"message_id": "m-1"}, True)


def test_a_missing_table_is_a_store_error_and_the_effect_does_not_run(ddb: Any):
    effect = Effect()
    with pytest.raises(StoreUnavailable):
        Outbox("no-such-table", client=ddb).once("k7", effect)
    assert effect.calls == 0


def test_a_record_released_by_a_concurrent_failure_is_claimed_again(ddb: Any):
    # Given a first claim that loses to a concurrent attempt whose effect then fails and releases
    # the key (so the follow-up read finds nothing)
    class RacingClient:
        def __init__(self) -> None:
            self.lost = False

        def put_item(self, **kw: Any) -> Any:
            if not self.lost:
                self.lost = True
                ddb.put_item(**{**kw, "ConditionExpression": "attribute_not_exists(pk)"})
                ddb.delete_item(
                    TableName=kw["TableName"], Key={k: kw["Item"][k] for k in ("pk", "sk")}
                )
                err = ddb.exceptions.ConditionalCheckFailedException(
                    {"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}},
                    "PutItem",
                )
                raise err
            return ddb.put_item(**kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(ddb, name)

    effect = Effect()
    # When the call goes on, then it claims the key anew and runs the effect once
    result, replayed = Outbox(TABLE, client=RacingClient()).once("k8", effect)
    assert effect.calls == 1 and result == {"message_id": "m-1"} and not replayed
    stored = record(ddb, "k8")
    assert stored is not None and stored["status"]["S"] == "done"
