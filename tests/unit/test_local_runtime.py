"""The local cloud's in-process Lambda runtime: cold starts one at a time, and a cold start that
fails frees its container slot (the P8 startup race: a fresh `docket serve` hit by concurrent
requests could fail imports in two threads and then hang for good)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from docket.local.runtime import FunctionRuntime
from docket.wiring import FunctionSpec

HANDLER = """
import threading, time
ACTIVE = __import__("builtins").__dict__.setdefault("_docket_test_active", [0, 0])
ACTIVE[0] += 1
ACTIVE[1] = max(ACTIVE[1], ACTIVE[0])
time.sleep(0.05)  # a slow import: a concurrent one would overlap it
ACTIVE[0] -= 1
{fail}
def handler(event, context):
    return {{"ok": event.get("n")}}
"""


def runtime(tmp_path: Path, source: str, containers: int = 1) -> FunctionRuntime:
    (tmp_path / "fn").mkdir(exist_ok=True)
    (tmp_path / "fn" / "handler.py").write_text(source)
    spec = FunctionSpec("fn", "fn", local_containers=containers)
    return FunctionRuntime(tmp_path, (spec,), "us-east-1")


def test_concurrent_cold_starts_import_one_at_a_time(tmp_path: Path) -> None:
    import builtins

    builtins.__dict__["_docket_test_active"] = [0, 0]
    rt = runtime(tmp_path, HANDLER.format(fail=""), containers=4)
    results: list[object] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(rt.invoke("fn", {"n": i})))
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 4 and all(r[1] is False for r in results)  # type: ignore[index]
    assert builtins.__dict__["_docket_test_active"][1] == 1  # never two imports at once


def test_a_failed_cold_start_frees_its_slot(tmp_path: Path) -> None:
    # Given a one-container function whose first import waits for a signal, then fails
    go, fail = tmp_path / "go", tmp_path / "fail-once"
    fail.write_text("x")
    gate = (
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
        f"if os.path.exists({str(fail)!r}):\n"
        f"    os.remove({str(fail)!r}); raise ImportError('boom')"
    )
    rt = runtime(tmp_path, HANDLER.format(fail=gate))
    outcomes: dict[str, object] = {}

    def first() -> None:
        try:
            outcomes["first"] = rt.invoke("fn", {"n": 1})
        except ImportError as exc:
            outcomes["first"] = exc

    a = threading.Thread(target=first)
    a.start()
    while rt._loaded.get("fn") != 1:  # the first invoke holds the only container slot
        time.sleep(0.01)
    # and a second invoke is waiting for that container
    b = threading.Thread(target=lambda: outcomes.__setitem__("second", rt.invoke("fn", {"n": 2})))
    b.start()
    time.sleep(0.1)
    # When the cold start fails
    go.write_text("x")
    a.join(10)
    b.join(10)
    # Then the first invoke reports the error, and the waiting one gets a fresh container
    assert isinstance(outcomes["first"], ImportError)
    assert not b.is_alive() and outcomes["second"] == ({"ok": 2}, False)
    assert rt.invoke("fn", {"n": 3}) == ({"ok": 3}, False)


def test_the_local_cloud_runs_as_many_api_containers_as_asked(tmp_path: Path) -> None:
    from docket.local.cloud import LocalCloud

    cloud = LocalCloud(tmp_path, api_containers=3)
    api = cloud.wiring.function(cloud.wiring.api_function)
    mcp = cloud.wiring.function(cloud.wiring.mcp_function)  # the MCP server scales as the API
    auth = cloud.wiring.function(cloud.wiring.authorizer_function)  # so does its authorizer
    assert api.local_containers == mcp.local_containers == auth.local_containers == 3
    scaled = (api.name, mcp.name, auth.name)
    others = [f for f in cloud.wiring.functions if f.name not in scaled]
    assert all(f == LocalCloud(tmp_path).wiring.function(f.name) for f in others)
    with pytest.raises(ValueError, match="at least 1"):
        LocalCloud(tmp_path, api_containers=0)
