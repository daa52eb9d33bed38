"""P8's load figure: concurrent clients on POST /query against the local cloud's API.

    python bench/bench_load.py [--clients 30] [--seconds 60] [--containers 1,4] [--json OUT]

SciFact's first ``--docs`` abstracts are ingested once; then, for each API container count, a
separate process (so the clients do not share the server's interpreter) runs ``--clients``
threads that ask SciFact questions back to back for ``--seconds``: requests/s, errors and
p50/p95/p99. The last configuration is measured again while ``--ingest`` more abstracts are
uploaded (the pipeline shares the two cores). Corpus: ../shared/data/scifact.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import (  # bench/ is on sys.path as a script
    SHARED,
    free_port,
    nearest_rank,
    scifact_rows,
)

TENANT = "bench"


def drive(
    url: str, token: str, questions: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    """The load generator (run in its own process): ``clients`` threads, one request in flight
    each, for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(n: int) -> None:
        http = httpx.Client(base_url=url, timeout=60, headers={"authorization": f"Bearer {token}"})
        i = n
        while time.monotonic() < deadline:
            question = questions[i % len(questions)]
            i += clients
            started = time.perf_counter()
            try:
                resp = http.post("/query", json={"question": question})
                ok = resp.status_code == 200
                why = "" if ok else f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                ok, why = False, f"{type(exc).__name__}: {exc!r}"[:200]
            ms = (time.perf_counter() - started) * 1000
            with lock:
                if ok:
                    latencies.append(ms)
                else:
                    errors.append(why)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies) + len(errors),
        "requests_per_s": round((len(latencies) + len(errors)) / elapsed, 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "p50_ms": round(nearest_rank(latencies, 50), 1),
        "p95_ms": round(nearest_rank(latencies, 95), 1),
        "p99_ms": round(nearest_rank(latencies, 99), 1),
    }


def run_driver(
    url: str, token: str, questions: list[str], clients: int, seconds: float
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(
            {
                "url": url,
                "token": token,
                "questions": questions,
                "clients": clients,
                "seconds": seconds,
            },
            f,
        )
    out = subprocess.run(
        [sys.executable, __file__, "--drive", f.name], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--containers", default="1,4", help="API container counts to compare")
    parser.add_argument("--docs", type=int, default=1000, help="abstracts ingested first")
    parser.add_argument("--ingest", type=int, default=500, help="abstracts uploaded under load")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--drive", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        spec = json.loads(Path(args.drive).read_text())
        print(
            json.dumps(
                drive(
                    spec["url"], spec["token"], spec["questions"], spec["clients"], spec["seconds"]
                )
            )
        )
        return 0
    docs = scifact_rows()
    if docs is None:
        return 2
    first, later = docs[: args.docs], docs[args.docs : args.docs + args.ingest]
    questions = [
        json.loads(line)["text"] for line in (SHARED / "scifact" / "queries.jsonl").open()
    ][:300]
    counts = [int(c) for c in args.containers.split(",")]

    import httpx

    from docket import aws
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    results: dict[str, Any] = {"documents": len(first), "runs": []}
    data_dir = Path(tempfile.mkdtemp(prefix="docket-load-"))
    # the load, not the per-tenant rate limit (docket.access.limits), is what is measured
    no_limits = {"DOCKET_QUERY_RPM": "0", "DOCKET_MCP_RPM": "0"}
    cloud = LocalCloud(data_dir, persist=False, api_containers=max(counts), env=no_limits).start(
        s3_port=free_port()
    )
    gateway = Gateway(cloud, port=free_port()).start()
    try:
        s3 = aws.client("s3")

        def put(batch: list[dict[str, Any]]) -> None:
            for d in batch:
                body = f"{d.get('title', '')}\n\n{d['text']}".encode()
                s3.put_object(
                    Bucket="docket-documents",
                    Key=f"tenants/{TENANT}/scifact/{d['_id']}.txt",
                    Body=body,
                )

        put(first)
        cloud.wait_idle(timeout=3600)
        token = httpx.post(
            f"{gateway.url}/_local/token", json={"tenant": TENANT, "groups": []}
        ).json()["token"]
        assert cloud.runtime is not None
        api = cloud.wiring.api_function
        from dataclasses import replace

        for n in counts:
            # the pool grows on demand up to the spec's count: set it for this run
            cloud.runtime.specs[api] = replace(cloud.runtime.specs[api], local_containers=n)
            run = run_driver(gateway.url, token, questions, args.clients, args.seconds)
            run.update(containers=n, while_ingesting=False)
            print(json.dumps(run), flush=True)
            results["runs"].append(run)
        uploader = threading.Thread(target=put, args=(later,))
        uploader.start()
        run = run_driver(gateway.url, token, questions, args.clients, args.seconds)
        uploader.join()
        run.update(containers=counts[-1], while_ingesting=True, uploaded=len(later))
        print(json.dumps(run), flush=True)
        results["runs"].append(run)
        cloud.wait_idle(timeout=3600)
    finally:
        gateway.stop()
        cloud.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["errors"] == 0 for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
