"""JSON and JSON Lines flattened to "path.to.key: value" lines, readable and searchable."""

from __future__ import annotations

import json
from typing import Any

from docket.errors import CorruptDocument
from docket.extract.base import RawDocument
from docket.extract.encoding import decode_text

_TITLE_KEYS = ("title", "name", "subject", "headline")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(value: Any, prefix: str = "") -> list[str]:
    """Depth-first, document order; iterative so deep nesting cannot exhaust the stack."""
    lines: list[str] = []
    stack: list[tuple[str, Any]] = [(prefix, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            children = [
                (f"{path}.{key}" if path else str(key), child) for key, child in item.items()
            ]
            stack.extend(reversed(children))
        elif isinstance(item, list):
            children = [(f"{path}[{index}]", child) for index, child in enumerate(item)]
            stack.extend(reversed(children))
        else:
            lines.append(f"{path or 'value'}: {_scalar(item)}")
    return lines


def _title(value: Any) -> str | None:
    """A top-level "title"/"name", looking through single-key wrappers ({"report": {...}})."""
    for _ in range(3):
        if not isinstance(value, dict):
            return None
        for key in _TITLE_KEYS:
            if isinstance(value.get(key), str):
                return str(value[key])
        if len(value) != 1:
            return None
        value = next(iter(value.values()))
    return None


def extract_json(fmt: str, data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    text, encoding = decode_text(data, declared=charset, what="JSON file")
    text = text.lstrip("\ufeff")
    metadata = {"encoding": encoding}
    try:
        if fmt == "json":
            try:
                value = json.loads(text)
                return RawDocument.single(
                    "\n".join(flatten(value)), title=_title(value), metadata=metadata
                )
            except json.JSONDecodeError:
                if "\n" not in text.strip():
                    raise
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise CorruptDocument(f"invalid JSON: {exc}") from exc
    metadata["records"] = str(len(records))
    blocks = ["\n".join(flatten(record, f"[{index}]")) for index, record in enumerate(records)]
    return RawDocument.single("\n\n".join(blocks), metadata=metadata)
