"""Faults: ``docket serve`` killed (``kill -9``) or stopped (Ctrl-C) in the middle of ingesting 20
files and of an agent task. After a restart every document ends indexed, the index holds exactly
what a clean ingest of the same files holds (nothing the tables don't know, no duplicates), and the
interrupted task ends with a reason."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from docket.local.cloud import REPO_ROOT
from docket.wiring import AGENT_TABLE, DOCUMENTS_TABLE

from .conftest import Api, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONTRACTS = REPO_ROOT / "docs" / "samples" / "contracts"
TASK = (
    "Find what our documents say about the lemming tundra and e-mail a summary to ops@example.com"
)
WORDS = [
    *("lemming", "tundra", "glacier", "harbour", "ledger", "invoice", "turbine", "orchard"),
    *("meadow", "quarry", "lantern", "compass", "saffron", "walnut", "copper", "falcon"),
]


def corpus() -> dict[str, bytes]:
    """20 files of a few dozen chunks each: long enough to be mid-pipeline when killed."""
    files = {}
    for n in range(20):
        paragraphs = [
            f"Record {n}-{p}: the {WORDS[(n + p) % 16]} near the {WORDS[(n * 3 + p) % 16]} was "
            f"inspected on day {p} and logged as item {n * 100 + p}. " * 6
            for p in range(40)
        ]
        files[f"crash/file-{n:02d}.txt"] = "\n\n".join(paragraphs).encode()
    return files


@contextmanager
def serve(data: Path) -> Iterator[tuple[subprocess.Popen[bytes], Api]]:
    port = free_port()
    env = {**os.environ, "DOCKET_LOCAL_SNAPSHOT_SECONDS": "1"}
    env.pop("DOCKET_DATA_DIR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "docket.cli",
            "serve",
            "--port",
            str(port),
            "--s3-port",
            str(free_port()),
            "--data-dir",
            str(data),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data.parent / f"{data.name}-{port}.log", "wb"),  # noqa: SIM115
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "docket serve exited at start"
            assert time.monotonic() < deadline, "docket serve did not start"
            time.sleep(0.2)
        yield proc, Api(url)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def documents(api: Api) -> dict[str, dict[str, Any]]:
    body = api.call("GET", "/documents").json()
    return {d["source"]: d for d in body["documents"]}


def ingest_all(api: Api, files: dict[str, bytes], timeout: float = 240) -> dict[str, Any]:
    """Upload every file (as re-running ``docket ingest`` would) and wait for the end states."""
    for source, data in files.items():
        api.upload(source, data)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = documents(api)
        if len(docs) == len(files) and all(d["status"] != "pending" for d in docs.values()):
            return docs
        time.sleep(0.5)
    raise AssertionError(f"still pending: {[s for s, d in documents(api).items()]}")


def index_state(data: Path) -> dict[tuple[str, str], int]:
    """(tenant, chunk id) → how many live rows the index holds for it."""
    import sqlite3

    [db] = data.glob("index*/chunks.sqlite")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT tenant, chunk_id, COUNT(*) FROM chunks WHERE live = 1 GROUP BY 1, 2"
        ).fetchall()
    return {(t, c): n for t, c, n in rows}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], int]:
    data = tmp_path_factory.mktemp("clean") / "data"
    with serve(data) as (_, api):
        docs = ingest_all(api, corpus())
        assert {d["status"] for d in docs.values()} == {"indexed"}
    return index_state(data)


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_restart_after_a_stop_mid_ingest_repairs_everything(
    how: signal.Signals, clean: dict[tuple[str, str], int], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    files = corpus()
    with serve(data) as (proc, api):
        for source, body in files.items():
            api.upload(source, body)
        # Given the pipeline half way (some documents indexed, others still pending) and an
        # agent task waiting for a person's approval of its e-mail
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            statuses = [d["status"] for d in documents(api).values()]
            if len(statuses) == 20 and 0 < statuses.count("indexed") < 20:
                break
            time.sleep(0.1)
        task = api.call("POST", "/tasks", groups=("staff",), json={"prompt": TASK}).json()
        task_id = task["task"]["task_id"]
        # ...as the saved state holds them (a kill -9 loses the writes after the last snapshot)
        saved = data / "state" / "tables"
        while time.monotonic() < deadline:
            try:
                tasks = (saved / f"{AGENT_TABLE}.jsonl").read_text().splitlines()
                docs = (saved / f"{DOCUMENTS_TABLE}.jsonl").read_text().splitlines()
            except FileNotFoundError:  # not saved yet, or being swapped in
                tasks = docs = []
            waiting = [t for t in tasks if task_id in t and "waiting_approval" in t]
            if waiting and len(docs) == 20:
                break
            time.sleep(0.1)
        assert "pending" in {d["status"] for d in documents(api).values()}
        # When the local cloud is killed (or stopped) there
        proc.send_signal(how)
        proc.wait(60)
    # Then after a restart, and the same files ingested again as a user would
    with serve(data) as (_, api):
        docs = ingest_all(api, files)
        assert {s: d["status"] for s, d in docs.items()} == dict.fromkeys(files, "indexed")
        # the interrupted task ended with a reason (its execution died with the process), and
        # its approval is no longer offered
        got = api.call("GET", f"/tasks/{task_id}", groups=("staff",)).json()
        assert "task" in got, (got, task)
        body = got["task"]
        assert body["status"] == "failed" and "interrupted" in body["error"], body
        pending = api.call("GET", "/approvals", groups=("staff",)).json()["approvals"]
        assert [a for a in pending if a["task_id"] == task_id] == []
    # And the index holds exactly the clean ingest's chunks, each once
    assert index_state(data) == clean
