"""The answer cache store contract: every AnswerCacheStore adapter (in-process, DynamoDB) passes
this suite. A module that runs it imports it and provides the fixture ``store``."""

from __future__ import annotations

import json

import pytest

from docket.cache.port import AnswerCacheStore, CacheEntry


def entry(
    entry_id: str,
    partition: str = "acme#p1",
    tenant: str = "acme",
    chunks: tuple[str, ...] = ("c1",),
) -> CacheEntry:
    return CacheEntry(
        partition=partition,
        entry_id=entry_id,
        tenant=tenant,
        question=f"question {entry_id}?",
        terms=["question", entry_id],
        vector=[0.6, 0.8, 0.0],
        response=json.dumps({"answer": entry_id}),
        chunk_ids=list(chunks),
        created_at=1000.0 + len(entry_id),
        expires_at=4600.5,
    )


def test_an_entry_reads_back_whole(store: AnswerCacheStore) -> None:
    e = entry("e1", chunks=("c1", "c2"))
    store.put(e)
    got = store.get("acme#p1", "e1")
    assert got is not None
    assert got.model_dump(exclude={"vector"}) == e.model_dump(exclude={"vector"})
    assert got.vector == pytest.approx(e.vector, abs=1e-6)  # stored as float32
    assert store.get("acme#p2", "e1") is None and store.get("acme#p1", "e2") is None


def test_candidates_are_the_partitions_only(store: AnswerCacheStore) -> None:
    store.put(entry("e1"))
    store.put(entry("e2"))
    store.put(entry("e3", partition="acme#p2"))
    store.put(entry("e4", partition="globex#p1", tenant="globex"))
    found = store.candidates("acme#p1", 100)
    assert sorted(e.entry_id for e in found) == ["e1", "e2"]
    assert all(e.vector and e.terms and e.expires_at == 4600.5 for e in found)
    assert [e.entry_id for e in store.candidates("acme#p2", 100)] == ["e3"]
    assert len(store.candidates("acme#p1", 1)) == 1


def test_a_changed_chunk_evicts_every_entry_depending_on_it_and_no_other(
    store: AnswerCacheStore,
) -> None:
    store.put(entry("e1", chunks=("c1", "c2")))
    store.put(entry("e2", partition="acme#p2", chunks=("c2",)))
    store.put(entry("e3", chunks=("c3",)))
    store.put(entry("e4", partition="globex#p1", tenant="globex", chunks=("c2",)))
    assert store.evict("acme", ["c2"]) == 2
    assert store.get("acme#p1", "e1") is None and store.get("acme#p2", "e2") is None
    assert store.get("acme#p1", "e3") is not None
    assert store.get("globex#p1", "e4") is not None  # another tenant's chunk id space
    assert store.evict("acme", ["c2", "c1"]) == 0  # nothing left that depends on them
