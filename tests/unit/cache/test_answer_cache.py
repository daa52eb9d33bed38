"""The answer cache: partitions, the exact and semantic tiers with their guards, expiry, and
eviction; the contract (tests/cache_contract.py) against both stores."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from moto import mock_aws

from docket.cache.dynamodb import DynamoCacheStore
from docket.cache.memory import MemoryCacheStore
from docket.cache.service import AnswerCache, normalise, same_order, signature
from docket.config import Settings
from docket.models import Principal
from tests.cache_contract import *  # noqa: F403

ALICE = Principal(subject="alice", tenant="acme", groups=frozenset({"hr"}))
BOB = Principal(subject="bob", tenant="acme", groups=frozenset({"hr", "finance"}))
CAROL = Principal(subject="carol", tenant="acme", groups=frozenset({"hr"}))
OPTIONS = {"top_k": 10, "mode": "hybrid", "filters": None, "rerank": True}


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryCacheStore()
        return
    with mock_aws():
        import boto3

        from docket.local.cloud import _table_definition
        from docket.wiring import ANSWER_CACHE_TABLE, WIRING

        spec = next(t for t in WIRING.tables if t.name == ANSWER_CACHE_TABLE)
        boto3.client("dynamodb", region_name="us-east-1").create_table(**_table_definition(spec))
        yield DynamoCacheStore(ANSWER_CACHE_TABLE)


class Clock:
    now = 10_000.0

    def __call__(self) -> float:
        return self.now


def cache(**settings: Any) -> tuple[AnswerCache, Clock]:
    clock = Clock()
    s = Settings(answer_cache_tenants=frozenset({"acme"}), answer_cache_similarity=0.9, **settings)
    return AnswerCache(s, MemoryCacheStore(), clock), clock


def vec(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def test_the_partition_is_exact_on_groups_generation_and_options() -> None:
    c, _ = cache()
    p = c.partition(ALICE, "minilm@1", OPTIONS)
    assert p == c.partition(CAROL, "minilm@1", OPTIONS)  # same tenant and groups: shared
    assert p != c.partition(BOB, "minilm@1", OPTIONS)
    assert p != c.partition(ALICE, "titan@2", OPTIONS)
    assert p != c.partition(ALICE, "minilm@1", {**OPTIONS, "top_k": 5})
    other_tenant = Principal(subject="x", tenant="globex", groups=frozenset({"hr"}))
    assert c.partition(other_tenant, "minilm@1", OPTIONS).startswith("globex#")


def test_exact_then_semantic_hits_and_their_guards() -> None:
    c, clock = cache()
    p = c.partition(ALICE, "g", OPTIONS)
    c.store_answer(p, ALICE, "Is remote work allowed?", vec(1, 0, 0), '{"a": 1}', ["c1"])
    clock.now += 30
    exact = c.lookup(p, "  is REMOTE work allowed ", None)
    assert exact is not None and exact.kind == "exact" and exact.age_s == 30
    near = vec(0.95, 0.31, 0)  # cosine 0.95
    hit = c.lookup(p, "Is working remotely allowed?", near)
    assert hit is not None and hit.kind == "semantic" and hit.similarity > 0.94
    assert c.lookup(p, "Is working remotely allowed?", vec(0.8, 0.6, 0)) is None  # cosine 0.8
    assert c.lookup(p, "Is remote work not allowed?", vec(1, 0, 0)) is None  # negation
    assert c.lookup(p, "Is remote work allowed 3 days?", vec(1, 0, 0)) is None  # a number


def test_swapped_or_different_names_never_hit() -> None:
    c, _ = cache()
    p = c.partition(ALICE, "g", OPTIONS)
    c.store_answer(p, ALICE, "Does Acme pay Globex?", vec(1, 0, 0), "{}", ["c1"])
    assert c.lookup(p, "Does Globex pay Acme?", vec(1, 0, 0)) is None
    assert c.lookup(p, "Does Acme pay Initech?", vec(1, 0, 0)) is None
    c.store_answer(p, ALICE, "can contractors see salaries", vec(0, 1, 0), "{}", ["c2"])
    assert c.lookup(p, "can salaries see contractors", vec(0, 1, 0)) is None  # order of terms


def test_another_partition_never_hits_even_the_same_question() -> None:
    c, _ = cache()
    c.store_answer(
        c.partition(BOB, "g", OPTIONS), BOB, "What are salary bands?", vec(1, 0), "{}", ["c"]
    )
    assert c.lookup(c.partition(ALICE, "g", OPTIONS), "What are salary bands?", vec(1, 0)) is None


def test_entries_expire_at_a_fixed_time_hits_or_not() -> None:
    c, clock = cache(answer_cache_ttl_seconds=60)
    p = c.partition(ALICE, "g", OPTIONS)
    c.store_answer(p, ALICE, "q one", vec(1, 0), "{}", ["c"])
    for _ in range(5):  # hits do not extend it
        clock.now += 11
        assert c.lookup(p, "q one", vec(1, 0)) is not None
    clock.now += 10
    assert c.lookup(p, "q one", vec(1, 0)) is None


def test_eviction_by_chunk() -> None:
    c, _ = cache()
    p = c.partition(ALICE, "g", OPTIONS)
    c.store_answer(p, ALICE, "q one", vec(1, 0), "{}", ["c1", "c2"])
    c.store_answer(p, ALICE, "q two", vec(0, 1), "{}", ["c3"])
    assert c.evict("acme", ["c2"]) == 1
    assert c.lookup(p, "q one", vec(1, 0)) is None and c.lookup(p, "q two", vec(0, 1)) is not None


def test_off_unless_the_tenant_is_listed() -> None:
    c, _ = cache()
    assert c.enabled_for("acme") and not c.enabled_for("globex")
    every = AnswerCache(Settings(answer_cache_tenants=frozenset({"*"})), MemoryCacheStore())
    assert every.enabled_for("globex")


def test_the_guards() -> None:
    assert normalise("What's the VPN\u2019s policy?!") == "what's the vpn's policy"
    assert signature("Is it allowed?") != signature("Isn't it allowed?")
    assert signature("Refunds in 30 days?") != signature("Refunds in 14 days?")
    assert same_order(["acm", "pay", "globex"], ["acm", "pay", "globex", "month"])
    assert not same_order(["acm", "pay", "globex"], ["globex", "pay", "acm"])
