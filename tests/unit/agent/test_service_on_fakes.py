"""AgentService's task lifecycle on in-memory ports (no emulator): start, another tenant's view,
stop, and ending the tasks a crash orphaned."""

from __future__ import annotations

from typing import Any

import pytest

from docket.agent.memory import InMemoryTaskRepository
from docket.agent.planner import OfflinePlanner
from docket.agent.service import AgentService
from docket.agent.tools import default_registry
from docket.config import Settings
from docket.errors import NotFound
from docket.models import Principal

ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:docket-agent"
ALICE = Principal(tenant="acme", subject="alice", groups=frozenset({"staff"}))


class FakeWorkflow:
    def __init__(self) -> None:
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        self.started.append((name, payload))
        return f"{state_machine_arn}:{name}"

    def stop(self, execution_arn: str, *, error: str, cause: str) -> None:
        self.stopped.append(execution_arn)

    def status(self, execution_arn: str) -> str:
        return "RUNNING"

    def succeed(self, task_token: str, output: dict[str, Any]) -> None: ...

    def fail(self, task_token: str, *, error: str, cause: str) -> None: ...


class FakeApprovals:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def cancel_for_task(self, task_id: str) -> list[Any]:
        self.cancelled.append(task_id)
        return []


@pytest.fixture
def agent() -> tuple[AgentService, InMemoryTaskRepository, FakeWorkflow, FakeApprovals]:
    repo, workflow, approvals = InMemoryTaskRepository(), FakeWorkflow(), FakeApprovals()
    service = AgentService(
        Settings(agent_state_machine_arn=ARN, agent_max_steps=5),
        repo,
        default_registry(),
        OfflinePlanner(),
        workflow,
        approvals=lambda: approvals,
        services=lambda: None,
    )
    return service, repo, workflow, approvals


def test_start_records_the_task_and_its_prompt_then_starts_the_loop(agent) -> None:
    service, repo, workflow, _ = agent
    task = service.start(ALICE, "Summarise the refund policy", max_steps=50)
    assert task.max_steps == 5  # a caller may ask for fewer steps, never more than the cap
    assert repo.get(task.task_id).status == "running"
    assert [m.content for m in repo.messages(task.task_id)] == ["Summarise the refund policy"]
    assert workflow.started == [
        (
            task.task_id,
            {
                "task_id": task.task_id,
                "step": 0,
                "config": {"max_steps": 5, "approval_timeout_seconds": 259200},
            },
        )
    ]
    # another tenant's caller: the task does not exist
    with pytest.raises(NotFound):
        service.get(Principal(tenant="globex", subject="mallory"), task.task_id)


def test_stop_records_first_then_cancels_approvals_and_stops_the_execution(agent) -> None:
    service, repo, workflow, approvals = agent
    task = service.start(ALICE, "Summarise the refund policy")
    stopped = service.stop(ALICE, task.task_id)
    assert stopped.status == "stopped" and repo.get(task.task_id).status == "stopped"
    assert approvals.cancelled == [task.task_id]
    assert workflow.stopped == [task.execution_arn]
    # stopping again changes nothing
    assert service.stop(ALICE, task.task_id).status == "stopped"
    assert approvals.cancelled == [task.task_id]


def test_tasks_a_crash_orphaned_end_failed_with_the_reason(agent) -> None:
    service, repo, _, approvals = agent
    running = service.start(ALICE, "one")
    waiting = service.start(ALICE, "two")
    repo.save(repo.get(waiting.task_id).model_copy(update={"status": "waiting_approval"}))
    done = service.start(ALICE, "three")
    repo.save(repo.get(done.task_id).model_copy(update={"status": "succeeded", "answer": "ok"}))
    assert service.end_unfinished("interrupted: restarted") == 2
    for task_id in (running.task_id, waiting.task_id):
        task = repo.get(task_id)
        assert task.status == "failed" and task.error == "interrupted: restarted"
        assert task.finished_at is not None
    assert repo.get(done.task_id).status == "succeeded"
    assert sorted(approvals.cancelled) == sorted([running.task_id, waiting.task_id])
    assert service.end_unfinished("again") == 0
