"""Where generations are recorded: a port, a DynamoDB adapter and an in-memory fake.

Both pass tests/unit/generations/test_registry_contract.py. The live pointer and the generation
being built are one item (``POINTER``); every move of it is a conditional write, so two rebuilds
cannot both start, and a cutover or rollback either happens whole or not at all.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from docket.errors import Conflict, NotFound, StoreUnavailable
from docket.generations.models import Generation, GenerationState


class RebuildInProgress(Conflict):
    code = "rebuild_in_progress"


class NoPreviousGeneration(NotFound):
    code = "no_previous_generation"


class GenerationRegistry(Protocol):
    def live(self) -> Generation | None:
        """The live generation; None before the first rebuild (the settings' index is live)."""
        ...

    def building(self) -> Generation | None:
        """The generation being built, if any."""
        ...

    def get(self, number: int) -> Generation | None: ...

    def all(self) -> list[Generation]:
        """All generations, newest first."""
        ...

    def begin(self, first: Generation, new: Generation) -> Generation:
        """Record ``new`` as building. ``first`` is recorded as live when nothing is yet (the
        settings' index becomes generation 1). Raises RebuildInProgress when one is building."""
        ...

    def save(self, generation: Generation) -> None:
        """Store a generation's progress (stage, counts, gate, execution)."""
        ...

    def abort(self, number: int, reason: str) -> Generation:
        """End the build of ``number``: aborted with ``reason``; the live one is untouched."""
        ...

    def cutover(self, number: int) -> Generation:
        """Make the building ``number`` live and the live one retired, in one step."""
        ...

    def rollback(self) -> Generation:
        """Make the newest retired generation live again and the live one retired.
        Raises NoPreviousGeneration when there is none, RebuildInProgress during a build."""
        ...

    def mark_deleted(self, number: int) -> None:
        """A retired generation whose index is gone (retention over)."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _retired(g: Generation) -> Generation:
    return g.model_copy(update={"state": GenerationState.RETIRED, "retired_at": _now()})


def _live(g: Generation) -> Generation:
    return g.model_copy(update={"state": GenerationState.LIVE, "live_since": _now(), "stage": None})


def _previous(generations: list[Generation]) -> Generation:
    retired = [g for g in generations if g.state == GenerationState.RETIRED]
    if not retired:
        raise NoPreviousGeneration(
            "no previous generation to roll back to (none was retired, or its retention ended)"
        )
    return max(retired, key=lambda g: (g.retired_at or g.created_at, g.number))


class InMemoryGenerationRegistry:
    """The fake: one lock around a dict, the same rules as the DynamoDB adapter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generations: dict[int, Generation] = {}
        self._live: int | None = None
        self._building: int | None = None

    def live(self) -> Generation | None:
        with self._lock:
            return None if self._live is None else self._generations[self._live]

    def building(self) -> Generation | None:
        with self._lock:
            return None if self._building is None else self._generations[self._building]

    def get(self, number: int) -> Generation | None:
        with self._lock:
            return self._generations.get(number)

    def all(self) -> list[Generation]:
        with self._lock:
            return sorted(self._generations.values(), key=lambda g: -g.number)

    def begin(self, first: Generation, new: Generation) -> Generation:
        with self._lock:
            if self._building is not None:
                raise RebuildInProgress(f"generation {self._building} is being built")
            if new.number in self._generations:
                raise RebuildInProgress(f"generation {new.number} already exists")
            if self._live is None:
                self._generations[first.number] = first
                self._live = first.number
            self._generations[new.number] = new
            self._building = new.number
            return new

    def save(self, generation: Generation) -> None:
        with self._lock:
            if generation.number not in self._generations:
                raise NotFound(f"no generation {generation.number}")
            self._generations[generation.number] = generation

    def abort(self, number: int, reason: str) -> Generation:
        with self._lock:
            g = self._generations.get(number)
            if g is None or g.state != GenerationState.BUILDING:
                raise Conflict(f"generation {number} is not being built")
            g = g.model_copy(update={"state": GenerationState.ABORTED, "reason": reason})
            self._generations[number] = g
            if self._building == number:
                self._building = None
            return g

    def cutover(self, number: int) -> Generation:
        with self._lock:
            if self._building != number:
                raise Conflict(f"generation {number} is not being built")
            new = _live(self._generations[number])
            if self._live is not None:
                self._generations[self._live] = _retired(self._generations[self._live])
            self._generations[number] = new
            self._live, self._building = number, None
            return new

    def rollback(self) -> Generation:
        with self._lock:
            if self._building is not None:
                raise RebuildInProgress(
                    f"generation {self._building} is being built: roll back after it ends"
                )
            previous = _previous(list(self._generations.values()))
            if self._live is not None:
                self._generations[self._live] = _retired(self._generations[self._live])
            self._generations[previous.number] = _live(previous)
            self._live = previous.number
            return self._generations[previous.number]

    def mark_deleted(self, number: int) -> None:
        with self._lock:
            g = self._generations[number]
            if g.state == GenerationState.RETIRED:
                self._generations[number] = g.model_copy(update={"state": GenerationState.DELETED})


POINTER = "POINTER"


def _gen_key(number: int) -> str:
    return f"GEN#{number:06d}"


class DynamoGenerationRegistry:
    """One table (partition key ``pk``): ``POINTER`` {live, building} and ``GEN#n`` items."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def _ddb(self) -> Any:
        from docket import aws

        return aws.client("dynamodb")

    def _codec(self) -> Any:
        from docket.store.dynamodb import _Codec

        return _Codec()

    def _pointer(self, consistent: bool = True) -> dict[str, Any]:
        try:
            resp = self._ddb().get_item(
                TableName=self.table_name, Key={"pk": {"S": POINTER}}, ConsistentRead=consistent
            )
        except Exception as exc:
            raise StoreUnavailable(f"generations table: {exc}") from exc
        return self._codec().from_item(resp.get("Item", {}))

    def _item(self, g: Generation) -> dict[str, Any]:
        return self._codec().to_item({"pk": _gen_key(g.number), **g.model_dump(mode="json")})

    def live(self) -> Generation | None:
        number = self._pointer().get("live")
        return None if number is None else self.get(int(number))

    def building(self) -> Generation | None:
        number = self._pointer().get("building")
        return None if number is None else self.get(int(number))

    def get(self, number: int) -> Generation | None:
        try:
            resp = self._ddb().get_item(
                TableName=self.table_name, Key={"pk": {"S": _gen_key(number)}}, ConsistentRead=True
            )
        except Exception as exc:
            raise StoreUnavailable(f"generations table: {exc}") from exc
        item = resp.get("Item")
        if item is None:
            return None
        data = self._codec().from_item(item)
        data.pop("pk", None)
        return Generation.model_validate(data)

    def all(self) -> list[Generation]:
        """Generation numbers run 1..``last`` (kept on the pointer): one BatchGetItem per 100,
        no Scan (the functions that read generations are granted item reads only)."""
        last = self._pointer().get("last")
        if last is None:
            return []
        keys = [{"pk": {"S": _gen_key(n)}} for n in range(1, int(last) + 1)]
        from docket.store.dynamodb import _until_processed

        out: list[Generation] = []
        try:
            for start in range(0, len(keys), 100):
                request = {
                    self.table_name: {"Keys": keys[start : start + 100], "ConsistentRead": True}
                }
                for resp in _until_processed(
                    self._ddb().batch_get_item, request, "UnprocessedKeys", "generations table"
                ):
                    for item in resp.get("Responses", {}).get(self.table_name, []):
                        data = self._codec().from_item(item)
                        data.pop("pk", None)
                        out.append(Generation.model_validate(data))
        except StoreUnavailable:
            raise
        except Exception as exc:
            raise StoreUnavailable(f"generations table: {exc}") from exc
        return sorted(out, key=lambda g: -g.number)

    def _transact(self, items: list[dict[str, Any]], conflict: Exception) -> None:
        ddb = self._ddb()
        try:
            ddb.transact_write_items(TransactItems=items)
        except ddb.exceptions.TransactionCanceledException as exc:
            raise conflict from exc
        except Exception as exc:
            raise StoreUnavailable(f"generations table: {exc}") from exc

    def _put(self, g: Generation, *, new: bool = False) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": self._item(g)}
        if new:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        return {"Put": put}

    def begin(self, first: Generation, new: Generation) -> Generation:
        pointer = self._pointer()
        items = [self._put(new, new=True)]
        if pointer.get("live") is None:
            items.append(self._put(first, new=True))
            update = self._pointer_update(
                "SET #l = :first, #b = :new, #n = :new",
                "attribute_not_exists(#l) AND attribute_not_exists(#b)",
                {":first": first.number, ":new": new.number},
            )
        else:
            update = self._pointer_update(
                "SET #b = :new, #n = :new",
                "#l = :live AND attribute_not_exists(#b)",
                {":new": new.number, ":live": int(pointer["live"])},
            )
        items.append(update)
        building = pointer.get("building")
        self._transact(
            items,
            RebuildInProgress(
                f"generation {building} is being built"
                if building is not None
                else "another rebuild started at the same moment"
            ),
        )
        return new

    def save(self, generation: Generation) -> None:
        try:
            self._ddb().put_item(
                TableName=self.table_name,
                Item=self._item(generation),
                ConditionExpression="attribute_exists(pk)",
            )
        except Exception as exc:
            if type(exc).__name__ == "ConditionalCheckFailedException":
                raise NotFound(f"no generation {generation.number}") from exc
            raise StoreUnavailable(f"generations table: {exc}") from exc

    def _pointer_update(self, expression: str, condition: str, values: dict[str, int]) -> Any:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": POINTER}},
                "UpdateExpression": expression,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {
                    k: v
                    for k, v in (("#l", "live"), ("#b", "building"), ("#n", "last"))
                    if k in expression or k in condition
                },
                "ExpressionAttributeValues": {k: {"N": str(v)} for k, v in values.items()},
            }
        }

    def abort(self, number: int, reason: str) -> Generation:
        g = self.get(number)
        if g is None or g.state != GenerationState.BUILDING:
            raise Conflict(f"generation {number} is not being built")
        g = g.model_copy(update={"state": GenerationState.ABORTED, "reason": reason})
        self._transact(
            [self._put(g), self._pointer_update("REMOVE #b", "#b = :n", {":n": number})],
            Conflict(f"generation {number} is not being built"),
        )
        return g

    def cutover(self, number: int) -> Generation:
        pointer = self._pointer()
        g = self.get(number)
        if g is None or pointer.get("building") != number:
            raise Conflict(f"generation {number} is not being built")
        new = _live(g)
        items = [self._put(new)]
        old = self.get(int(pointer["live"])) if pointer.get("live") is not None else None
        if old is not None:
            items.append(self._put(_retired(old)))
        items.append(
            self._pointer_update(
                "SET #l = :n REMOVE #b",
                "#b = :n AND #l = :old",
                {":n": number, ":old": old.number if old else -1},
            )
        )
        self._transact(items, Conflict(f"the live generation moved while {number} was cut over"))
        return new

    def rollback(self) -> Generation:
        pointer = self._pointer()
        if pointer.get("building") is not None:
            raise RebuildInProgress(
                f"generation {pointer['building']} is being built: roll back after it ends"
            )
        previous = _previous(self.all())
        current = self.get(int(pointer["live"])) if pointer.get("live") is not None else None
        items = [self._put(_live(previous))]
        if current is not None:
            items.append(self._put(_retired(current)))
        items.append(
            self._pointer_update(
                "SET #l = :p",
                "#l = :cur AND attribute_not_exists(#b)",
                {":p": previous.number, ":cur": current.number if current else -1},
            )
        )
        self._transact(items, Conflict("the live generation moved during the rollback"))
        return _live(previous)

    def mark_deleted(self, number: int) -> None:
        g = self.get(number)
        if g is not None and g.state == GenerationState.RETIRED:
            self.save(g.model_copy(update={"state": GenerationState.DELETED}))
