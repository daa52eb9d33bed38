"""Ingestion throughput through the local cloud and query latency through the API, on SciFact.

1. Ingestion: every SciFact abstract becomes a .txt object put into the local S3 bucket; the
   figure is chunks (and documents) per second from the first put until every document is
   ``indexed``, going through S3 notification → SQS → extract → stream → chunk → stream → embed.
2. Baseline in the same run: the same ONNX embedder embedding the very same chunk texts directly
   (same batch size); the ratio pipeline/raw says what the pipeline costs beyond the model.
3. Quality in the same run: hybrid nDCG@10 on the SciFact test queries through the index the
   pipeline built (full corpus only).
4. Query latency: POST /query (hybrid, top_k 10) over HTTP through the local gateway for the
   SciFact test queries, p50 and p95 as the client sees them.
5. ``--peer PYTHON``: first runs the LlamaIndex peer (../shared/peer, same model, one node per
   document) with that interpreter on the same machine, and reports its documents/s (parse +
   vector index + BM25 build) beside docket's, with the ratio. Never compare with old figures.

Usage: python bench/bench_pipeline.py [--limit N] [--queries N] [--json OUT] [--peer PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (  # bench/ is on sys.path when run as a script
    SHARED,
    free_port,
    scifact_rows,
    scifact_test_questions,
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run_peer(python: str) -> dict[str, float]:
    """The LlamaIndex peer's SciFact ingestion, run now on this machine: documents/s over
    parsing, the vector index build (the embedding) and the BM25 build."""
    peer_dir = SHARED.parent / "peer"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    subprocess.run([python, "run_llamaindex.py", "scifact"], cwd=peer_dir, env=env, check=True)
    out = json.loads((peer_dir / "results" / "llamaindex_scifact.json").read_text())
    seconds = out["t_parse"] + out["t_vector_index_build"] + out["t_bm25_build"]
    return {
        "docs_per_s": round(out["n_docs"] / seconds, 2),
        "embed_docs_per_s": round(out["embed_docs_per_s"], 2),
        "ndcg10_hybrid": round(out["modes"]["hybrid"]["ndcg@10"], 4),
    }


def hybrid_ndcg(corpus_dir: Path) -> float:
    """nDCG@10 of the query path's hybrid retrieval over what the pipeline indexed (tenant
    "bench"), on the SciFact test queries: the quality the ingestion figures come with."""
    from docket.config import get_settings
    from docket.embedding.factory import get_embedder
    from docket.evaluation.beir import load_beir
    from docket.evaluation.retrieval import run_mode
    from docket.models import SearchFilter
    from docket.search.factory import get_index
    from docket.search.retrieval import retriever_for

    settings = get_settings()
    index = get_index(settings)
    retriever = retriever_for(settings, index, get_embedder(settings))
    dataset = load_beir(corpus_dir, "test")
    result = run_mode(
        "hybrid",
        dataset,
        retriever,
        SearchFilter(tenant="bench"),
        lambda hit: Path(str(hit.chunk.source)).stem,  # scifact/<id>.txt
    )
    return float(result.metrics["ndcg@10"])


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
    parser.add_argument(
        "--peer", default=None, help="python of the peer's virtual environment (../shared/peer)"
    )
    args = parser.parse_args()

    corpus_dir = SHARED / "scifact"
    docs = scifact_rows(limit=args.limit)
    if docs is None:
        return 2
    questions = scifact_test_questions(args.queries)

    peer = None
    if args.peer:
        peer = run_peer(args.peer)
        print(f"peer (LlamaIndex, same machine, just now): {peer}")

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
        from docket.store.dynamodb import chunk_from_item

        chunk_items = []
        for page in (
            aws.client("dynamodb").get_paginator("scan").paginate(TableName="docket-chunks")
        ):
            chunk_items.extend(chunk_from_item(i) for i in page["Items"])
        n_chunks = len(chunk_items)
        pipeline_cps = n_chunks / ingest_s
        print(
            f"ingested {len(docs)} documents → {n_chunks} chunks in {ingest_s:.1f}s "
            f"(puts took {put_s:.1f}s); statuses {statuses}"
        )
        print(f"  pipeline: {pipeline_cps:.1f} chunks/s, {len(docs) / ingest_s:.1f} documents/s")

        # baseline: the same embedder (a fresh instance, same settings) on the very texts the
        # embed step embedded, in the embed function's batches, in this process
        from docket.chunking.context import embedding_input
        from docket.config import get_settings
        from docket.embedding.onnx import OnnxEmbedder

        settings = get_settings()
        embed_texts = [embedding_input(c) for c in chunk_items]
        raw = OnnxEmbedder.from_settings(settings)
        raw.embed_documents(["warm up"])
        t0 = time.perf_counter()
        batch = 64  # the embed function's event source batch size
        for i in range(0, n_chunks, batch):
            raw.embed_documents(embed_texts[i : i + batch])
        raw_s = time.perf_counter() - t0
        raw_cps = n_chunks / raw_s
        print(f"  raw ONNX embedder on the same chunks: {raw_cps:.1f} chunks/s")
        print(f"  ratio pipeline/raw: {pipeline_cps / raw_cps:.2f} (target ≥ 0.8)")
        ndcg = hybrid_ndcg(corpus_dir) if not args.limit else None
        if ndcg is not None:
            print(f"  hybrid nDCG@10 on SciFact test, through the ingested index: {ndcg:.4f}")
        results.update(
            docs_per_s=round(len(docs) / ingest_s, 2),
            chunks_per_s=round(pipeline_cps, 2),
            embedder_chunks_per_s=round(raw_cps, 2),
            ratio_to_embedder=round(pipeline_cps / raw_cps, 3),
            ndcg10_hybrid=None if ndcg is None else round(ndcg, 4),
            model=raw.model.tag,
            chunks=n_chunks,
            ingest_seconds=round(ingest_s, 2),
            put_seconds=round(put_s, 2),
            statuses=statuses,
            settings={
                "embedding_precision": settings.embedding_precision,
                "embedding_batch_size": settings.embedding_batch_size,
                "embedding_batch_tokens": raw.batch_tokens,
                "embedding_threads": settings.embedding_threads,
                "chunk_size_tokens": settings.chunk_size_tokens,
                "chunk_whole_document_tokens": settings.chunk_whole_document_tokens,
            },
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
    if peer is not None and "docs_per_s" in results:
        results["peer"] = peer
        results["docs_per_s_vs_peer"] = round(float(results["docs_per_s"]) / peer["docs_per_s"], 3)  # type: ignore[arg-type]
        print(
            f"  docket {results['docs_per_s']} documents/s vs peer {peer['docs_per_s']}: "
            f"{results['docs_per_s_vs_peer']}x (target ≥ 1.2)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
