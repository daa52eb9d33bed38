"""``InMemoryTaskRepository``: the ``TaskRepository`` port in a process's memory, with the DynamoDB
adapter's semantics (conditional create, ``unless_terminal``, idempotent steps, atomic budget
reservations), proven by the same contract suite (tests/agent_contract.py). For unit tests of the
agent's logic without an emulator."""

from __future__ import annotations

import threading
from datetime import datetime

from docket.agent.models import TERMINAL_STATUSES, StepRecord, TaskRecord
from docket.errors import NotFound, StoreUnavailable
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
