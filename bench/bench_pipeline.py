"""Ingestion throughput through the local cloud and query latency through the API, on SciFact.

1. Ingestion: every SciFact abstract becomes a .txt object put into the local S3 bucket; the
   figure is chunks (and documents) per second from the first put until every document is
   ``indexed``, going through S3 notification → SQS → extract → stream → chunk → stream → embed.
2. Baseline in the same run: the same ONNX embedder embedding the very same chunk texts directly
   (same batch size); the ratio pipeline/raw says what the pipeline costs beyond the model.
3. Query latency: POST /query (hybrid, top_k 10) over HTTP through the local gateway for the
   SciFact test queries, p50 and p95 as the client sees them.

Usage: python bench/bench_pipeline.py [--limit N] [--queries N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DOCKET_SHARED_DATA", ROOT.parent / "shared" / "data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=0, help="documents (0 = all 5,183)")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--preload",
        action="store_true",
        help="put every object first with the event sources stopped, then time only the pipeline",
    )
    args = parser.parse_args()

    corpus = SHARED / "scifact" / "corpus.jsonl"
    if not corpus.exists():
        print(f"SciFact not found at {corpus}", file=sys.stderr)
        return 2
    docs = [json.loads(line) for line in corpus.open()]
    if args.limit:
        docs = docs[: args.limit]
    queries = [json.loads(line) for line in (SHARED / "scifact" / "queries.jsonl").open()]
    test_ids = {line.split("\t")[0] for line in (SHARED / "scifact" / "qrels" / "test.tsv").open()}
    questions = [q["text"] for q in queries if q["_id"] in test_ids][: args.queries]

    import httpx

    from docket import aws
    from docket.local.cloud import LocalCloud
    from docket.local.gateway import Gateway

    data_dir = Path(tempfile.mkdtemp(prefix="docket-bench-"))
    cloud = LocalCloud(data_dir, persist=False).start(s3_port=free_port(), pollers=not args.preload)
    gateway = Gateway(cloud, port=free_port()).start()
    results: dict[str, object] = {"documents": len(docs), "preload": args.preload}
    try:
        # warm the model outside the timed region (both sides pay the same load otherwise)
        from docket.embedding.factory import get_embedder

        get_embedder().embed_documents(["warm up"])
        s3 = aws.client("s3")
        started = time.perf_counter()
        for d in docs:
            body = f"{d.get('title', '')}\n\n{d['text']}".encode()
            s3.put_object(
                Bucket="docket-documents", Key=f"tenants/bench/scifact/{d['_id']}.txt", Body=body
            )
        put_s = time.perf_counter() - started
        if args.preload:
            started = time.perf_counter()  # the uploads are queued: time the pipeline alone
            cloud.start_pollers()
        cloud.wait_idle(timeout=7200)
        ingest_s = time.perf_counter() - started
        from docket.store.dynamodb import DynamoDocumentStore

        records = DynamoDocumentStore("docket-documents").list("bench")
        statuses: dict[str, int] = {}
        for r in records:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        chunk_texts: list[str] = []
        for page in (
            aws.client("dynamodb")
            .get_paginator("scan")
            .paginate(
                TableName="docket-chunks",
                ProjectionExpression="#t",
                ExpressionAttributeNames={"#t": "text"},
            )
        ):
            chunk_texts.extend(i["text"]["S"] for i in page["Items"])
        n_chunks = len(chunk_texts)
        pipeline_cps = n_chunks / ingest_s
        print(
            f"ingested {len(docs)} documents → {n_chunks} chunks in {ingest_s:.1f}s "
            f"(puts took {put_s:.1f}s); statuses {statuses}"
        )
        print(f"  pipeline: {pipeline_cps:.1f} chunks/s, {len(docs) / ingest_s:.1f} documents/s")

        # baseline: the same embedder on the same chunk texts, same batch size, same process
        from docket.config import get_settings
        from docket.embedding.onnx import OnnxEmbedder
        from docket.embedding.onnx_export import ensure_exported

        settings = get_settings()
        raw = OnnxEmbedder(
            ensure_exported(settings.model_dir), batch_size=settings.embedding_batch_size
        )
        raw.embed_documents(["warm up"])
        t0 = time.perf_counter()
        batch = 64  # the embed function's event source batch size
        for i in range(0, n_chunks, batch):
            raw.embed_documents(chunk_texts[i : i + batch])
        raw_s = time.perf_counter() - t0
        raw_cps = n_chunks / raw_s
        print(f"  raw ONNX embedder on the same chunks: {raw_cps:.1f} chunks/s")
        print(f"  ratio pipeline/raw: {pipeline_cps / raw_cps:.2f} (target ≥ 0.6)")
        results.update(
            chunks=n_chunks,
            ingest_seconds=round(ingest_s, 2),
            pipeline_chunks_per_s=round(pipeline_cps, 2),
            pipeline_docs_per_s=round(len(docs) / ingest_s, 2),
            raw_chunks_per_s=round(raw_cps, 2),
            ratio=round(pipeline_cps / raw_cps, 3),
            statuses=statuses,
        )

        # query latency through HTTP
        http = httpx.Client(base_url=gateway.url, timeout=30)
        token = http.post("/_local/token", json={"tenant": "bench", "groups": []}).json()["token"]
        headers = {"authorization": f"Bearer {token}"}
        for q in questions[:10]:  # warm-up
            http.post("/query", json={"question": q, "top_k": 10}, headers=headers)
        latencies, server = [], []
        for q in questions:
            t0 = time.perf_counter()
            resp = http.post(
                "/query", json={"question": q, "top_k": 10, "mode": "hybrid"}, headers=headers
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text
            server.append(resp.json()["timings_ms"])
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        stages = {k: round(statistics.median(t[k] for t in server), 2) for k in server[0]}
        print(
            f"  POST /query hybrid top_k=10 over {len(latencies)} queries: p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms (target p95 ≤ 150 ms); median stages {stages}"
        )
        results.update(
            query_p50_ms=round(p50, 1), query_p95_ms=round(p95, 1), query_stage_median_ms=stages
        )
    finally:
        gateway.stop()
        cloud.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
