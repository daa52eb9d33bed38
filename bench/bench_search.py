"""Embedded index benchmarks: hybrid retrieval latency at 10k/100k chunks, and BM25 quality.

Latency (default): an EmbeddedIndex of N real passages (SciFact abstracts chunked by the
project's Chunker at 256, 128, 64 and 32 tokens, deduplicated by text, taken in that order: 10k
is SciFact at the production chunk size, 100k grows it with its smaller chunks), spread over
tenants and ACL groups, holding the project embedder's vectors of the passages
(``embedding_input``: title header + text, as ingest embeds them). Then, for 200 SciFact queries
under a tenant + group filter, times: the query embedding alone, BM25 alone, exact k-NN alone,
hybrid with the query embedding excluded (the production ``retriever_for(Settings(), ...)``
``.retrieve`` given an embedder that looks up the query's vector computed beforehand: BM25 +
k-NN candidates + the configured fusion) and hybrid with it included (the same, with the
project's embedder, end to end). p50 / p95 / mean over the
queries, after a warm-up pass; a Markdown table on stdout, JSON in bench/results/.

Passage vectors are cached under bench/results/cache/ in blocks of 1024 keyed by the model and
the block's texts, so a re-run embeds nothing. Embedding 100k passages takes minutes on a
small machine: fill the cache first, at low priority, with

    nice -n 19 .venv/bin/python bench/bench_search.py --embed-only

    .venv/bin/python bench/bench_search.py [--sizes 10000 100000] [--queries 200] [--rounds 1]
    .venv/bin/python bench/bench_search.py --random-vectors   # quick: random unit vectors

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
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from common import nearest_rank  # noqa: E402  (bench/ is on sys.path as a script)
from docket.chunking import Chunker, get_token_counter  # noqa: E402
from docket.chunking.context import embedding_input  # noqa: E402
from docket.config import Settings  # noqa: E402
from docket.embedding.factory import get_embedder  # noqa: E402
from docket.embedding.port import Embedder  # noqa: E402
from docket.models import (  # noqa: E402
    ChunkRecord,
    EmbeddingModelInfo,
    ExtractedDocument,
    Page,
    SearchFilter,
    chunk_id_for,
    document_id_for,
)
from docket.search.analysis import Bm25Settings  # noqa: E402
from docket.search.embedded import EmbeddedIndex  # noqa: E402
from docket.search.retrieval import retriever_for  # noqa: E402

TENANTS = ["t0", "t1", "t2", "t3"]
GROUPS = ["g0", "g1", "g2", "g3", "g4"]
CHUNK_SIZES = (256, 128, 64, 32)  # tokens; 256 is the production default
EMBED_BLOCK = 1024  # texts per embed call and per cache file (the embedder sorts by length)
TOP_K = 10
RESULTS = REPO / "bench" / "results"
CACHE_DIR = RESULTS / "cache"


def data_dir() -> Path:
    return Path(os.environ.get("DOCKET_SHARED_DATA", REPO.parent / "shared" / "data"))


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p95": nearest_rank(values, 95),
        "mean": statistics.fmean(values),
        "max": max(values),
        "n": len(values),
    }


def log(message: str) -> None:
    print(message, flush=True)


# --- passages and their vectors ------------------------------------------------------------------


def passages(corpus: list[dict[str, Any]], count: int, settings: Settings) -> list[ChunkRecord]:
    """SciFact chunked by the project's Chunker at each of CHUNK_SIZES in turn (overlap scaled
    from the configured one), each distinct text once, until ``count``. A document's chunks of
    one size form one indexed document in one tenant; 30% of documents are in one ACL group."""
    counter = get_token_counter(settings.tokenizer_path)
    seen: set[str] = set()
    out: list[ChunkRecord] = []
    for size in CHUNK_SIZES:
        overlap = settings.chunk_overlap_tokens * size // settings.chunk_size_tokens
        chunker = Chunker(counter, chunk_size=size, overlap=overlap)
        for doc in corpus:
            corpus_id = doc["_id"]
            h = _stable(corpus_id)
            tenant = TENANTS[h % len(TENANTS)]
            groups = [GROUPS[(h >> 8) % len(GROUPS)]] if (h >> 16) % 10 < 3 else []
            title = (doc.get("title") or "").strip() or None
            source = f"scifact/{corpus_id}/c{size}"
            document_id = document_id_for(tenant, source)
            extracted = ExtractedDocument(
                format="text",
                title=title,
                pages=[Page(number=1, text=doc["text"] or doc.get("title") or "")],
            )
            for draft in chunker.chunk(extracted):
                if draft.text in seen:
                    continue
                seen.add(draft.text)
                out.append(
                    ChunkRecord(
                        tenant=tenant,
                        document_id=document_id,
                        chunk_id=chunk_id_for(document_id, draft.text),
                        ordinal=draft.ordinal,
                        text=draft.text,
                        page_start=draft.page_start,
                        page_end=draft.page_end,
                        section=draft.section,
                        token_count=draft.token_count,
                        source=source,
                        title=title,
                        acl_groups=groups,
                    )
                )
                if len(out) == count:
                    return out
    raise SystemExit(f"SciFact gives only {len(out)} distinct passages, fewer than {count}")


def embed_cached(
    embedder: Embedder, texts: Sequence[str], cache_dir: Path = CACHE_DIR
) -> tuple[np.ndarray, dict[str, Any]]:
    """Vectors for ``texts``, in blocks of EMBED_BLOCK cached as ``search-<digest>.npz`` keyed by
    the model tag and the block's texts (a changed text or model misses). Each file also keeps
    the seconds its block took, so the cost of embedding is reported even when all of it hits."""
    model = embedder.model
    vectors = np.empty((len(texts), model.dimension), dtype=np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stats = {"passages": len(texts), "embedded_now": 0, "seconds_now": 0.0, "seconds_total": 0.0}
    started = time.perf_counter()
    for start in range(0, len(texts), EMBED_BLOCK):
        block = list(texts[start : start + EMBED_BLOCK])
        digest = hashlib.sha256(model.tag.encode())
        for text in block:
            digest.update(text.encode())
            digest.update(b"\x00")
        path = cache_dir / f"search-{digest.hexdigest()[:24]}.npz"
        if path.is_file():
            with np.load(path) as cached:
                vectors[start : start + len(block)] = cached["vectors"]
                stats["seconds_total"] += float(cached["seconds"])
            continue
        block_started = time.perf_counter()
        vectors[start : start + len(block)] = embedder.embed_documents(block)
        seconds = time.perf_counter() - block_started
        partial = path.with_suffix(".tmp.npz")
        np.savez(partial, vectors=vectors[start : start + len(block)], seconds=seconds)
        partial.replace(path)
        stats["embedded_now"] += len(block)
        stats["seconds_now"] += seconds
        stats["seconds_total"] += seconds
        done = start + len(block)
        elapsed = time.perf_counter() - started
        log(
            f"  embedded {done:,}/{len(texts):,} passages ({stats['embedded_now']:,} now, "
            f"{stats['embedded_now'] / stats['seconds_now']:.0f}/s; {elapsed:.0f} s elapsed)"
        )
    stats["passages_per_s"] = len(texts) / stats["seconds_total"] if stats["seconds_total"] else 0
    return vectors, stats


def random_unit(rng: np.random.Generator, rows: int, dimension: int) -> np.ndarray:
    matrix = rng.standard_normal((rows, dimension), dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


# --- latency -------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - started) * 1000.0


class PrecomputedQueries:
    """An Embedder whose ``embed_query`` looks up a vector computed beforehand, so the production
    retriever's ``retrieve`` runs its exact hybrid path (model check, candidates, fusion and
    whatever fusion needs from the index) with the query embedding excluded."""

    def __init__(self, model: EmbeddingModelInfo, vectors: dict[str, np.ndarray]) -> None:
        self._model = model
        self.vectors = vectors

    @property
    def model(self) -> EmbeddingModelInfo:
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[text] for text in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.vectors[text]


MEASURES = {
    "embed": "query embedding alone",
    "bm25": "BM25 alone (k = candidates)",
    "knn": "exact k-NN alone (k = candidates)",
    "hybrid_excl": "hybrid, embedding excluded",
    "hybrid_incl": "hybrid, embedding included (retrieve)",
}


def bench_latency(
    chunks: list[ChunkRecord],
    vectors: np.ndarray,
    embedder: Embedder,
    settings: Settings,
    queries: list[str],
    batch: int,
    rounds: int,
) -> dict[str, Any]:
    size = len(chunks)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_search_") as tmp:
        index = EmbeddedIndex(Path(tmp) / "index", embedder.model)
        upsert_ms: list[float] = []
        commit_ms: list[float] = []
        for start in range(0, size, batch):
            part, block = chunks[start : start + batch], vectors[start : start + batch]
            upsert_ms.append(timed(lambda p=part, v=block: index.upsert(p, v))[1])
            commit_ms.append(timed(index.commit)[1])
        index.close()
        index, reopen_ms = timed(lambda: EmbeddedIndex(Path(tmp) / "index", embedder.model))
        disk = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())

        retriever = retriever_for(settings, index, embedder)
        candidates = max(retriever.candidate_k, TOP_K)
        filters = [
            SearchFilter(tenant=TENANTS[i % len(TENANTS)], groups=frozenset({GROUPS[i % 5]}))
            for i in range(len(queries))
        ]
        visible = [len(index.matching_rows(f)) for f in filters]

        # warm-up pass (not recorded); it also embeds each query once for the excluded path
        query_vectors = [embedder.embed_query(text) for text in queries]
        excluding = retriever_for(
            settings,
            index,
            PrecomputedQueries(embedder.model, dict(zip(queries, query_vectors, strict=True))),
        )
        for text, vector, flt in zip(queries, query_vectors, filters, strict=True):
            embedder.embed_query(text)
            index.search_bm25(text, flt, candidates)
            index.search_knn(vector, flt, candidates)
            excluding.retrieve(text, flt, TOP_K)
            retriever.retrieve(text, flt, TOP_K)

        times: dict[str, list[float]] = {name: [] for name in MEASURES}
        stages: dict[str, list[float]] = {"embed": [], "bm25": [], "knn": [], "fuse": []}
        stages_excl: dict[str, list[float]] = {"embed": [], "bm25": [], "knn": [], "fuse": []}
        differing = 0
        order = list(MEASURES)
        shuffler = random.Random(7)
        for _ in range(rounds):
            for text, vector, flt in zip(queries, query_vectors, filters, strict=True):
                shuffler.shuffle(order)  # no measure always runs on caches another one warmed
                out: dict[str, Any] = {}
                for name in order:
                    if name == "embed":
                        out[name], ms = timed(lambda t=text: embedder.embed_query(t))
                    elif name == "bm25":
                        out[name], ms = timed(
                            lambda t=text, f=flt: index.search_bm25(t, f, candidates)
                        )
                    elif name == "knn":
                        out[name], ms = timed(
                            lambda v=vector, f=flt: index.search_knn(v, f, candidates)
                        )
                    elif name == "hybrid_excl":
                        out[name], ms = timed(lambda t=text, f=flt: excluding.retrieve(t, f, TOP_K))
                    else:
                        out[name], ms = timed(lambda t=text, f=flt: retriever.retrieve(t, f, TOP_K))
                    times[name].append(ms)
                for stage, ms in out["hybrid_incl"].timings.items():
                    stages[stage].append(ms)
                for stage, ms in out["hybrid_excl"].timings.items():
                    stages_excl[stage].append(ms)
                excluded = [h.chunk.chunk_id for h in out["hybrid_excl"].hits]
                included = [h.chunk.chunk_id for h in out["hybrid_incl"].hits]
                differing += excluded != included
        index.close()

    result = {
        "chunks": size,
        "indexing": {
            "upsert_ms_per_1k": sum(upsert_ms) / size * 1000,
            "batch": batch,
            "commit_ms": summary(commit_ms),
            "reopen_ms": reopen_ms,
            "disk_mib": disk / 2**20,
        },
        "queries": len(queries),
        "rounds": rounds,
        "fusion": retriever.fusion.describe(),
        "candidates": candidates,
        "top_k": TOP_K,
        "visible_rows": {"min": min(visible), "max": max(visible)},
        "latency_ms": {name: summary(values) for name, values in times.items()},
        "retrieve_stages_ms": {name: summary(values) for name, values in stages.items()},
        "retrieve_stages_ms_embedding_excluded": {
            name: summary(values) for name, values in stages_excl.items()
        },
        "hybrid_excl_vs_incl_differing_top10": differing,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    lat = result["latency_ms"]
    result["ratios_p95"] = {
        "hybrid_excl_over_knn": lat["hybrid_excl"]["p95"] / lat["knn"]["p95"],
        "hybrid_excl_over_bm25": lat["hybrid_excl"]["p95"] / lat["bm25"]["p95"],
        "hybrid_excl_over_bm25_plus_knn": lat["hybrid_excl"]["p95"]
        / (lat["bm25"]["p95"] + lat["knn"]["p95"]),
    }
    print_size(result)
    return result


def print_size(result: dict[str, Any]) -> None:
    ix = result["indexing"]
    log(
        f"\n== {result['chunks']:,} chunks ({len(TENANTS)} tenants, 30% of documents in 1 of 5 groups)"
    )
    log(
        f"indexing: {ix['upsert_ms_per_1k']:.0f} ms per 1k chunks (upsert, batches of "
        f"{ix['batch']}); commit p50 {ix['commit_ms']['p50']:.1f} ms, p95 "
        f"{ix['commit_ms']['p95']:.1f} ms; reopen {ix['reopen_ms']:.0f} ms; on disk "
        f"{ix['disk_mib']:.0f} MiB"
    )
    log(
        f"queries: {result['queries']} x {result['rounds']} round(s) after a warm-up pass; filter"
        f" = tenant + 1 group, visible rows {result['visible_rows']['min']:,}.."
        f"{result['visible_rows']['max']:,}; candidates k={result['candidates']}, fusion "
        f"{result['fusion']}, top {result['top_k']}"
    )
    log("")
    log("| measure | p50 ms | p95 ms | mean ms | max ms |")
    log("|---|---:|---:|---:|---:|")
    for name, label in MEASURES.items():
        s = result["latency_ms"][name]
        log(f"| {label} | {s['p50']:.2f} | {s['p95']:.2f} | {s['mean']:.2f} | {s['max']:.2f} |")
    for key, label in (
        ("retrieve_stages_ms", "included"),
        ("retrieve_stages_ms_embedding_excluded", "excluded"),
    ):
        log(
            f"retrieve's own stage timings (embedding {label}), p50 / p95 ms: "
            + ", ".join(f"{k} {v['p50']:.2f} / {v['p95']:.2f}" for k, v in result[key].items())
        )
    r = result["ratios_p95"]
    log(
        f"p95 ratios (same run): hybrid excl. / k-NN {r['hybrid_excl_over_knn']:.2f}, "
        f"/ BM25 {r['hybrid_excl_over_bm25']:.2f}, / (BM25 + k-NN) "
        f"{r['hybrid_excl_over_bm25_plus_knn']:.2f}"
    )
    log(
        f"top 10 of excluded vs included path differ for "
        f"{result['hybrid_excl_vs_incl_differing_top10']} queries; load average before "
        f"{', '.join(f'{x:.1f}' for x in result['load_average_before'])}, after "
        f"{', '.join(f'{x:.1f}' for x in result['load_average_after'])}"
    )


def print_summary(results: list[dict[str, Any]]) -> None:
    log("\n== summary: hybrid retrieval (production retriever, fused top 10), ms")
    log("")
    log(
        "| chunks | hybrid excl. p50 | hybrid excl. p95 | hybrid incl. p50 | hybrid incl. p95 "
        "| embed p50 | embed p95 | k-NN p95 | BM25 p95 | hybrid excl. p95 / k-NN p95 |"
    )
    log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        lat = result["latency_ms"]
        log(
            f"| {result['chunks']:,} | {lat['hybrid_excl']['p50']:.2f} | "
            f"{lat['hybrid_excl']['p95']:.2f} | {lat['hybrid_incl']['p50']:.2f} | "
            f"{lat['hybrid_incl']['p95']:.2f} | {lat['embed']['p50']:.2f} | "
            f"{lat['embed']['p95']:.2f} | {lat['knn']['p95']:.2f} | {lat['bm25']['p95']:.2f} | "
            f"{result['ratios_p95']['hybrid_excl_over_knn']:.2f} |"
        )


def run_latency(args: argparse.Namespace) -> None:
    settings = Settings()
    corpus = load_jsonl(data_dir() / "scifact" / "corpus.jsonl")
    texts = [q["text"] for q in load_jsonl(data_dir() / "scifact" / "queries.jsonl")]
    queries = texts[: args.queries]
    embedder = get_embedder(settings)
    model = embedder.model
    started = time.perf_counter()
    chunks = passages(corpus, max(args.sizes), settings)
    chunk_s = time.perf_counter() - started
    tiers = {size: sum(c.source.endswith(f"/c{size}") for c in chunks) for size in CHUNK_SIZES}
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    log(f"embedded index latency; {os.cpu_count()} CPUs, load average {load}")
    log(
        f"passages: {len(chunks):,} in {chunk_s:.0f} s, by chunk size "
        + ", ".join(f"{size}: {n:,}" for size, n in tiers.items())
        + f"; mean {statistics.fmean(c.token_count for c in chunks):.0f} tokens"
    )
    embedding: dict[str, Any]
    if args.random_vectors:
        vectors = random_unit(np.random.default_rng(42), len(chunks), model.dimension)
        embedding = {"vectors": "random unit vectors"}
        log(f"vectors: random unit vectors (dimension {model.dimension}), not embeddings")
    else:
        log(f"vectors: {model.tag} embeddings of the passages (cache {CACHE_DIR})")
        inputs = [embedding_input(c) for c in chunks]
        vectors, embedding = embed_cached(embedder, inputs)
        embedding["vectors"] = model.tag
        log(
            f"embedding: {embedding['passages']:,} passages, {embedding['embedded_now']:,} "
            f"embedded now; computing them all took {embedding['seconds_total']:.0f} s "
            f"({embedding['passages_per_s']:.0f} passages/s)"
        )
    if args.embed_only:
        return
    results = [
        bench_latency(
            chunks[:size], vectors[:size], embedder, settings, queries, args.batch, args.rounds
        )
        for size in args.sizes
    ]
    print_summary(results)
    out = {
        "cpus": os.cpu_count(),
        "model": model.tag,
        "embedding": embedding,
        "passages_by_chunk_size": tiers,
        "fusion": results[0]["fusion"] if results else None,
        "candidate_k": settings.candidate_k,
        "sizes": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    log(f"\nJSON: {args.json}")


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
    parser.add_argument("--rounds", type=int, default=1, help="measured passes over the queries")
    parser.add_argument("--batch", type=int, default=1000, help="chunks per upsert + commit")
    parser.add_argument(
        "--random-vectors",
        action="store_true",
        help="random unit vectors instead of passage embeddings (quick; same k-NN cost)",
    )
    parser.add_argument(
        "--embed-only", action="store_true", help="only fill the passage vector cache"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "bench_search.json")
    parser.add_argument("--scifact-bm25", action="store_true", help="BM25 nDCG@10 on SciFact")
    args = parser.parse_args(argv)
    if not (data_dir() / "scifact" / "corpus.jsonl").exists():
        raise SystemExit(f"SciFact not found under {data_dir()} (set DOCKET_SHARED_DATA)")
    if args.scifact_bm25:
        bench_scifact_bm25()
        return
    run_latency(args)


if __name__ == "__main__":
    main()
