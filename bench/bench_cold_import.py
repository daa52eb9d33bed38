"""Cold import time of each Lambda handler module: what Lambda pays at every cold start.

Each measurement is a fresh interpreter that imports functions/<name>/handler.py and reports the
import's wall time and which heavy or local-only modules it pulled in. Baseline in the same run:
the bare interpreter importing nothing (`pass`). Target: ≤ 300 ms per handler.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ["extract", "chunk", "embed", "api"]
LOCAL_ONLY = ["onnxruntime", "tantivy", "moto", "torch", "onnx", "safetensors", "boto3", "numpy"]

PROBE = """
import importlib.util, json, sys, time
path = sys.argv[1]
t0 = time.perf_counter()
if path != "-":
    spec = importlib.util.spec_from_file_location("handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
elapsed = (time.perf_counter() - t0) * 1000
heavy = [m for m in {local} if m in sys.modules]
# What the first invocation adds, deferred out of the import: boto3 clients and the X-Ray tracer.
t1 = time.perf_counter()
if path != "-":
    import boto3
    from aws_lambda_powertools import Tracer
    Tracer(service="docket")
first = (time.perf_counter() - t1) * 1000
print(json.dumps({"ms": elapsed, "heavy": heavy, "first": first}))
""".replace("{local}", repr(LOCAL_ONLY))


def measure(path: str, runs: int) -> tuple[float, list[str], float]:
    times, heavy, firsts = [], [], []
    env = {"POWERTOOLS_TRACE_DISABLED": "false", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, path], capture_output=True, text=True, check=True, env=env
        ).stdout
        data = json.loads(out.strip().splitlines()[-1])
        times.append(data["ms"])
        firsts.append(data["first"])
        heavy = data["heavy"]
    return statistics.median(times), heavy, statistics.median(firsts)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    base, _, _ = measure("-", runs)
    print(f"cold import of handler modules (median of {runs} fresh interpreters; target ≤ 300 ms)")
    print(f"  {'baseline (empty import)':<28} {base:7.1f} ms")
    worst = 0.0
    for name in HANDLERS:
        ms, heavy, first = measure(str(ROOT / "functions" / name / "handler.py"), runs)
        worst = max(worst, ms)
        print(
            f"  {name:<28} {ms:7.1f} ms   heavy modules loaded: {', '.join(heavy) or 'none'}"
            f"   (+{first:.0f} ms at first invocation: boto3 + X-Ray tracer)"
        )
    print(
        f"  worst handler: {worst:.1f} ms ({'meets' if worst <= 300 else 'MISSES'} the 300 ms target)"
    )


if __name__ == "__main__":
    main()
