"""What the benchmarks that start a local cloud share (bench/ is on sys.path when a benchmark
runs as a script)."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOCKET_SHARED_DATA", ROOT.parent / "shared" / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nearest_rank(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def scifact_rows(name: str = "corpus.jsonl", limit: int = 0) -> list[dict] | None:
    """The rows of ../shared/data/scifact/``name`` (the first ``limit``; 0: all), or None with a
    message on stderr when the shared data is absent."""
    import json
    import sys

    path = SHARED / "scifact" / name
    if not path.exists():
        print(f"SciFact not found at {path}", file=sys.stderr)
        return None
    rows = [json.loads(line) for line in path.open()]
    return rows[:limit] if limit else rows


def scifact_test_questions(limit: int = 0) -> list[str]:
    """The texts of SciFact's test queries (those with test judgements), in file order; the
    first ``limit`` (0: all)."""
    import json

    test_ids = {line.split("\t")[0] for line in (SHARED / "scifact" / "qrels" / "test.tsv").open()}
    queries = (json.loads(line) for line in (SHARED / "scifact" / "queries.jsonl").open())
    texts = [q["text"] for q in queries if q["_id"] in test_ids]
    return texts[:limit] if limit else texts
