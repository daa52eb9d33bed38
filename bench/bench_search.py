"""Embedded index benchmarks: latency at 10k/100k chunks, and BM25 quality on SciFact.

Latency (default): builds an EmbeddedIndex of N chunks from SciFact abstracts split into
sentence-window passages (several window widths, to reach 100k), spread over tenants and ACL
groups, then times BM25, k-NN and hybrid (BM25 + k-NN + RRF; query embedding excluded) for
200 SciFact queries under a tenant + groups filter. Vectors are random unit vectors: embedding
100k passages takes too long here, and exact k-NN costs the same for any vector values.

    .venv/bin/python bench/bench_search.py [--sizes 10000 100000] [--queries 200]

BM25 quality (--scifact-bm25): one chunk per abstract (title + text), one tenant, the 300 test
queries, nDCG@10 for each analyzer / field option (BEIR's BM25 reference is 0.665).

    .venv/bin/python bench/bench_search.py --scifact-bm25

Data come from DOCKET_SHARED_DATA (default ../shared/data beside the repository).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from docket.models import (  # noqa: E402
    ChunkRecord,
    EmbeddingModelInfo,
    SearchFilter,
    chunk_id_for,
    document_id_for,
)
from docket.search.analysis import Bm25Settings  # noqa: E402
from docket.search.embedded import EmbeddedIndex  # noqa: E402
from docket.search.fusion import rrf_fuse  # noqa: E402

DIMENSION = 384  # all-MiniLM-L6-v2
TENANTS = ["t0", "t1", "t2", "t3"]
GROUPS = ["g0", "g1", "g2", "g3", "g4"]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def data_dir() -> Path:
    return Path(os.environ.get("DOCKET_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# --- latency -------------------------------------------------------------------------------------


def passages(corpus: list[dict[str, Any]], count: int) -> Iterator[ChunkRecord]:
    """Sentence windows of widths 3, 2, 4, 5, 1 over every abstract, until ``count``."""
    sentences = {
        doc["_id"]: [s for s in _SENTENCE_END.split(doc["text"]) if s.strip()] for doc in corpus
    }
    made = 0
    for width in (3, 2, 4, 5, 1):
        for doc in corpus:
            corpus_id = doc["_id"]
            h = _stable(corpus_id)
            tenant = TENANTS[h % len(TENANTS)]
            groups = [GROUPS[(h >> 8) % len(GROUPS)]] if (h >> 16) % 10 < 3 else []
            source = f"scifact/{corpus_id}/w{width}"
            document_id = document_id_for(tenant, source)
            parts = sentences[corpus_id]
            for ordinal, start in enumerate(range(max(1, len(parts) - width + 1))):
                text = " ".join(parts[start : start + width])
                yield ChunkRecord(
                    tenant=tenant,
                    document_id=document_id,
                    chunk_id=chunk_id_for(document_id, f"{ordinal}\x00{text}"),
                    ordinal=ordinal,
                    text=text,
                    page_start=1,
                    page_end=1,
                    token_count=len(text.split()),
                    source=source,
                    title=doc.get("title") or None,
                    acl_groups=groups,
                )
                made += 1
                if made == count:
                    return
    raise SystemExit(f"SciFact gives only {made} passages, fewer than {count}")


def random_unit(rng: np.random.Generator, rows: int) -> np.ndarray:
    matrix = rng.standard_normal((rows, DIMENSION), dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000.0


def bench_latency(size: int, queries: list[str], batch: int, candidate_k: int) -> None:
    corpus = load_jsonl(data_dir() / "scifact" / "corpus.jsonl")
    model = EmbeddingModelInfo(name="random-unit-vectors", version="bench", dimension=DIMENSION)
    rng = np.random.default_rng(42)
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        index = EmbeddedIndex(Path(tmp) / "index", model)
        chunks = list(passages(corpus, size))
        upsert_ms: list[float] = []
        commit_ms: list[float] = []
        for start in range(0, len(chunks), batch):
            part = chunks[start : start + batch]
            vectors = random_unit(rng, len(part))
            upsert_ms.append(timed(lambda p=part, v=vectors: index.upsert(p, v))[1])
            commit_ms.append(timed(index.commit)[1])
        index.close()
        index, reopen_ms = timed(lambda: EmbeddedIndex(Path(tmp) / "index", model))
        disk = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())

        query_vectors = random_unit(rng, len(queries))
        filters = [
            SearchFilter(tenant=TENANTS[i % len(TENANTS)], groups=frozenset({GROUPS[i % 5]}))
            for i in range(len(queries))
        ]
        visible = [len(index.matching_rows(f)) for f in filters]
        stage: dict[str, list[float]] = {
            "mask": [],
            "bm25": [],
            "knn": [],
            "fuse": [],
            "hybrid": [],
        }
        for rounds, record in ((1, False), (1, True)):  # a warm-up pass, then the measured pass
            for _ in range(rounds):
                for text, vector, flt in zip(queries, query_vectors, filters, strict=True):
                    _, mask = timed(lambda f=flt: index.matching_rows(f))
                    lexical, bm25 = timed(
                        lambda t=text, f=flt: index.search_bm25(t, f, candidate_k)
                    )
                    dense, knn = timed(lambda v=vector, f=flt: index.search_knn(v, f, candidate_k))
                    _, fuse = timed(
                        lambda a=lexical, b=dense: rrf_fuse({"bm25": a, "knn": b}, limit=10)
                    )
                    if record:
                        stage["mask"].append(mask)
                        stage["bm25"].append(bm25)
                        stage["knn"].append(knn)
                        stage["fuse"].append(fuse)
                        stage["hybrid"].append(bm25 + knn + fuse)
        index.close()

    per_1k = sum(upsert_ms) / len(chunks) * 1000
    print(f"\n== {size:,} chunks ({len(TENANTS)} tenants, 30% of documents in one of 5 groups)")
    print(
        f"indexing: {per_1k:.0f} ms per 1k chunks (upsert, batches of {batch}); "
        f"commit p50 {statistics.median(commit_ms):.1f} ms, p95 {percentile(commit_ms, 95):.1f} ms,"
        f" max {max(commit_ms):.1f} ms over {len(commit_ms)} commits"
    )
    print(f"reopen: {reopen_ms:.0f} ms; on disk: {disk / 2**20:.0f} MiB")
    print(
        f"queries: {len(queries)}, filter = tenant + 1 group, visible rows per query "
        f"{min(visible):,}..{max(visible):,}; candidates k={candidate_k}, fused top 10"
    )
    print(f"{'stage':<8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, values in stage.items():
        label = "hybrid*" if name == "hybrid" else name
        print(
            f"{label:<8}{statistics.median(values):>10.2f}{percentile(values, 95):>10.2f}"
            f"{max(values):>10.2f}"
        )
    print("(* hybrid = bm25 + knn + fuse, query embedding excluded; mask = filter only, in knn)")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


# --- BM25 quality on SciFact ---------------------------------------------------------------------


def ndcg_at(ranked: list[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(gain / math.log2(i + 2) for i, gain in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        next(handle)  # header: query-id corpus-id score
        for line in handle:
            if line.strip():
                query_id, corpus_id, score = line.split("\t")
                qrels.setdefault(query_id, {})[corpus_id] = int(score)
    return qrels


BM25_VARIANTS: dict[str, Bm25Settings] = {
    "default (dismax tie 0.5, stem, stop, possessive)": Bm25Settings(),
    "sum of title and body": Bm25Settings(fields="sum"),
    "single field (title + text)": Bm25Settings(fields="single"),
    "dismax, title boost 2": Bm25Settings(title_boost=2.0),
    "dismax, title boost 0.5": Bm25Settings(title_boost=0.5),
    "dismax, tie 0 (best field only)": Bm25Settings(tie_breaker=0.0),
    "dismax, tie 1 (= sum)": Bm25Settings(tie_breaker=1.0),
    "no stemmer": Bm25Settings(stemmer="none"),
    "no stop words": Bm25Settings(stopwords="none"),
    "no possessive step": Bm25Settings(possessive=False),
    "ASCII folding": Bm25Settings(ascii_fold=True),
    "no stemmer, no stop words": Bm25Settings(stemmer="none", stopwords="none"),
}


def bench_scifact_bm25() -> None:
    root = data_dir() / "scifact"
    corpus = load_jsonl(root / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in load_jsonl(root / "queries.jsonl")}
    qrels = load_qrels(root / "qrels" / "test.tsv")
    model = EmbeddingModelInfo(name="none", version="bm25-only", dimension=4)
    tenant = "scifact"
    flt = SearchFilter(tenant=tenant)
    chunks = []
    corpus_of: dict[str, str] = {}
    for doc in corpus:
        document_id = document_id_for(tenant, doc["_id"])
        corpus_of[document_id] = doc["_id"]
        chunks.append(
            ChunkRecord(
                tenant=tenant,
                document_id=document_id,
                chunk_id=chunk_id_for(document_id, doc["text"]),
                ordinal=0,
                text=doc["text"],
                page_start=1,
                page_end=1,
                source=doc["_id"],
                title=doc.get("title") or None,
            )
        )
    vectors = np.zeros((len(chunks), model.dimension), dtype=np.float32)
    print(f"\n== SciFact BM25: {len(chunks)} abstracts, {len(qrels)} test queries, nDCG@10")
    for name, settings in BM25_VARIANTS.items():
        with tempfile.TemporaryDirectory(prefix="bench_scifact_") as tmp:
            index = EmbeddedIndex(Path(tmp) / "index", model, bm25=settings)
            index.upsert(chunks, vectors)
            index.commit()
            scores = []
            latencies = []
            for query_id, relevant in qrels.items():
                hits, ms = timed(lambda q=queries[query_id], i=index: i.search_bm25(q, flt, 10))
                latencies.append(ms)
                ranked = [corpus_of[h.chunk.document_id] for h in hits]
                scores.append(ndcg_at(ranked, relevant))
            index.close()
        print(
            f"{name:<52} nDCG@10 {statistics.fmean(scores):.4f}   "
            f"(query p50 {statistics.median(latencies):.2f} ms)"
        )
    print("reference: BEIR BM25 (Elasticsearch, english analyzer, multi_match) 0.665")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000, help="chunks per upsert + commit")
    parser.add_argument("--candidate-k", type=int, default=100)
    parser.add_argument("--scifact-bm25", action="store_true", help="BM25 nDCG@10 on SciFact")
    args = parser.parse_args(argv)
    if not (data_dir() / "scifact" / "corpus.jsonl").exists():
        raise SystemExit(f"SciFact not found under {data_dir()} (set DOCKET_SHARED_DATA)")
    if args.scifact_bm25:
        bench_scifact_bm25()
        return
    texts = [q["text"] for q in load_jsonl(data_dir() / "scifact" / "queries.jsonl")]
    queries = texts[: args.queries]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"embedded index latency; {os.cpu_count()} CPUs, load average {load}")
    print("vectors: random unit vectors (dimension 384), not embeddings: embedding 100k")
    print("passages takes too long here, and exact k-NN costs the same for any values")
    for size in args.sizes:
        bench_latency(size, queries, args.batch, args.candidate_k)


if __name__ == "__main__":
    main()
