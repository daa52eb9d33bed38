"""At-most-once side effects: one record per idempotency key in the agent table.

A side-effecting tool (an e-mail, a Slack post, a non-GET HTTP request, a delete) runs its effect
through ``Outbox.once(key, effect)``:

1. a conditional put claims the key (pk ``OUTBOX#{key}``, sk ``OUTBOX``, status ``pending``);
2. the effect runs;
3. the record becomes ``done`` with the effect's result (JSON).

A retry of the same call (same key) finds the record. ``done``: the stored result comes back with
``replayed=True`` and the effect does not run again. ``pending``: an earlier attempt started the
effect and never recorded how it ended (the process died, or timed out mid-call); the effect may
have happened, so it is never attempted again and ``EffectInDoubt`` is raised for a person (or the
model) to check.

When the effect raises, it did not happen (the adapters raise before sending, or on a refusal), so
the claim is released and a retry may try again. The exception is an effect that raises
``ToolTimeout`` or ``EffectInDoubt``: its outcome is unknown (a request may have reached the
server before the timeout), so the claim stays ``pending`` and a retry gets ``EffectInDoubt``.

This is at most once, not exactly once: an effect can be lost (in doubt) but never doubled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from docket import aws
from docket.errors import EffectInDoubt, StoreUnavailable, ToolTimeout
from docket.models import utcnow
from docket.observability import logger

PENDING = "pending"
DONE = "done"

# Outcome unknown: the effect may have happened, so the claim is kept (see the module docstring).
_IN_DOUBT: tuple[type[BaseException], ...] = (ToolTimeout, EffectInDoubt)


class EffectOutbox(Protocol):
    """What tools need of the outbox (tests may pass an in-memory fake)."""

    def once(
        self, key: str, effect: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]: ...


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class Outbox:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @property
    def _ddb(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    @staticmethod
    def _key(key: str) -> dict[str, Any]:
        return {"pk": {"S": f"OUTBOX#{key}"}, "sk": {"S": "OUTBOX"}}

    def once(self, key: str, effect: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``(result, replayed)``: the effect's result, run now (``False``) or stored by an earlier
        attempt with the same key (``True``). Raises ``EffectInDoubt`` for a claim that never
        finished, and whatever the effect raises."""
        if not key:
            raise ValueError("an outbox key must not be empty")
        for _attempt in range(2):
            if self._claim(key):
                break
            stored = self._stored(key)
            if stored is not None:
                return stored, True
            # the record vanished between our put and our read: a concurrent attempt's effect
            # failed and released it, so the key is free again
        else:
            raise EffectInDoubt("this call's side effect is being attempted concurrently")
        try:
            result = effect()
        except _IN_DOUBT:
            logger.warning("side effect outcome unknown; kept pending", outbox_key=key)
            raise
        except BaseException:
            self._release(key)
            raise
        self._finish(key, result)
        return result, False

    def _claim(self, key: str) -> bool:
        item = {
            **self._key(key),
            "status": {"S": PENDING},
            "started_at": {"S": utcnow().isoformat()},
        }
        try:
            self._ddb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise StoreUnavailable(f"outbox: cannot claim {key}: {exc}") from exc
        return True

    def _stored(self, key: str) -> dict[str, Any] | None:
        """The recorded result; None when there is no record; ``EffectInDoubt`` when pending."""
        try:
            item = self._ddb.get_item(
                TableName=self.table_name, Key=self._key(key), ConsistentRead=True
            ).get("Item")
        except Exception as exc:
            raise StoreUnavailable(f"outbox: cannot read {key}: {exc}") from exc
        if item is None:
            return None
        if item.get("status", {}).get("S") == DONE:
            result: dict[str, Any] = json.loads(item.get("result", {}).get("S", "{}"))
            return result
        raise EffectInDoubt(
            "an earlier attempt of this call started its side effect and never recorded the "
            f"outcome (since {item.get('started_at', {}).get('S', '?')}); it may have happened, "
            "so it is not attempted again: check before asking for it anew"
        )

    def _release(self, key: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self.table_name,
                Key=self._key(key),
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":pending": {"S": PENDING}},
            )
        except Exception as exc:  # the record stays pending: a retry reports it in doubt
            logger.warning("outbox: cannot release a failed claim", outbox_key=key, error=str(exc))

    def _finish(self, key: str, result: dict[str, Any]) -> None:
        try:
            self._ddb.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="SET #s = :done, #r = :result, finished_at = :at",
                ExpressionAttributeNames={"#s": "status", "#r": "result"},
                ExpressionAttributeValues={
                    ":done": {"S": DONE},
                    ":result": {"S": json.dumps(result, default=str)},
                    ":at": {"S": utcnow().isoformat()},
                },
            )
        except Exception as exc:
            # The effect happened; only its record is missing. This attempt still returns the
            # result; a retry of the call finds the claim pending and reports it in doubt.
            logger.warning("outbox: effect done but not recorded", outbox_key=key, error=str(exc))
