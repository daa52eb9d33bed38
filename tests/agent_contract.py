"""The TaskRepository contract (docket/agent/ports.py): every adapter passes this one suite, as
every index passes tests/search_contract.py. A suite that runs it imports the cases
(``from tests.agent_contract import *``) and provides the fixture ``repo``."""

from __future__ import annotations

import threading

import pytest

from docket.agent.models import StepRecord, TaskRecord
from docket.agent.ports import TaskRepository
from docket.errors import NotFound, StoreUnavailable
from docket.providers.llm import ChatMessage


def task(task_id: str = "task_000000000000000000000001", **fields: object) -> TaskRecord:
    base: dict[str, object] = {"tenant": "acme", "owner": "alice", "prompt": "do it"}
    return TaskRecord.model_validate({"task_id": task_id, **base, **fields})


def test_a_task_is_created_once_and_read_back(repo: TaskRepository) -> None:
    repo.create(task())
    assert repo.get(task().task_id).prompt == "do it"
    with pytest.raises(StoreUnavailable):
        repo.create(task())
    with pytest.raises(NotFound):
        repo.get("task_ffffffffffffffffffffffff")


def test_an_ended_task_is_not_overwritten_unless_asked(repo: TaskRepository) -> None:
    repo.create(task())
    assert repo.save(task(status="waiting_approval"), unless_terminal=True)
    assert repo.save(task(status="stopped", error="stopped by bob"), unless_terminal=True)
    # a step that ran meanwhile cannot undo the stop...
    assert not repo.save(task(status="running"), unless_terminal=True)
    assert repo.get(task().task_id).status == "stopped"
    # ...while a plain save writes what it is given
    assert repo.save(task(status="failed"))
    assert repo.get(task().task_id).status == "failed"


def test_unfinished_lists_every_tenant_s_running_and_waiting_tasks(repo: TaskRepository) -> None:
    ids = [f"task_{n:024d}" for n in range(4)]
    for task_id, status in zip(
        ids, ["running", "waiting_approval", "succeeded", "stopped"], strict=True
    ):
        repo.create(task(task_id))
        repo.save(task(task_id, status=status, tenant="globex" if task_id == ids[1] else "acme"))
    assert sorted(t.task_id for t in repo.unfinished()) == ids[:2]


def test_the_timeline_is_ordered_and_a_retried_step_overwrites_itself(
    repo: TaskRepository,
) -> None:
    t = task().task_id
    repo.record_step(StepRecord(task_id=t, seq=1, n=1, kind="tool", status="error"))
    repo.record_step(StepRecord(task_id=t, seq=1, n=1, kind="approval", status="approved"))
    repo.record_step(StepRecord(task_id=t, seq=0, n=0, kind="model"))
    repo.record_step(StepRecord(task_id=t, seq=1, n=1, kind="tool", status="ok"))  # the retry
    got = [(s.seq, s.n, s.kind, s.status) for s in repo.timeline(t)]
    assert got == [(0, 0, "model", "ok"), (1, 1, "approval", "approved"), (1, 1, "tool", "ok")]
    assert repo.timeline("task_ffffffffffffffffffffffff") == []


def test_messages_come_back_in_turn_order(repo: TaskRepository) -> None:
    t = task().task_id
    repo.put_message(t, 1, 1, ChatMessage(role="tool", content="result", tool_call_id="c1"))
    repo.put_message(t, 0, 0, ChatMessage(role="user", content="do it"))
    repo.put_message(t, 1, 0, ChatMessage(role="assistant", content="calling"))
    assert [m.content for m in repo.messages(t)] == ["do it", "calling", "result"]
    assert repo.get_message(t, 1, 0).content == "calling"  # type: ignore[union-attr]
    assert repo.get_message(t, 9, 0) is None
    repo.put_blob("tasks/x/big.json", b"{}")
    assert repo.get_blob("tasks/x/big.json") == b"{}"
    with pytest.raises(StoreUnavailable):
        repo.get_blob("tasks/x/missing.json")


def test_the_budget_reserves_atomically_and_settles(repo: TaskRepository) -> None:
    assert repo.tokens_used("acme", "2026-12") == 0
    assert repo.reserve_tokens("acme", 600, 1000, "2026-12")
    assert not repo.reserve_tokens("acme", 500, 1000, "2026-12")  # would pass the limit
    assert not repo.reserve_tokens("acme", 2000, 1000, "2026-12")  # alone over the limit
    assert repo.add_tokens("acme", -100, "2026-12") == 500  # settled below the estimate
    assert repo.reserve_tokens("acme", 500, 1000, "2026-12")
    assert repo.tokens_used("acme", "2026-12") == 1000
    assert repo.tokens_used("globex", "2026-12") == 0 and repo.tokens_used("acme", "2026-11") == 0
    assert repo.period() == repo.period()[:4] + "-" + repo.period()[5:]


def test_parallel_reservations_never_pass_the_limit(repo: TaskRepository) -> None:
    # Given a budget of 1,000 tokens and 24 tasks each wanting 100 at the same moment
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(24)

    def reserve() -> None:
        start.wait()
        ok = repo.reserve_tokens("acme", 100, 1000, "2026-12")
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=reserve) for _ in range(24)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results.count(True) == 10 and repo.tokens_used("acme", "2026-12") == 1000
