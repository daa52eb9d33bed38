"""The agent's ports in a process's memory, for unit tests of the agent's logic without an
emulator:

- ``InMemoryTaskRepository``: ``TaskRepository`` with the DynamoDB adapter's semantics
  (conditional create, ``unless_terminal``, idempotent steps, atomic budget reservations), proven
  by the same contract suite (tests/agent_contract.py);
- ``InMemoryApprovalRepository``: ``ApprovalRepository`` likewise (create once, updates
  conditional on the status, the pending and undelivered lists derived from the records), proven
  by tests/approval_contract.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from docket.agent.models import (
    TERMINAL_STATUSES,
    ApprovalRecord,
    ApprovalStatus,
    StepRecord,
    TaskRecord,
    apply_approval_update,
    check_approval_update,
)
from docket.agent.outbox import DONE, PENDING, Outbox
from docket.errors import EffectInDoubt, NotFound, StoreUnavailable
from docket.models import utcnow
from docket.providers.llm import ChatMessage


class InMemoryTaskRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, str] = {}  # id -> record JSON (no shared mutable state)
        self._steps: dict[str, dict[tuple[int, int, str], str]] = {}
        self._blobs: dict[str, bytes] = {}
        self._budget: dict[tuple[str, str], int] = {}

    # --- tasks

    def create(self, task: TaskRecord) -> None:
        with self._lock:
            if task.task_id in self._tasks:
                raise StoreUnavailable(f"agent store: create task: {task.task_id} exists")
            self._tasks[task.task_id] = task.model_dump_json()

    def get(self, task_id: str) -> TaskRecord:
        with self._lock:
            raw = self._tasks.get(task_id)
        if raw is None:
            raise NotFound(f"task {task_id} not found")
        return TaskRecord.model_validate_json(raw)

    def save(self, task: TaskRecord, *, unless_terminal: bool = False) -> bool:
        task = task.model_copy(update={"updated_at": utcnow()})
        with self._lock:
            raw = self._tasks.get(task.task_id)
            ended = (
                raw is not None and TaskRecord.model_validate_json(raw).status in TERMINAL_STATUSES
            )
            if unless_terminal and ended:
                return False
            self._tasks[task.task_id] = task.model_dump_json()
        return True

    def unfinished(self) -> list[TaskRecord]:
        with self._lock:
            records = [TaskRecord.model_validate_json(r) for r in self._tasks.values()]
        return [t for t in records if t.status not in TERMINAL_STATUSES]

    # --- the timeline

    def record_step(self, step: StepRecord) -> None:
        with self._lock:
            entries = self._steps.setdefault(step.task_id, {})
            entries[(step.seq, step.n, step.kind)] = step.model_dump_json()

    def timeline(self, task_id: str) -> list[StepRecord]:
        with self._lock:
            entries = dict(self._steps.get(task_id, {}))
        return [StepRecord.model_validate_json(entries[k]) for k in sorted(entries)]

    # --- the conversation

    @staticmethod
    def _message_key(task_id: str, turn: int, n: int) -> str:
        return f"tasks/{task_id}/messages/{turn:04d}-{n:03d}.json"

    def put_message(self, task_id: str, turn: int, n: int, message: ChatMessage) -> str:
        key = self._message_key(task_id, turn, n)
        self.put_blob(key, message.model_dump_json().encode())
        return key

    def get_message(self, task_id: str, turn: int, n: int) -> ChatMessage | None:
        with self._lock:
            raw = self._blobs.get(self._message_key(task_id, turn, n))
        return ChatMessage.model_validate_json(raw) if raw is not None else None

    def messages(self, task_id: str) -> list[ChatMessage]:
        prefix = f"tasks/{task_id}/messages/"
        with self._lock:
            found = sorted((k, v) for k, v in self._blobs.items() if k.startswith(prefix))
        return [ChatMessage.model_validate_json(v) for _, v in found]

    def put_blob(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        with self._lock:
            self._blobs[key] = bytes(data)

    def get_blob(self, key: str) -> bytes:
        with self._lock:
            if key not in self._blobs:
                raise StoreUnavailable(f"agent store: get {key}: NoSuchKey")
            return self._blobs[key]

    # --- the budget

    @staticmethod
    def period(now: datetime | None = None) -> str:
        return (now or utcnow()).strftime("%Y-%m")

    def tokens_used(self, tenant: str, period: str | None = None) -> int:
        with self._lock:
            return self._budget.get((tenant, period or self.period()), 0)

    def reserve_tokens(
        self, tenant: str, tokens: int, limit: int, period: str | None = None
    ) -> bool:
        if tokens > limit:
            return False
        key = (tenant, period or self.period())
        with self._lock:
            used = self._budget.get(key, 0)
            if used > limit - tokens:
                return False
            self._budget[key] = used + int(tokens)
        return True

    def add_tokens(self, tenant: str, tokens: int, period: str | None = None) -> int:
        key = (tenant, period or self.period())
        with self._lock:
            self._budget[key] = self._budget.get(key, 0) + int(tokens)
            return self._budget[key]


class InMemoryApprovalRepository:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, str] = {}  # id -> record JSON, in the order created
        self._notified: dict[str, set[str]] = {}

    def _all(self) -> list[ApprovalRecord]:
        with self._lock:
            raws = list(self._records.values())
        return [ApprovalRecord.model_validate_json(r) for r in raws]

    # --- writes

    def create(self, record: ApprovalRecord) -> bool:
        with self._lock:
            if record.approval_id in self._records:
                return False
            self._records[record.approval_id] = record.model_dump_json()
        return True

    def mark_notified(self, approval_id: str, channel: str) -> None:
        with self._lock:
            self._notified.setdefault(approval_id, set()).add(channel)

    def update(
        self,
        approval_id: str,
        *,
        expect: ApprovalStatus,
        set_: Mapping[str, Any],
        remove: Collection[str] = (),
    ) -> ApprovalRecord | None:
        check_approval_update(set_, remove)
        with self._lock:
            raw = self._records.get(approval_id)
            if raw is None:
                return None
            current = ApprovalRecord.model_validate_json(raw)
            if current.status != expect:
                return None
            updated = apply_approval_update(current, set_, remove)
            self._records[approval_id] = updated.model_dump_json()
        return updated

    # --- reads

    def get(self, approval_id: str) -> ApprovalRecord | None:
        with self._lock:
            raw = self._records.get(approval_id)
        return ApprovalRecord.model_validate_json(raw) if raw is not None else None

    def notified(self, approval_id: str) -> set[str]:
        with self._lock:
            return set(self._notified.get(approval_id, ()))

    def list_pending(self, tenant: str) -> list[ApprovalRecord]:
        found = [r for r in self._all() if r.status == "pending" and r.tenant == tenant]
        return sorted(found, key=lambda r: r.created_at)

    def for_task(self, task_id: str) -> list[ApprovalRecord]:
        return sorted((r for r in self._all() if r.task_id == task_id), key=lambda r: r.created_at)

    def undelivered(self, decided_before: datetime) -> list[ApprovalRecord]:
        found = [
            r
            for r in self._all()
            if r.status in ("approved", "denied")
            and r.delivered_at is None
            and r.decided_at is not None
            and r.decided_at <= decided_before
        ]
        return sorted(found, key=lambda r: r.decided_at or decided_before)


class InMemoryOutbox(Outbox):
    """The outbox (``EffectOutbox``) with its records in memory: ``Outbox.once``'s claim, run,
    finish-or-release logic unchanged, over a dict instead of conditional DynamoDB writes."""

    def __init__(self) -> None:
        super().__init__(table_name="(memory)")
        self._lock = threading.Lock()
        self._records: dict[str, dict[str, Any]] = {}

    def _claim(self, key: str) -> bool:
        with self._lock:
            if key in self._records:
                return False
            self._records[key] = {"status": PENDING, "started_at": utcnow().isoformat()}
            return True

    def _stored(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            item = dict(self._records[key]) if key in self._records else None
        if item is None:
            return None
        if item["status"] == DONE:
            return dict(item["result"])
        raise EffectInDoubt(
            "an earlier attempt of this call started its side effect and never recorded the "
            f"outcome (since {item['started_at']}); it may have happened, so it is not "
            "attempted again: check before asking for it anew"
        )

    def _release(self, key: str) -> None:
        with self._lock:
            if self._records.get(key, {}).get("status") == PENDING:
                del self._records[key]

    def _finish(self, key: str, result: dict[str, Any]) -> None:
        with self._lock:
            self._records[key] = {
                "status": DONE,
                "result": json.loads(json.dumps(result, default=str)),
            }
