"""Dump per-query BM25 and k-NN candidate lists (chunk -> corpus id, score) for fusion studies.

    .venv/bin/python bench/fusion_lists.py --dataset ../shared/data/scifact --splits train test \
        --embedding-cache bench/results/cache --out bench/results/scifact-lists.pkl

Fusion variants are then compared offline (bench/tune_fusion.py) without re-running searches.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from docket.config import Settings  # noqa: E402
from docket.embedding.factory import get_embedder  # noqa: E402
from docket.evaluation.beir import load_beir  # noqa: E402
from docket.evaluation.indexing import EVAL_TENANT, build_index  # noqa: E402
from docket.models import SearchFilter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--splits", nargs="+", default=["train", "test"])
    ap.add_argument("--depth", type=int, default=300)
    ap.add_argument("--no-headers", action="store_true")
    ap.add_argument("--embedding-cache", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--extra",
        nargs="*",
        default=[],
        type=Path,
        help="more BEIR folders over the same corpus (their test split), e.g. derived sets",
    )
    args = ap.parse_args()
    settings = Settings()
    embedder = get_embedder(settings)
    datasets = {s: load_beir(args.dataset, s) for s in args.splits}
    for folder in args.extra:
        datasets[folder.name] = load_beir(folder, "test")
    first = next(iter(datasets.values()))
    out: dict = {"qrels": {}, "queries": {}, "bm25": {}, "dense": {}, "terms": {}}
    with tempfile.TemporaryDirectory() as scratch:
        indexed = build_index(
            list(first.corpus.values()),
            settings=settings,
            embedder=embedder,
            directory=Path(scratch) / "index",
            headers=not args.no_headers,
            cache_dir=args.embedding_cache,
        )
        print(indexed.timings_s, len(indexed.chunks), flush=True)
        flt = SearchFilter(tenant=EVAL_TENANT, groups=frozenset())
        index = indexed.index
        for split, dataset in datasets.items():
            out["qrels"][split] = dataset.qrels
            for qid, text in dataset.queries.items():
                key = (split, qid)
                out["queries"][key] = text
                lexical = index.search_bm25(text, flt, args.depth)
                out["bm25"][key] = [(h.chunk.chunk_id, h.chunk.source, h.score) for h in lexical]
                # which query terms each BM25 hit holds, for coordination matching
                out["terms"][key] = index.query_term_matches(text, lexical[:100])
                vector = embedder.embed_query(text)
                out["dense"][key] = [
                    (h.chunk.chunk_id, h.chunk.source, h.score)
                    for h in index.search_knn(vector, flt, args.depth)
                ]
        index.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as fh:
        pickle.dump(out, fh)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
