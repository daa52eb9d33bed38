"""Fusion across corpora: tune on one part of every corpus, report on the rest.

    .venv/bin/python bench/derive_datasets.py
    for c in msmarco_mini arguana; do .venv/bin/python bench/fusion_lists.py \
        --dataset ../shared/data/$c --splits test --embedding-cache bench/results/cache \
        --out bench/results/$c-lists.pkl; done
    .venv/bin/python bench/fusion_lists.py --dataset ../shared/data/scifact --splits train test \
        --extra bench/results/derived/* --embedding-cache bench/results/cache \
        --out bench/results/scifact-lists.pkl
    .venv/bin/python bench/fusion_study.py [--grid]

Tuning sets: SciFact train, the four derived SciFact sets (typos, known-item; built from the
test claims, where one retriever is much weaker), and a fixed half of the ArguAna and MS MARCO
mini questions (by a hash of the query id, the same split ``docket eval tune`` uses). Reported:
SciFact test, the other halves, and the whole of ArguAna and MS MARCO mini. Every fusion is the
production ``docket.search.fusion.Fusion`` over the dumped candidate lists (100 per retriever).
Each cell is hybrid nDCG@10 minus the better single retriever's on that set (ArguAna with
BEIR's identical-id rule); ``--grid`` adds the pivot/slope grid the default was picked from.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))
sys.path.insert(0, str(REPO / "bench"))

from docket.evaluation.metrics import evaluate  # noqa: E402
from docket.evaluation.tune import half_of  # noqa: E402
from docket.models import ChunkRecord, SearchHit  # noqa: E402
from docket.search.fusion import Fusion  # noqa: E402
from tune_fusion import docs_of  # noqa: E402

RESULTS = REPO / "bench" / "results"
Fuser = Callable[[dict[str, Any]], list[str]]
TUNING = (
    "sf-train",
    "sf-typos",
    "sf-typos-heavy",
    "sf-known-item",
    "sf-known-item-sampled",
    "arg-A",
    "msm-A",
)
REPORT = ("sf-test", "arg-B", "msm-B", "arg", "msm")


class Sets:
    def __init__(self) -> None:
        self.sets: dict[str, tuple[dict[str, dict[str, int]], dict[str, Any], bool]] = {}

    def load(self, pickle_name: str, split: str, tag: str, *, ignore: bool, halves: bool) -> None:
        path = RESULTS / pickle_name
        if not path.is_file():
            print(f"missing {path}: see the module docstring", file=sys.stderr)
            return
        data = pickle.loads(path.read_bytes())
        if split not in data["qrels"]:
            return
        qrels = data["qrels"][split]
        items = {
            q: {
                "bm25": data["bm25"][(split, q)],
                "dense": data["dense"][(split, q)],
                "terms": data["terms"][(split, q)],
                "hits": {
                    "bm25": hits(data["bm25"][(split, q)], "bm25"),
                    "knn": hits(data["dense"][(split, q)], "knn"),
                },
            }
            for q in qrels
        }
        self.sets[tag] = (qrels, items, ignore)
        if halves:
            for number, name in ((0, "A"), (1, "B")):
                part = {q: r for q, r in qrels.items() if half_of(q) == number}
                self.sets[f"{tag}-{name}"] = (part, items, ignore)

    def score(self, fuse: Fuser, tag: str) -> float:
        qrels, items, ignore = self.sets[tag]
        run = {}
        for q in qrels:
            docs = fuse(items[q])
            run[q] = [d for d in docs if not (ignore and d == q)]
        return evaluate(run, qrels)["ndcg@10"]


def hits(items: list[tuple[str, str, float]], retriever: str, depth: int = 100) -> list[SearchHit]:
    """Candidate lists as the index returns them (chunk id, corpus id as source, score)."""
    return [
        SearchHit.model_construct(
            chunk=ChunkRecord.model_construct(
                tenant="eval", document_id=doc, chunk_id=cid, source=doc, text="", ordinal=0
            ),
            score=score,
            retriever=retriever,
            rank=rank,
            ranks={},
            scores={},
        )
        for rank, (cid, doc, score) in enumerate(items[:depth], start=1)
    ]


def production(fusion: Fusion, depth: int = 100) -> Fuser:
    """The production fusion over the cached candidate hits, corpus ids best first."""

    def fuse(lists: dict[str, Any]) -> list[str]:
        fused = fusion.fuse(lists["hits"], depth=depth, terms=lists.get("terms"))
        return docs_of([(h.chunk.chunk_id, h.chunk.source) for h in fused])

    return fuse


def load_all() -> Sets:
    sets = Sets()
    sets.load("scifact-lists.pkl", "train", "sf-train", ignore=False, halves=False)
    sets.load("scifact-lists.pkl", "test", "sf-test", ignore=False, halves=False)
    for name in ("typos", "typos-heavy", "known-item", "known-item-sampled"):
        sets.load("scifact-lists.pkl", f"scifact-{name}", f"sf-{name}", ignore=False, halves=False)
    sets.load("arguana-lists.pkl", "test", "arg", ignore=True, halves=True)
    sets.load("msmarco_mini-lists.pkl", "test", "msm", ignore=False, halves=True)
    return sets


def single(name: str) -> Fuser:
    return lambda lists: docs_of([(c, d) for c, d, _ in lists[name]])


def fusers(grid: bool) -> dict[str, Fuser]:
    out: dict[str, Fuser] = {
        "RRF k=60": production(Fusion(method="rrf", coordination_max_documents=0)),
        "DBSF 0.5 fixed + coordination (previous default)": production(Fusion()),
        "DBSF 0.4 fixed + coordination": production(Fusion(bm25_weight=0.4)),
        "DBSF 0.3 fixed + coordination": production(Fusion(bm25_weight=0.3)),
        "DBSF adaptive (pivot 0.55, slope 2), no coordination": production(
            Fusion(dense_pivot=0.55, coordination_max_documents=0)
        ),
        "DBSF adaptive (pivot 0.55, slope 2) + coordination (default)": production(
            Fusion(dense_pivot=0.55)
        ),
        "RRF adaptive (pivot 0.55, slope 2) + coordination": production(
            Fusion(method="rrf", dense_pivot=0.55)
        ),
    }
    if grid:
        for slope, pivot in itertools.product((1.0, 1.5, 2.0, 3.0, 4.0), (0.5, 0.55, 0.6, 0.65)):
            out[f"grid: slope {slope:g}, pivot {pivot}"] = production(
                Fusion(dense_pivot=pivot, dense_slope=slope)
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", action="store_true", help="also the pivot/slope grid")
    args = ap.parse_args()
    sets = load_all()
    tags = [t for t in (*TUNING, *REPORT) if t in sets.sets]
    best = {t: max(sets.score(single("bm25"), t), sets.score(single("dense"), t)) for t in tags}
    print("| set | " + " | ".join(tags) + " |")
    print("|---" * (len(tags) + 1) + "|")
    for name in ("bm25", "dense"):
        row = [sets.score(single(name), t) for t in tags]
        print(f"| {name} alone (nDCG@10) | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    print()
    tuning = [t for t in TUNING if t in tags]
    print("| fusion (margin over the better single retriever) | mean tuning | worst tuning | "
          + " | ".join(tags) + " |")  # fmt: skip
    print("|---" * (len(tags) + 3) + "|")
    for name, fuse in fusers(args.grid).items():
        margins = {t: sets.score(fuse, t) - best[t] for t in tags}
        mean = statistics.fmean(margins[t] for t in tuning)
        worst = min(margins[t] for t in tuning)
        cells = [f"{margins[t]:+.4f}" for t in tags]
        print(f"| {name} | {mean:+.4f} | {worst:+.4f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
