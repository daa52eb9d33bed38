"""The agent's ports, as the RAG wing has its own (``docket/search/port.py``, ``store/ports.py``).

- ``TaskRepository``: tasks, their timeline, the conversation, the tenant's token budget.
  Adapters: ``docket.agent.store.TaskStore`` (DynamoDB + S3) and ``InMemoryTaskRepository``
  (``docket.agent.memory``: unit tests and the offline tools). One contract suite,
  ``tests/agent_contract.py``, runs against both.
- ``Workflow``: the durable loop's engine. Adapter: ``docket.agent.workflow.StepFunctions``.
- ``EffectOutbox`` (``docket.agent.outbox``): every side effect at most once per key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from docket.agent.models import StepRecord, TaskRecord
from docket.providers.llm import ChatMessage


class TaskRepository(Protocol):
    # --- tasks
    def create(self, task: TaskRecord) -> None:
        """A new task; StoreUnavailable if its id exists (ids are random: a retry of a create)."""
        ...

    def get(self, task_id: str) -> TaskRecord:
        """NotFound for an unknown id."""
        ...

    def save(self, task: TaskRecord, *, unless_terminal: bool = False) -> bool:
        """Write the record (updated_at set). With ``unless_terminal``, a task that already ended
        is left as it is and False is returned."""
        ...

    def unfinished(self) -> list[TaskRecord]:
        """Every tenant's tasks not yet ended (recovery after a crash)."""
        ...

    # --- the timeline
    def record_step(self, step: StepRecord) -> None:
        """Idempotent: a retried step overwrites its own entry."""
        ...

    def timeline(self, task_id: str) -> list[StepRecord]:
        """Ordered by (seq, n), a call's approval before its run."""
        ...

    # --- the conversation and large results
    def put_message(self, task_id: str, turn: int, n: int, message: ChatMessage) -> str: ...

    def get_message(self, task_id: str, turn: int, n: int) -> ChatMessage | None: ...

    def messages(self, task_id: str) -> list[ChatMessage]:
        """In (turn, n) order."""
        ...

    def put_blob(self, key: str, data: bytes, content_type: str = "application/json") -> None: ...

    def get_blob(self, key: str) -> bytes: ...

    # --- the tenant's token budget (per calendar month)
    @staticmethod
    def period(now: datetime | None = None) -> str: ...

    def tokens_used(self, tenant: str, period: str | None = None) -> int: ...

    def reserve_tokens(
        self, tenant: str, tokens: int, limit: int, period: str | None = None
    ) -> bool:
        """Add ``tokens`` only if the month's total stays within ``limit``, atomically (parallel
        tasks cannot together pass the budget); False, adding nothing, otherwise."""
        ...

    def add_tokens(self, tenant: str, tokens: int, period: str | None = None) -> int:
        """Atomically add (negative: give back); the new total."""
        ...


class Workflow(Protocol):
    """The engine that runs a task's loop and waits on task tokens (Step Functions)."""

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str: ...

    def stop(self, execution_arn: str, *, error: str, cause: str) -> None: ...

    def status(self, execution_arn: str) -> str: ...

    def succeed(self, task_token: str, output: dict[str, Any]) -> None: ...

    def fail(self, task_token: str, *, error: str, cause: str) -> None: ...
