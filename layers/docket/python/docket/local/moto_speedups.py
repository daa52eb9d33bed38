"""Two emulator hot spots that make moto quadratic on corpus-sized runs, fixed without changing
what it returns:

- DynamoDB ``Query`` on a table's own key: moto sorts and scans every item of the table
  (``Table.all_items``) to find one partition. We hand it just that partition.
- SQS ``ReceiveMessage``: for each message returned, moto recomputes every queue attribute,
  including counts that walk the whole queue, only to read ``MessageRetentionPeriod``; and
  ``SendMessage`` computes the same attributes to read one flag (``ContentBasedDeduplication``),
  so queueing N uploads walked the queue 3N times. Sending now skips the three counts (nothing
  it reads), and the visible-message list is computed with one clock reading instead of two per
  message.

Both are applied once, when the local cloud starts; tests/integration exercises them.
"""

from __future__ import annotations

import json
import threading
from typing import Any

_state = threading.local()
_QUEUE_COUNTS = {
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
}
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.core.utils import camelcase_to_underscores, unix_time, unix_time_millis
    from moto.dynamodb.models.table import Table
    from moto.sqs.models import Queue, SQSBackend

    original_query = Table.query
    original_all_items = Table.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = (
            kwargs.get("index_name")
            if "index_name" in kwargs
            else (args[6] if len(args) > 6 else None)
        )
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _state.partition = hash_key
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _state.partition = None

    def all_items(self: Any) -> Any:
        partition = getattr(_state, "partition", None)
        if partition is None:
            return original_all_items(self)
        bucket = self.items.get(partition)
        if bucket is None:
            return []
        if not self.range_key_attr:
            return [bucket]
        return sorted(bucket.values(), key=lambda x: x.range_key)

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        queue = self.get_queue(queue_name)
        retention = int(getattr(queue, "message_retention_period", 86400 * 4))
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    original_attributes: Any = Queue.__dict__["attributes"]  # the property object
    original_send = SQSBackend.send_message

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(_state, "sending", False):
            return original_attributes.fget(self)  # type: ignore[no-any-return]
        # moto's Queue.attributes without the three counts (each walks every message)
        names = [a for a in self.BASE_ATTRIBUTES if a not in _QUEUE_COUNTS]
        if self.fifo_queue:
            names += self.FIFO_ATTRIBUTES
        if self.kms_master_key_id:
            names += self.KMS_ATTRIBUTES
        result = {name: getattr(self, camelcase_to_underscores(name)) for name in names}
        if self.policy:
            result["Policy"] = self.policy
        if self.redrive_policy:
            result["RedrivePolicy"] = json.dumps(self.redrive_policy)
        return {k: str(v).lower() if isinstance(v, bool) else v for k, v in result.items()}

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        _state.sending = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _state.sending = False

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    Queue.attributes = property(attributes)  # type: ignore[method-assign,assignment]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    valid = is_message_valid_based_on_retention_period
    SQSBackend.is_message_valid_based_on_retention_period = valid  # type: ignore[method-assign]
    _applied = True
