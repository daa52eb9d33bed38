"""The agent's ports, as the RAG wing has its own (``docket/search/port.py``, ``store/ports.py``).

- ``TaskRepository``: tasks, their timeline, the conversation, the tenant's token budget.
  Adapters: ``docket.agent.store.TaskStore`` (DynamoDB + S3) and ``InMemoryTaskRepository``
  (``docket.agent.memory``: unit tests and the offline tools). One contract suite,
  ``tests/agent_contract.py``, runs against both.
- ``ApprovalRepository``: approvals of high-risk calls, the channels told about each, the pending
  list an approver reads and the decisions not yet delivered to their task. Adapters:
  ``docket.agent.approval_store.DynamoApprovalRepository`` (the agent table) and
  ``InMemoryApprovalRepository`` (``docket.agent.memory``); one contract suite,
  ``tests/approval_contract.py``, runs against both. ``docket.agent.approvals.ApprovalService``
  holds the decisions and speaks only this port.
- ``Workflow``: the durable loop's engine. Adapter: ``docket.agent.workflow.StepFunctions``.
- ``EffectOutbox`` (``docket.agent.outbox``): every side effect at most once per key.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any, Protocol

from docket.agent.models import ApprovalRecord, ApprovalStatus, StepRecord, TaskRecord
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


class ApprovalRepository(Protocol):
    """Where approvals live. Two lists follow from a record's fields, never written directly:

    - the tenant's *pending* list: every approval whose status is ``pending``, oldest
      ``created_at`` first;
    - the *undelivered* decisions: status ``approved`` or ``denied`` with a ``decided_at`` and no
      ``delivered_at`` (the decision is recorded but has not reached its task yet), oldest
      ``decided_at`` first.

    Any other status (``expired``, ``cancelled``) is in neither. Every failure of the store is
    ``StoreUnavailable``."""

    def create(self, record: ApprovalRecord) -> bool:
        """Store a new approval, findable by its id and by its task, and (pending) in its
        tenant's pending list, in one atomic write. False, writing nothing, if one with this id
        exists (ids derive from task, step and call: a retried request)."""
        ...

    def get(self, approval_id: str) -> ApprovalRecord | None:
        """The approval as last written (a strongly consistent read); None for an unknown id."""
        ...

    def notified(self, approval_id: str) -> set[str]:
        """The channels already told about it (``"slack"``, ``"email:{address}"``); empty for an
        approval nobody was told about, or an unknown id."""
        ...

    def mark_notified(self, approval_id: str, channel: str) -> None:
        """Add ``channel`` to the approval's told channels (idempotent: a set). For an approval
        that exists: ``ApprovalService`` calls it only after ``create`` or ``get``."""
        ...

    def update(
        self,
        approval_id: str,
        *,
        expect: ApprovalStatus,
        set_: Mapping[str, Any],
        remove: Collection[str] = (),
    ) -> ApprovalRecord | None:
        """Change fields of the approval, atomically and only if its status is ``expect``; the
        record as written, or None (nothing written) if the approval is unknown or its status
        differs. This condition is what makes a decision single-use: of two racing updates
        expecting ``pending``, one wins.

        ``set_`` maps ``ApprovalRecord`` field names to new values (a ``None`` value clears the
        field, as naming it in ``remove`` does: it reads back as its default). The identity of an
        approval (``approval_id``, ``task_id``, ``tenant``, ``created_at``) cannot change, and a
        name that is no field is refused: ``ValueError`` for both, before anything is written.
        The pending list and the undelivered decisions follow the new fields."""
        ...

    def list_pending(self, tenant: str) -> list[ApprovalRecord]:
        """The tenant's pending approvals, oldest ``created_at`` first; no other tenant's."""
        ...

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        """Every approval of the task, whatever its status, oldest ``created_at`` first."""
        ...

    def undelivered(self, decided_before: datetime) -> list[ApprovalRecord]:
        """Every tenant's undelivered decisions decided at or before ``decided_before``, oldest
        ``decided_at`` first (the sweeper re-sends them)."""
        ...


class Workflow(Protocol):
    """The engine that runs a task's loop and waits on task tokens (Step Functions)."""

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> str: ...

    def stop(self, execution_arn: str, *, error: str, cause: str) -> None: ...

    def status(self, execution_arn: str) -> str: ...

    def succeed(self, task_token: str, output: dict[str, Any]) -> None: ...

    def fail(self, task_token: str, *, error: str, cause: str) -> None: ...
