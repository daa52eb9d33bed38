"""Compare fusion functions offline on candidate lists dumped by bench/fusion_lists.py.

    .venv/bin/python bench/fusion_lists.py --dataset ../shared/data/scifact --splits train test \
        --extra bench/results/derived/scifact-typos bench/results/derived/scifact-typos-heavy \
                bench/results/derived/scifact-known-item \
        --embedding-cache bench/results/cache --out bench/results/scifact-lists.pkl
    .venv/bin/python bench/tune_fusion.py bench/results/scifact-lists.pkl            # train + derived
    .venv/bin/python bench/tune_fusion.py bench/results/scifact-lists.pkl --test     # chosen, once

The production fusion (docket.search.fusion.Fusion) runs on real SearchHit lists; the variants
that were tried and rejected (min-max convex combination, imputed floors, z-score-adaptive
weights) are written out here. nDCG@10 per set; on the SciFact split, all four metrics.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from docket.evaluation.metrics import evaluate  # noqa: E402
from docket.models import ChunkRecord, SearchHit  # noqa: E402
from docket.search.fusion import Fusion  # noqa: E402

Item = tuple[str, str, float]  # chunk id, corpus id, score
Lists = dict[str, Any]  # "bm25", "dense": list[Item]; "terms": TermMatches
Fuser = Callable[[Lists], list[str]]  # -> corpus ids, best first
DERIVED = (
    "scifact-typos",
    "scifact-typos-heavy",
    "scifact-known-item",
    "scifact-known-item-sampled",
)


def docs_of(pairs: list[tuple[str, str]]) -> list[str]:
    seen: dict[str, None] = {}
    for _, doc in pairs:
        seen.setdefault(doc, None)
    return list(seen)


def single(name: str) -> Fuser:
    return lambda lists: docs_of([(c, d) for c, d, _ in lists[name]])


def production(fusion: Fusion, depth: int = 100) -> Fuser:
    def hits(items: list[Item], retriever: str) -> list[SearchHit]:
        return [
            SearchHit.model_construct(
                chunk=ChunkRecord.model_construct(
                    tenant="eval",
                    document_id=doc,
                    chunk_id=cid,
                    source=doc,
                    text="",
                    ordinal=0,
                    page_start=1,
                    page_end=1,
                ),
                score=score,
                retriever=retriever,
                rank=rank,
            )
            for rank, (cid, doc, score) in enumerate(items[:depth], start=1)
        ]

    def fuse(lists: Lists) -> list[str]:
        fused = fusion.fuse(
            {"bm25": hits(lists["bm25"], "bm25"), "knn": hits(lists["dense"], "knn")},
            depth=depth,
            terms=lists.get("terms"),
        )
        return docs_of([(h.chunk.chunk_id, h.chunk.source) for h in fused])

    return fuse


def _stats(items: list[Item], depth: int, pad: bool) -> tuple[float, float]:
    values = [s for _, _, s in items[:depth]]
    if pad:
        values += [0.0] * (depth - len(values))
    return statistics.fmean(values), (statistics.pstdev(values) or 1.0)


def minmax_convex(alpha: float, depth: int = 100) -> Fuser:
    def fuse(lists: Lists) -> list[str]:
        total: dict[tuple[str, str], float] = {}
        for name, w in (("bm25", alpha), ("dense", 1 - alpha)):
            items = lists[name][:depth]
            if not items:
                continue
            hi, lo = items[0][2], items[-1][2]
            for c, d, s in items:
                total[(c, d)] = total.get((c, d), 0.0) + w * (s - lo) / ((hi - lo) or 1.0)
        return docs_of(sorted(total, key=lambda k: -total[k]))

    return fuse


def dbsf_variant(
    alpha: float, *, impute: bool = False, adaptive_p: float = 0.0, depth: int = 100
) -> Fuser:
    """DBSF with a missing chunk imputed at its list's floor, or with weights ~ z(top)^p."""

    def fuse(lists: Lists) -> list[str]:
        wb = alpha
        if adaptive_p:
            z = {}
            for name in ("bm25", "dense"):
                items = lists[name]
                mu, sd = _stats(items, depth, name == "bm25")
                z[name] = max((items[0][2] - mu) / sd, 1e-6) if items else 1e-6
            a, b = alpha * z["bm25"] ** adaptive_p, (1 - alpha) * z["dense"] ** adaptive_p
            wb = a / (a + b)
        parts: dict[tuple[str, str], dict[str, float]] = {}
        floor: dict[str, float] = {}
        for name, w in (("bm25", wb), ("dense", 1 - wb)):
            items = lists[name][:depth]
            if not items:
                continue
            mu, sd = _stats(items, depth, name == "bm25")
            low = mu - 3 * sd
            floor[name] = w * ((0.0 if name == "bm25" else items[-1][2]) - low) / (6 * sd)
            for c, d, s in items:
                parts.setdefault((c, d), {})[name] = w * (s - low) / (6 * sd)
        total = {
            k: sum(v.get(n, floor.get(n, 0.0) if impute else 0.0) for n in ("bm25", "dense"))
            for k, v in parts.items()
        }
        return docs_of(sorted(total, key=lambda k: -total[k]))

    return fuse


def candidates() -> dict[str, Fuser]:
    out: dict[str, Fuser] = {"bm25 alone": single("bm25"), "dense alone": single("dense")}
    for k in (10, 60):
        for depth in (100, 200):
            out[f"RRF k={k}, depth {depth}"] = production(
                Fusion(method="rrf", rrf_k=k, coordination_max_documents=0), depth
            )
    for wb in (0.4, 0.6):
        out[f"weighted RRF k=60, w_bm25={wb}"] = production(
            Fusion(method="rrf", rrf_k=60, bm25_weight=wb, coordination_max_documents=0)
        )
    for alpha in (0.4, 0.5, 0.6):
        out[f"min-max convex, alpha={alpha}"] = minmax_convex(alpha)
    for alpha in (0.4, 0.5, 0.55, 0.6):
        out[f"DBSF alpha={alpha}, depth 100"] = production(
            Fusion(bm25_weight=alpha, coordination_max_documents=0)
        )
    for depth in (50, 200, 300):
        out[f"DBSF alpha=0.5, depth {depth}"] = production(
            Fusion(bm25_weight=0.5, coordination_max_documents=0), depth
        )
    for n in (3, 10):
        out[f"DBSF alpha=0.5 + coordination (<= {n} docs)"] = production(
            Fusion(bm25_weight=0.5, coordination_max_documents=n)
        )
    out["DBSF alpha=0.5, imputed floors"] = dbsf_variant(0.5, impute=True)
    for p in (1.0, 2.0):
        out[f"DBSF, z-adaptive weights p={p:g}"] = dbsf_variant(0.5, adaptive_p=p)
    return out


CHOSEN = (
    "bm25 alone",
    "dense alone",
    "RRF k=60, depth 100",
    "DBSF alpha=0.5, depth 100",
    "DBSF alpha=0.5 + coordination (<= 10 docs)",
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("lists", type=Path)
    ap.add_argument("--test", action="store_true", help="the chosen settings on the test split")
    ap.add_argument("--only", default="", help="run only the fusions whose name contains this")
    args = ap.parse_args()
    data = pickle.loads(args.lists.read_bytes())
    main_split = "test" if args.test else "train"
    sets = [main_split] + [s for s in DERIVED if s in data["qrels"] and not args.test]

    def run(fuse: Fuser, split: str) -> dict[str, float]:
        qrels = data["qrels"][split]
        return evaluate(
            {
                q: fuse(
                    {
                        "bm25": data["bm25"][(split, q)],
                        "dense": data["dense"][(split, q)],
                        "terms": data["terms"][(split, q)],
                    }
                )
                for q in qrels
            },
            qrels,
        )

    print(
        f"| fusion | {main_split} nDCG@10 | R@10 | R@100 | MRR@10 | " + " | ".join(sets[1:]) + " |"
    )
    print("|---" * (5 + len(sets) - 1) + "|")
    for name, fuse in candidates().items():
        if (args.test and name not in CHOSEN) or args.only not in name:
            continue
        m = run(fuse, main_split)
        others = [run(fuse, s)["ndcg@10"] for s in sets[1:]]
        cells = [f"{m[k]:.4f}" for k in ("ndcg@10", "recall@10", "recall@100", "mrr@10")]
        print(f"| {name} | " + " | ".join(cells + [f"{v:.4f}" for v in others]) + " |", flush=True)


if __name__ == "__main__":
    main()
