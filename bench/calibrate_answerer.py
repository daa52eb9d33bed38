"""Fit the extractive answerer's answerability model and threshold; report what it does.

Two steps, so the fit runs in seconds once the hits are on disk:

1. ``dump``: build the project's index over a BEIR dataset (``build_index``, the query path's
   ``retriever_for``: hybrid BM25 + k-NN, fused) and keep, per query of each split, the top-k
   hits (a) over the whole corpus and (b) with the query's relevant documents out of reach (an
   allow-list filter, as ``docket eval answers`` does). ``--rgb`` dumps RGB's counterfactual
   questions over their own passages instead.

       .venv/bin/python bench/calibrate_answerer.py dump --dataset ../shared/data/scifact \
           --splits train test --embedding-cache bench/results/cache \
           --out bench/results/answer-hits-scifact.pkl

2. ``fit``: the answerer's own features (``ExtractiveAnswerer.assess(...).features``) for every
   (a) hit list (label 1) and (b) hit list (label 0) of the fit split; an L2-regularised logistic
   regression (numpy IRLS on standardised features, mapped back to raw units) for each model of
   ``docket.answer.answerability`` (all features; lexical-only; dense-only; text-only). Prints
   the coefficients as code, the AUCs, and answered / abstained / citing-relevant rates on the
   fit and evaluation splits over a grid of thresholds, with the current constants too.

       .venv/bin/python bench/calibrate_answerer.py fit \
           --hits bench/results/answer-hits-scifact.pkl --fit scifact:train --eval scifact:test \
           --extra bench/results/answer-hits-msmarco.pkl --rgb bench/results/answer-hits-rgb.pkl

Only the fit split is used to choose anything; the others are reported.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from common import auc  # noqa: E402  (bench/ is on sys.path as a script)
from docket.answer import ExtractiveAnswerer  # noqa: E402
from docket.answer import answerability as model_module  # noqa: E402
from docket.answer.lexical import content_terms  # noqa: E402
from docket.models import ChunkRecord, SearchHit, chunk_id_for, document_id_for  # noqa: E402

FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "HYBRID_MODEL": (
        "coverage",
        "document_coverage",
        "entity_coverage",
        "bm25_prominence",
        "agreement",
        "dense_top",
        "dense_slope",
    ),
    "LEXICAL_MODEL": ("coverage", "document_coverage", "entity_coverage", "bm25_prominence"),
    "DENSE_MODEL": ("coverage", "document_coverage", "entity_coverage", "dense_top", "dense_slope"),
    "TEXT_MODEL": ("coverage", "document_coverage", "entity_coverage"),
}


# --- an in-memory BM25 over SciFact (bench/answerer_latency.py times the answerer on its hits) ---

TENANT = "calibration"


@dataclass(frozen=True)
class CorpusDoc:
    id: str
    title: str
    text: str

    def chunk(self) -> ChunkRecord:
        document_id = document_id_for(TENANT, self.id)
        return ChunkRecord(
            tenant=TENANT,
            document_id=document_id,
            chunk_id=chunk_id_for(document_id, self.text),
            ordinal=0,
            text=self.text,
            page_start=1,
            page_end=1,
            source=self.id,
            title=self.title or None,
        )


class Bm25:
    """A small in-memory BM25 (Lucene's idf) over CorpusDoc title + text."""

    def __init__(self, docs: Sequence[CorpusDoc], k1: float = 0.9, b: float = 0.4) -> None:
        self.docs = list(docs)
        self.chunks = [doc.chunk() for doc in self.docs]
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths = np.zeros(len(self.docs), dtype=np.float64)
        for index, doc in enumerate(self.docs):
            terms = Counter(content_terms(f"{doc.title} {doc.text}"))
            lengths[index] = terms.total()
            for term, tf in terms.items():
                postings[term].append((index, tf))
        norm: np.ndarray = k1 * (1 - b + b * lengths / max(float(lengths.mean()), 1.0))
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        n = len(self.docs)
        for term, rows in postings.items():
            ids = np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows))
            freqs = np.fromiter((t for _, t in rows), dtype=np.float64, count=len(rows))
            idf = math.log(1 + (n - len(rows) + 0.5) / (len(rows) + 0.5))
            self.postings[term] = (ids, idf * freqs * (k1 + 1) / (freqs + norm[ids]))

    def scores(self, query: str) -> np.ndarray:
        total = np.zeros(len(self.docs))
        for term in set(content_terms(query)):
            if term in self.postings:
                ids, contribution = self.postings[term]
                total[ids] += contribution
        return total

    def __call__(self, query: str, k: int, exclude: frozenset[str]) -> list[SearchHit]:
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")
        hits: list[SearchHit] = []
        for index in order:
            if scores[index] <= 0 or len(hits) == k:
                break
            if self.docs[index].id in exclude:
                continue
            rank = len(hits) + 1
            score = float(scores[index])
            hits.append(
                SearchHit(
                    chunk=self.chunks[index],
                    score=score,
                    retriever="bm25",
                    rank=rank,
                    ranks={"bm25": rank},
                    scores={"bm25": score},
                )
            )
        return hits


def load_scifact(root: Path) -> tuple[list[CorpusDoc], dict[str, str]]:
    with (root / "corpus.jsonl").open() as f:
        corpus = [
            CorpusDoc(str(r["_id"]), r.get("title", ""), r["text"]) for r in map(json.loads, f)
        ]
    with (root / "queries.jsonl").open() as f:
        queries = {str(r["_id"]): r["text"] for r in map(json.loads, f)}
    return corpus, queries


# --- dump ------------------------------------------------------------------------------------------


def dump_beir(
    folder: Path, splits: Sequence[str], k: int, cache: Path | None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from docket.config import Settings
    from docket.embedding.factory import get_embedder
    from docket.evaluation.beir import load_beir
    from docket.evaluation.indexing import EVAL_TENANT, build_index
    from docket.models import SearchFilter, document_id_for
    from docket.search.retrieval import retriever_for

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    embedder = get_embedder(settings)
    datasets = {split: load_beir(folder, split) for split in splits}
    first = next(iter(datasets.values()))
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        indexed = build_index(
            list(first.corpus.values()),
            settings=settings,
            embedder=embedder,
            directory=Path(scratch) / "index",
            cache_dir=cache,
        )
        try:
            retriever = retriever_for(settings, indexed.index, embedder)
            documents = frozenset(chunk.document_id for chunk in indexed.chunks)
            whole = SearchFilter(tenant=EVAL_TENANT, groups=frozenset())
            for split, dataset in datasets.items():
                rows = []
                for query_id, question in dataset.queries.items():
                    relevant = dataset.relevant(query_id)
                    if not relevant:
                        continue
                    excluded = {document_id_for(EVAL_TENANT, r) for r in relevant}
                    without = whole.model_copy(update={"document_ids": documents - excluded})
                    rows.append(
                        {
                            "qid": query_id,
                            "question": question,
                            "relevant": relevant,
                            "a": retriever.retrieve(question, whole, top_k=k).hits,
                            "b": retriever.retrieve(question, without, top_k=k).hits,
                        }
                    )
                out[(folder.name, split)] = rows
                print(folder.name, split, len(rows), "queries", flush=True)
        finally:
            indexed.index.close()
    return out


def dump_rgb(path: Path, k: int, cache: Path | None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    from docket.config import Settings
    from docket.embedding.factory import get_embedder
    from docket.evaluation.answers import index_counterfactual, load_counterfactual
    from docket.models import SearchFilter
    from docket.search.retrieval import retriever_for

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    embedder = get_embedder(settings)
    records = load_counterfactual(path)
    with tempfile.TemporaryDirectory() as scratch:
        index, _ = index_counterfactual(
            records,
            settings=settings,
            embedder=embedder,
            directory=Path(scratch) / "rgb",
            cache_dir=cache,
        )
        try:
            retriever = retriever_for(settings, index, embedder)
            rows = [
                {
                    "record": record,
                    "hits": retriever.retrieve(
                        record.query, SearchFilter(tenant=record.tenant, groups=frozenset()), k
                    ).hits,
                }
                for record in records
            ]
        finally:
            index.close()
    return {("rgb", "en_fact"): rows}


# --- fit -------------------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[float, np.ndarray]:
    """(intercept, weights) in raw feature units; L2 on the standardised weights, not the
    intercept; Newton steps (IRLS)."""
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.hstack([np.ones((len(x), 1)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    penalty = l2 * np.eye(len(w))
    penalty[0, 0] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + penalty @ w
        hessian = z.T @ (z * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    weights = w[1:] / std
    return float(w[0] - (weights * mean).sum()), weights


@dataclass
class Case:
    """One hit list, assessed: its features, confidence and whether its answer cites a relevant
    document."""

    label: int
    features: dict[str, float | None]
    missing_names: list[str]
    confidence: float
    cites_relevant: bool


def assess_rows(rows: list[dict[str, Any]]) -> list[Case]:
    answerer = ExtractiveAnswerer(min_score=0.0)
    cases = []
    for row in rows:
        for label, key in ((1, "a"), (0, "b")):
            hits: list[SearchHit] = row[key]
            assessment = answerer.assess(row["question"], hits)
            answer = answerer.answer(row["question"], hits)
            cases.append(
                Case(
                    label,
                    assessment.features,
                    assessment.missing_names,
                    assessment.confidence,
                    any(c.source in row["relevant"] for c in answer.citations),
                )
            )
    return cases


def matrix(cases: list[Case], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[float(c.features.get(n) or 0.0) for n in names] for c in cases])
    return x, np.array([c.label for c in cases], dtype=float)


def rates(cases: list[Case], scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels = np.array([c.label for c in cases])
    cites = np.array([c.cites_relevant for c in cases])
    answered = scores >= threshold
    positive = labels == 1
    return {
        "answered": round(float(answered[positive].mean()), 3),
        "cites_relevant": round(float(cites[positive & answered].mean()), 3)
        if (positive & answered).any()
        else 0.0,
        "abstained": round(float((~answered[~positive]).mean()), 3),
    }


def current_scores(cases: list[Case]) -> np.ndarray:
    """Confidences as the answerer computes them now (its constants, the missing-name rule)."""
    return np.array(
        [model_module.answerability(c.features, c.missing_names) for c in cases], dtype=float
    )


def cmd_fit(args: argparse.Namespace) -> int:
    data: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in [args.hits, *args.extra]:
        with Path(path).open("rb") as fh:
            data.update(pickle.load(fh))
    fit_key = tuple(args.fit.split(":"))
    fit_cases = assess_rows(data[fit_key])  # type: ignore[index]
    others = {
        f"{name}:{split}": assess_rows(rows)
        for (name, split), rows in data.items()
        if (name, split) != fit_key
    }
    for model, names in FEATURE_SETS.items():
        x, y = matrix(fit_cases, names)
        low, high = np.percentile(x, 1, axis=0), np.percentile(x, 99, axis=0)
        x = np.clip(x, low, high)
        intercept, weights = fit_logistic(x, y, args.l2)
        probability = 1 / (1 + np.exp(-(x @ weights + intercept)))
        print(
            f"{model} = LogisticModel(  # fit AUC {auc(probability[y == 1], probability[y == 0]):.3f}"
        )
        print(f"    intercept={intercept:.3f},")
        print("    weights={")
        for name, weight in zip(names, weights, strict=True):
            print(f'        "{name}": {weight:.3f},')
        print("    },\n    limits={")
        for name, lo, hi in zip(names, low, high, strict=True):
            print(f'        "{name}": ({lo:.3f}, {hi:.3f}),')
        print("    },\n)")
    print("\nwith the constants in docket/answer/answerability.py now:")
    grid = [round(t, 2) for t in np.arange(0.30, 0.71, 0.05)]
    for name, cases in {args.fit: fit_cases, **others}.items():
        scores = current_scores(cases)
        labels = np.array([c.label for c in cases])
        print(f"{name}: AUC {auc(scores[labels == 1], scores[labels == 0]):.3f}")
        for threshold in grid:
            print(f"   {threshold:.2f} {rates(cases, scores, threshold)}")
    if args.rgb:
        with Path(args.rgb).open("rb") as fh:
            rgb = pickle.load(fh)[("rgb", "en_fact")]
        answerer = ExtractiveAnswerer(min_score=0.0)
        confidences = np.array(
            [answerer.assess(r["record"].query, r["hits"]).confidence for r in rgb]
        )
        print(
            "RGB counterfactual: share abstaining at",
            {t: round(float((confidences < t).mean()), 3) for t in grid},
        )
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    if args.rgb:
        out = dump_rgb(args.rgb, args.k, args.embedding_cache)
    else:
        out = dump_beir(args.dataset, args.splits, args.k, args.embedding_cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("wb") as fh:
        pickle.dump(out, fh)
    print("wrote", args.out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(required=True)
    dump = sub.add_parser("dump", help="hit lists of the query path, answerable and not")
    dump.add_argument("--dataset", type=Path, help="a BEIR folder")
    dump.add_argument("--splits", nargs="+", default=["train", "test"])
    dump.add_argument("--rgb", type=Path, help="RGB en_fact.json (instead of --dataset)")
    dump.add_argument("--k", type=int, default=10, help="hits per query (the ask path's top_k)")
    dump.add_argument("--embedding-cache", type=Path)
    dump.add_argument("--out", type=Path, required=True)
    dump.set_defaults(func=cmd_dump)
    fit = sub.add_parser("fit", help="fit the answerability models; report rates")
    fit.add_argument("--hits", type=Path, required=True)
    fit.add_argument("--fit", default="scifact:train", help="dataset:split to fit on")
    fit.add_argument("--extra", nargs="*", default=[], type=Path, help="more dumps to report on")
    fit.add_argument("--rgb", type=Path, help="an RGB dump: abstention on answerable questions")
    fit.add_argument("--l2", type=float, default=1.0)
    fit.set_defaults(func=cmd_fit)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
