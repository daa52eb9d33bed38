"""Loads sample events from events/ (one JSON file per trigger)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


@cache
def _load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(_load(name))
