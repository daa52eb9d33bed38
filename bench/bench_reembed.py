"""P6's figures: a live knowledge base re-embedded fp32 → int8 through the rebuild state machine on
the local cloud, while a bounded query loop runs against the API and documents are added and
deleted.

    python bench/bench_reembed.py [--limit N] [--json OUT]

Reports: queries answered before and during the build with their p50/p95 latency, errors, and
whether any answer came from a model other than the live generation's (mixed); the chunks added
and deleted during the build present/absent after cutover; the gate's figures (nDCG@10 and
Recall@50 of both generations on SciFact's test questions whose documents were ingested); the
wall time of each stage. Corpus: ../shared/data/scifact (never copied here).
"""

from __future__ import annotations

import argparse
import json
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


class QueryLoop:
    """Asks questions one after another (a bounded loop: one in flight) and records each."""

    def __init__(self, http: Any, headers: dict[str, str], questions: list[str]) -> None:
        self.http, self.headers, self.questions = http, headers, questions
        self.records: list[dict[str, Any]] = []
        self.phase = "before"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            question = self.questions[i % len(self.questions)]
            i += 1
            started = time.perf_counter()
            try:
                resp = self.http.post(
                    "/query", json={"question": question}, headers=self.headers, timeout=60
                )
                ok = resp.status_code == 200
                model = resp.json().get("embedding_model") if ok else None
            except Exception:  # a dropped connection is an error like a 5xx
                ok, model = False, None
            self.records.append(
                {
                    "phase": self.phase,
                    "ok": ok,
                    "ms": (time.perf_counter() - started) * 1000,
                    "model": model,
                    "at": time.monotonic(),
                }
            )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()

    def summary(self, phase: str) -> dict[str, Any]:
        rows = [r for r in self.records if r["phase"] == phase]
        ms = [r["ms"] for r in rows if r["ok"]]
        return {
            "queries": len(rows),
            "errors": sum(not r["ok"] for r in rows),
            "p50_ms": round(nearest_rank(ms, 50), 1),
            "p95_ms": round(nearest_rank(ms, 95), 1),
            "models": sorted({str(r["model"]) for r in rows if r["ok"]}),
        }


def write_golden(folder: Path, ids: set[str], limit: int) -> int:
    """SciFact's test questions whose relevant documents were all ingested, with qrels naming
    documents by their source in the knowledge base (``scifact/{id}.txt``)."""
    qrels: dict[str, list[str]] = {}
    for line in (SHARED / "scifact" / "qrels" / "test.tsv").open():
        q, doc, score = line.rstrip("\n").split("\t")
        if q != "query-id" and int(score) > 0:
            qrels.setdefault(q, []).append(doc)
    kept = {q: docs for q, docs in qrels.items() if all(d in ids for d in docs)}
    kept = dict(list(kept.items())[:limit])
    queries = [json.loads(line) for line in (SHARED / "scifact" / "queries.jsonl").open()]
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("")
    (folder / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": q["_id"], "text": q["text"]}) + "\n"
            for q in queries
            if q["_id"] in kept
        )
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\tscifact/{d}.txt\t1\n" for q, docs in kept.items() for d in docs)
    )
    return len(kept)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="documents (0 = all 5,183)")
    parser.add_argument("--changes", type=int, default=20, help="documents added and deleted")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    docs = scifact_rows(limit=args.limit)
    if docs is None:
        return 2
    initial, added = docs[: len(docs) - args.changes], docs[len(docs) - args.changes :]
    deleted = initial[: args.changes]
    queries = [json.loads(line) for line in (SHARED / "scifact" / "queries.jsonl").open()]
    questions = [q["text"] for q in queries][:200]

    import httpx

    from docket import aws
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    data_dir = Path(tempfile.mkdtemp(prefix="docket-reembed-"))
    cloud = LocalCloud(
        data_dir,
        persist=False,
        env={"DOCKET_EMBEDDING_PRECISION": "fp32", "DOCKET_GENERATION_CACHE_SECONDS": "1"},
    ).start(s3_port=free_port())
    gateway = Gateway(cloud, port=free_port()).start()
    http = httpx.Client(base_url=gateway.url, timeout=60)
    token = http.post(
        "/_local/token", json={"tenant": TENANT, "groups": [], "scopes": ["admin", "query"]}
    ).json()["token"]
    headers = {"authorization": f"Bearer {token}"}
    s3 = aws.client("s3")

    def put(d: dict[str, Any]) -> None:
        body = f"{d.get('title', '')}\n\n{d['text']}".encode()
        s3.put_object(
            Bucket="docket-documents", Key=f"tenants/{TENANT}/scifact/{d['_id']}.txt", Body=body
        )

    out: dict[str, Any] = {"documents": len(initial)}
    try:
        started = time.perf_counter()
        for d in initial:
            put(d)
        cloud.wait_idle(timeout=7200)
        out["ingest_s"] = round(time.perf_counter() - started, 1)
        print(f"ingested {len(initial)} documents (fp32) in {out['ingest_s']} s", flush=True)
        golden = data_dir / "golden"
        out["golden_questions"] = write_golden(golden, {d["_id"] for d in initial}, 300)

        loop = QueryLoop(http, headers, questions)
        loop.start()
        time.sleep(20)  # the baseline: queries against the live fp32 generation alone
        loop.phase = "during"
        build_started = time.perf_counter()
        resp = http.post(
            "/index/generations",
            headers=headers,
            json={
                "model": "all-MiniLM-L6-v2-int8",
                "golden_dir": str(golden),
                "golden_tenant": TENANT,
            },
        )
        resp.raise_for_status()
        number = resp.json()["generation"]["number"]
        # writes during the build: new documents in, old ones out
        time.sleep(2)
        for d in added:
            put(d)
        for d in deleted:
            s3.delete_object(
                Bucket="docket-documents", Key=f"tenants/{TENANT}/scifact/{d['_id']}.txt"
            )
        while True:
            g = next(
                x
                for x in http.get("/index/status", headers=headers).json()["generations"]
                if x["number"] == number
            )
            if g["state"] != "building":
                break
            time.sleep(1)
        out["build_s"] = round(time.perf_counter() - build_started, 1)
        loop.phase = "after"
        time.sleep(5)
        loop.stop()
        cloud.wait_idle(timeout=600)
        out["state"] = g["state"]
        out["reason"] = g.get("reason")
        out["gate"] = g.get("gate")
        out["stages_s"] = g.get("timings_s")
        out["counts"] = g.get("counts")
        out["queries"] = {phase: loop.summary(phase) for phase in ("before", "during", "after")}
        # mixed: an answer whose model is neither generation's, or an fp32 answer after cutover
        models = {r["model"] for r in loop.records if r["ok"]}
        out["mixed_model_answers"] = sum(
            1
            for r in loop.records
            if r["ok"] and r["phase"] == "after" and not str(r["model"]).endswith("-int8")
        )
        out["models_seen"] = sorted(str(m) for m in models)
        from docket.config import get_settings
        from docket.generations.live import LiveGenerations, open_generation, registry_for
        from docket.models import document_id_for

        settings = get_settings()
        _, live_settings = LiveGenerations(settings, registry_for(settings)).live()
        index, _ = open_generation(live_settings)
        present = sum(
            index.count_document(TENANT, document_id_for(TENANT, f"scifact/{d['_id']}.txt")) > 0
            for d in added
        )
        gone = sum(
            index.count_document(TENANT, document_id_for(TENANT, f"scifact/{d['_id']}.txt")) == 0
            for d in deleted
        )
        out["added_present"] = f"{present}/{len(added)}"
        out["deleted_absent"] = f"{gone}/{len(deleted)}"
    finally:
        gateway.stop()
        cloud.stop()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if out.get("state") == "live" else 1


if __name__ == "__main__":
    sys.exit(main())
