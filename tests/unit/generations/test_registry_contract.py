"""The generation registry's rules, on the in-memory fake and on DynamoDB (moto) alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from moto import mock_aws

from docket.errors import Conflict
from docket.generations.models import Generation, GenerationState
from docket.generations.registry import (
    DynamoGenerationRegistry,
    GenerationRegistry,
    InMemoryGenerationRegistry,
    NoPreviousGeneration,
    RebuildInProgress,
)

TABLE = "docket-generations-test"


@pytest.fixture(params=["memory", "dynamodb"])
def registry(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GenerationRegistry]:
    if request.param == "memory":
        yield InMemoryGenerationRegistry()
        return
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DOCKET_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    from docket import aws
    from docket.config import reset_settings

    with mock_aws():
        aws.reset_clients()
        reset_settings()
        aws.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield DynamoGenerationRegistry(TABLE)
    aws.reset_clients()
    reset_settings()


def gen(
    number: int, model: str = "m", state: GenerationState = GenerationState.BUILDING
) -> Generation:
    return Generation(number=number, model=model, state=state)


FIRST = gen(1, "fp32", GenerationState.LIVE)


def test_nothing_is_live_before_the_first_rebuild(registry: GenerationRegistry) -> None:
    assert registry.live() is None and registry.building() is None and registry.all() == []


def test_begin_records_the_first_generation_as_live(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2, "int8"))
    assert registry.live().number == 1  # type: ignore[union-attr]
    assert registry.building().number == 2  # type: ignore[union-attr]
    assert [g.number for g in registry.all()] == [2, 1]


def test_a_second_rebuild_while_one_runs_is_refused(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2))
    with pytest.raises(RebuildInProgress):
        registry.begin(FIRST, gen(3))
    assert registry.get(3) is None


def test_cutover_moves_live_and_retires_the_old_one_at_once(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2, "int8"))
    live = registry.cutover(2)
    assert live.state == GenerationState.LIVE and live.live_since is not None
    assert registry.live().number == 2  # type: ignore[union-attr]
    assert registry.building() is None
    old = registry.get(1)
    assert old is not None and old.state == GenerationState.RETIRED and old.retired_at
    with pytest.raises(Conflict):
        registry.cutover(2)  # not being built any more


def test_abort_keeps_live_untouched_and_frees_the_next_rebuild(
    registry: GenerationRegistry,
) -> None:
    registry.begin(FIRST, gen(2))
    aborted = registry.abort(2, "gate: failed")
    assert aborted.state == GenerationState.ABORTED and aborted.reason == "gate: failed"
    assert registry.live().number == 1 and registry.building() is None  # type: ignore[union-attr]
    registry.begin(FIRST, gen(3))
    assert registry.building().number == 3  # type: ignore[union-attr]


def test_rollback_returns_to_the_newest_retired_generation(registry: GenerationRegistry) -> None:
    with pytest.raises(NoPreviousGeneration):
        registry.rollback()
    registry.begin(FIRST, gen(2))
    registry.cutover(2)
    back = registry.rollback()
    assert back.number == 1 and registry.live().number == 1  # type: ignore[union-attr]
    assert registry.get(2).state == GenerationState.RETIRED  # type: ignore[union-attr]


def test_rollback_during_a_build_is_refused(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2))
    registry.cutover(2)
    registry.begin(FIRST, gen(3))
    with pytest.raises(RebuildInProgress):
        registry.rollback()


def test_deleted_generations_cannot_be_rolled_back_to(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2))
    registry.cutover(2)
    registry.mark_deleted(1)
    assert registry.get(1).state == GenerationState.DELETED  # type: ignore[union-attr]
    with pytest.raises(NoPreviousGeneration):
        registry.rollback()


def test_save_keeps_progress_and_datetimes(registry: GenerationRegistry) -> None:
    registry.begin(FIRST, gen(2))
    g = registry.get(2)
    assert g is not None
    stamp = datetime(2026, 1, 2, tzinfo=UTC) + timedelta(microseconds=5)
    registry.save(
        g.model_copy(
            update={
                "stage": "gate",
                "gate": {"passed": False, "quality": {"new": {"ndcg@10": 0.7123}}},
                "counts": {"snapshot": 12},
                "timings_s": {"snapshot": 0.25},
                "created_at": stamp,
            }
        )
    )
    back = registry.get(2)
    assert back is not None
    assert back.stage == "gate" and back.gate == {
        "passed": False,
        "quality": {"new": {"ndcg@10": 0.7123}},
    }
    assert back.counts == {"snapshot": 12} and back.timings_s == {"snapshot": 0.25}
    assert back.created_at == stamp
