"""`make bench`: the benchmarks that print the README's figures, one after another, each in its
own process (they time things: never two at once on a shared machine). JSON results go to
bench/results/. The LlamaIndex peer runs beside the pipeline benchmark when PEER_PYTHON names
the Python of its virtual environment (../shared/peer/README.md says how to make one).

Usage: python bench/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def plan() -> dict[str, list[str]]:
    pipeline = ["bench_pipeline.py", "--json", str(RESULTS / "pipeline.json")]
    if os.environ.get("PEER_PYTHON"):
        pipeline += ["--peer", os.environ["PEER_PYTHON"]]
    return {
        "embedder": ["bench_embedder.py"],
        "embed_job": ["bench_embed_job.py", "--json", str(RESULTS / "embed-job-cpu.json")],
        "search": ["bench_search.py", "--json", str(RESULTS / "bench_search.json")],
        "pdf": ["bench_pdf_extract.py"],
        "pipeline": pipeline,
        "mcp": ["bench_mcp.py", "--limit", "1000", "--json", str(RESULTS / "mcp.json")],
        "sync": ["bench_sync.py", "--json", str(RESULTS / "sync.json")],
        "cache": ["bench_cache.py", "--latency", "--json", str(RESULTS / "cache.json")],
    }


def main() -> int:
    benches = plan()
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="+", choices=sorted(benches), default=None)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, command in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"\n=== {name}: python bench/{' '.join(command)}", flush=True)
        started = time.perf_counter()
        rc = subprocess.run([sys.executable, str(BENCH / command[0]), *command[1:]]).returncode
        print(f"=== {name}: exit {rc} after {time.perf_counter() - started:.0f} s", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
