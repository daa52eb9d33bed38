"""Calibrate the extractive answerer's abstention threshold on SciFact; check it on RGB.

SciFact (BEIR layout) gives two sets of hits per query with relevance judgements:
  (a) answerable: top-k from the whole corpus;
  (b) unanswerable: top-k from the corpus with the query's relevant documents removed (they are
      filtered out of the ranking; corpus statistics are left as they are).
The threshold on ``ExtractiveAnswerer.assess(...).confidence`` that best separates them (the
middle of the highest balanced-accuracy plateau) is fit on the train queries; the answer rate on
(a) and the abstention rate on (b) are reported on the test queries, at that threshold and at the
answerer's default. With k-NN scores in the hits it also suggests signal weights.

Retrieval is pluggable: ``--retriever module:factory``, where ``factory(corpus)`` takes the list
of ``CorpusDoc`` and returns ``retrieve(query, k, exclude) -> list[SearchHit]`` (hits best first,
``exclude`` a set of corpus ids that must not be returned). The default is an in-memory BM25 over
title + text (k1=0.9, b=0.4 as in Pyserini), so hits carry ``scores["bm25"]`` and
``ranks["bm25"]`` only; a hybrid retriever adds ``"knn"`` cosines and ranks and the confidence
picks them up: ``--retriever calibrate_answerer:hybrid_retriever`` runs BM25 + the project's
embedder fused with RRF, as the /query path does.

Then RGB's counterfactual split (en_fact.json): per question, the answerer gets the question's
own passages (ranked by the same BM25 over them) in four mixes, and we count how often the answer
contains the true answer, the planted false one, or abstains.

    .venv/bin/python bench/calibrate_answerer.py [--data ../shared/data] [--k 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from docket.answer import Assessment, ExtractiveAnswerer
from docket.answer.extractive import ConfidenceWeights, combine
from docket.answer.lexical import content_terms
from docket.models import ChunkRecord, SearchHit, chunk_id_for, document_id_for

TENANT = "calibration"
Retrieve = Callable[[str, int, frozenset[str]], list[SearchHit]]


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


def hybrid_retriever(corpus: Sequence[CorpusDoc], candidates: int = 100) -> Retrieve:
    """BM25 + the project's embedder (DOCKET_EMBEDDING_* settings), fused with RRF as /query does.

    ``--retriever calibrate_answerer:hybrid_retriever``. Document vectors are cached under
    .docket/calibration/ (embedding SciFact takes minutes on a laptop CPU).
    """
    import hashlib

    from docket.embedding.factory import get_embedder
    from docket.search.fusion import rrf_fuse

    bm25 = Bm25(corpus)
    embedder = get_embedder()
    digest = hashlib.sha256(
        "\x00".join([embedder.model.tag, *(doc.id for doc in corpus)]).encode()
    ).hexdigest()[:16]
    cache = Path(".docket/calibration") / f"vectors-{digest}.npy"
    if cache.exists():
        vectors = np.load(cache)
    else:
        vectors = embedder.embed_documents([doc.text for doc in corpus])
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    ids = [doc.id for doc in corpus]

    def retrieve(query: str, k: int, exclude: frozenset[str]) -> list[SearchHit]:
        cosines = vectors @ embedder.embed_query(query)
        knn: list[SearchHit] = []
        for index in np.argsort(-cosines, kind="stable"):
            if ids[index] in exclude:
                continue
            knn.append(
                SearchHit(
                    chunk=bm25.chunks[index],
                    score=float(cosines[index]),
                    retriever="knn",
                    rank=len(knn) + 1,
                )
            )
            if len(knn) == candidates:
                break
        return rrf_fuse({"bm25": bm25(query, candidates, exclude), "knn": knn}, limit=k)

    return retrieve


def load_scifact(root: Path) -> tuple[list[CorpusDoc], dict[str, str]]:
    with (root / "corpus.jsonl").open() as f:
        corpus = [
            CorpusDoc(str(r["_id"]), r.get("title", ""), r["text"]) for r in map(json.loads, f)
        ]
    with (root / "queries.jsonl").open() as f:
        queries = {str(r["_id"]): r["text"] for r in map(json.loads, f)}
    return corpus, queries


def load_qrels(root: Path, split: str) -> dict[str, set[str]]:
    qrels: dict[str, set[str]] = defaultdict(set)
    with (root / "qrels" / f"{split}.tsv").open() as f:
        next(f)
        for line in f:
            query_id, doc_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels[query_id].add(doc_id)
    return dict(qrels)


def load_retriever(spec: str | None, corpus: list[CorpusDoc]) -> Retrieve:
    if not spec:
        return Bm25(corpus)
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "make_retriever")
    return factory(corpus)


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random answerable case scores above a random unanswerable one."""
    pos, neg = np.asarray(positive), np.asarray(negative)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def balanced_accuracy(positive: Sequence[float], negative: Sequence[float], cut: float) -> float:
    """Mean of the answer rate on answerable and the abstention rate on unanswerable cases."""
    return float(((np.asarray(positive) >= cut).mean() + (np.asarray(negative) < cut).mean()) / 2)


def best_threshold(
    positive: Sequence[float], negative: Sequence[float], tolerance: float = 0.01
) -> tuple[float, float]:
    """The middle of the plateau of thresholds within ``tolerance`` of the best balanced accuracy.

    The curve is flat near its top, so the arg-max alone moves with noise; the plateau's middle
    does not. Returns (threshold, balanced accuracy there).
    """
    grid = np.round(np.arange(0.0, 1.0001, 0.01), 2)
    curve = np.array([balanced_accuracy(positive, negative, cut) for cut in grid])
    plateau = grid[curve >= curve.max() - tolerance]
    threshold = float(np.round(np.median(plateau), 2))
    return threshold, balanced_accuracy(positive, negative, threshold)


def rate(values: Sequence[float], threshold: float, above: bool) -> float:
    array = np.asarray(values)
    return float(((array >= threshold) if above else (array < threshold)).mean())


@dataclass
class SplitRun:
    """Assessments of one split: (a) answerable and (b) unanswerable hits per query."""

    answerable: list[Assessment] = field(default_factory=list)
    unanswerable: list[Assessment] = field(default_factory=list)
    relevant_in_hits: list[bool] = field(default_factory=list)
    cites_relevant: list[bool] = field(default_factory=list)

    def confidences(self, which: str, only_retrieved: bool = False) -> list[float]:
        rows = getattr(self, which)
        return [
            a.confidence
            for a, ok in zip(rows, self.relevant_in_hits, strict=True)
            if ok or not only_retrieved
        ]


def run_split(
    retrieve: Retrieve,
    queries: dict[str, str],
    qrels: dict[str, set[str]],
    known: set[str],
    k: int,
    answerer: ExtractiveAnswerer,
) -> SplitRun:
    run = SplitRun()
    composer = ExtractiveAnswerer(min_score=0.0)  # what it would quote if it answered
    for query_id in sorted(qrels, key=int):
        question, relevant = queries[query_id], frozenset(qrels[query_id] & known)
        hits_a = retrieve(question, k, frozenset())
        hits_b = retrieve(question, k, relevant)
        run.answerable.append(answerer.assess(question, hits_a))
        run.unanswerable.append(answerer.assess(question, hits_b))
        run.relevant_in_hits.append(any(hit.chunk.source in relevant for hit in hits_a))
        answer = composer.answer(question, hits_a)
        run.cites_relevant.append(any(c.source in relevant for c in answer.citations))
    return run


def rates(run: SplitRun, threshold: float) -> dict[str, float]:
    answered = [a.confidence >= threshold for a in run.answerable]
    return {
        "answer_rate_answerable": rate(run.confidences("answerable"), threshold, above=True),
        "answer_rate_answerable_relevant_in_hits": rate(
            run.confidences("answerable", only_retrieved=True), threshold, above=True
        ),
        "abstention_rate_unanswerable": rate(
            run.confidences("unanswerable"), threshold, above=False
        ),
        "answers_citing_a_relevant_doc": float(
            np.mean(
                [ok for ok, yes in zip(run.cites_relevant, answered, strict=True) if yes] or [False]
            )
        ),
    }


def signal_aucs(run: SplitRun) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    for name in ("confidence", "lexical", "coverage", "margin", "dense", "agreement"):
        pos = [getattr(a, name) for a in run.answerable]
        neg = [getattr(a, name) for a in run.unanswerable]
        present = all(v is not None for v in pos + neg)
        figures[name] = round(auc(pos, neg), 3) if present else None
    return figures


def fit_weights(run: SplitRun) -> dict[str, object] | None:
    """With k-NN scores in the hits: the signal weights with the best AUC (grid step 0.05)."""
    rows = run.answerable + run.unanswerable
    if all(a.dense is None and a.agreement is None for a in rows):
        return None
    best: tuple[float, ConfidenceWeights] = (-1.0, ConfidenceWeights())
    steps = [round(0.05 * i, 2) for i in range(21)]
    for lexical in steps:
        for dense in steps:
            agreement = round(1.0 - lexical - dense, 2)
            if agreement < 0:
                continue
            weights = ConfidenceWeights(lexical, dense, agreement)

            def confidences(items: list[Assessment], w: ConfidenceWeights = weights) -> list[float]:
                return [combine(a.lexical, a.dense, a.agreement, w) for a in items]

            score = auc(confidences(run.answerable), confidences(run.unanswerable))
            if score > best[0] + 1e-9:
                best = (score, weights)
    score, weights = best
    pos = [combine(a.lexical, a.dense, a.agreement, weights) for a in run.answerable]
    neg = [combine(a.lexical, a.dense, a.agreement, weights) for a in run.unanswerable]
    threshold, balanced = best_threshold(pos, neg)
    return {
        "weights": {
            "lexical": weights.lexical,
            "dense": weights.dense,
            "agreement": weights.agreement,
        },
        "auc": round(score, 3),
        "threshold": threshold,
        "balanced_accuracy": round(balanced, 3),
    }


def calibrate_scifact(
    root: Path, retriever_spec: str | None, k: int, fit_split: str, eval_split: str
) -> dict[str, object]:
    corpus, queries = load_scifact(root)
    retrieve = load_retriever(retriever_spec, corpus)
    answerer = ExtractiveAnswerer()
    known = {doc.id for doc in corpus}
    fit = run_split(retrieve, queries, load_qrels(root, fit_split), known, k, answerer)
    held_out = run_split(retrieve, queries, load_qrels(root, eval_split), known, k, answerer)
    threshold, balanced = best_threshold(
        fit.confidences("answerable"), fit.confidences("unanswerable")
    )
    quantiles = [0.1, 0.25, 0.5, 0.75, 0.9]
    return {
        "retriever": retriever_spec or "in-memory BM25",
        "k": k,
        "fit": {
            "split": fit_split,
            "queries": len(fit.answerable),
            "best_threshold": round(threshold, 3),
            "balanced_accuracy": round(balanced, 3),
            "auc": signal_aucs(fit),
            "suggested_weights": fit_weights(fit),
        },
        "eval": {
            "split": eval_split,
            "queries": len(held_out.answerable),
            "recall_at_k": float(np.mean(held_out.relevant_in_hits)),
            "auc": signal_aucs(held_out),
            "at_fitted_threshold": rates(held_out, threshold),
            "at_default_min_score": {"min_score": answerer.min_score}
            | rates(held_out, answerer.min_score),
            "confidence_quantiles": {
                "answerable": np.quantile(held_out.confidences("answerable"), quantiles)
                .round(3)
                .tolist(),
                "unanswerable": np.quantile(held_out.confidences("unanswerable"), quantiles)
                .round(3)
                .tolist(),
            },
        },
    }


def _contains(text: str, answer: str | list) -> bool:
    options = answer if isinstance(answer, list) else [answer]
    flat = [o for option in options for o in (option if isinstance(option, list) else [option])]
    folded = text.lower()
    return any(str(option).lower() in folded for option in flat)


def check_rgb(path: Path) -> dict[str, object]:
    answerer = ExtractiveAnswerer()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    mixes = {
        "positive+negative": ("positive", "negative"),
        "positive_wrong+negative": ("positive_wrong", "negative"),
        "positive+positive_wrong+negative": ("positive", "positive_wrong", "negative"),
        "negative only": ("negative",),
    }
    report: dict[str, object] = {"questions": len(rows)}
    for name, fields in mixes.items():
        tally: Counter[str] = Counter()
        for row in rows:
            docs = [
                CorpusDoc(f"{row['id']}-{field}-{i}", "", text)
                for field in fields
                for i, text in enumerate(row[field])
            ]
            hits = Bm25(docs)(row["query"], 10, frozenset())
            answer = answerer.answer(row["query"], hits)
            if not answer.found:
                tally["abstained"] += 1
                continue
            true, fake = (
                _contains(answer.text, row["answer"]),
                _contains(answer.text, row["fakeanswer"]),
            )
            tally[
                "true and fake"
                if true and fake
                else "true"
                if true
                else "fake"
                if fake
                else "neither"
            ] += 1
        report[name] = dict(sorted(tally.items()))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get(
        "DOCKET_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument(
        "--retriever",
        help="module:factory; factory(corpus) -> retrieve (calibrate_answerer:hybrid_retriever)",
    )
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--fit-split", default="train", help="qrels split the threshold is fit on")
    parser.add_argument("--eval-split", default="test", help="qrels split the figures come from")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not (args.data / "scifact").is_dir():
        print(f"shared data not found at {args.data} (set DOCKET_SHARED_DATA)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    figures: dict[str, object] = {
        "scifact": calibrate_scifact(
            args.data / "scifact", args.retriever, args.k, args.fit_split, args.eval_split
        ),
        "rgb_counterfactual": check_rgb(args.data / "rgb_counterfactual" / "en_fact.json"),
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
