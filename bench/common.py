"""What the benchmarks that start a local cloud share (bench/ is on sys.path when a benchmark
runs as a script)."""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive case scores above a random negative one (ties 0.5)."""
    import numpy as np

    pos, neg = np.asarray(positive, float), np.asarray(negative, float)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def percentiles(values: list[float], digits: int = 2) -> dict[str, float]:
    """p50 (the median) and p95 (nearest rank) of ``values``, rounded."""
    import statistics

    return {
        "p50": round(statistics.median(values), digits),
        "p95": round(nearest_rank(values, 95), digits),
    }


@contextmanager
def gateway_client(
    env: dict[str, str], prefix: str, documents: list[dict] | None = None, tenant: str = "bench"
) -> Iterator[tuple[Any, Any, dict[str, str]]]:
    """A local cloud (settings ``env``) and its gateway, ``documents`` (SciFact rows) uploaded
    to ``tenant`` and indexed: (the cloud, an HTTP client of the gateway, headers with a token of
    ``tenant`` asking for JSON). Stopped on the way out."""
    import tempfile

    import httpx

    from docket import aws
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    cloud = LocalCloud(Path(tempfile.mkdtemp(prefix=prefix)), persist=False, env=env)
    cloud.start(s3_port=free_port())
    gateway = Gateway(cloud, port=free_port()).start()
    try:
        s3 = aws.client("s3")
        for d in documents or []:
            body = f"{d.get('title', '')}\n\n{d['text']}".encode()
            s3.put_object(
                Bucket="docket-documents", Key=f"tenants/{tenant}/scifact/{d['_id']}.txt", Body=body
            )
        cloud.wait_idle(timeout=7200)
        http = httpx.Client(base_url=gateway.url, timeout=60)
        token = http.post("/_local/token", json={"tenant": tenant}).json()["token"]
        # JSON: a client that also accepts text/event-stream would get the event stream
        yield cloud, http, {"authorization": f"Bearer {token}", "accept": "application/json"}
    finally:
        gateway.stop()
        cloud.stop()
