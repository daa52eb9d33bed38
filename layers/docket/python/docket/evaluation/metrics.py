"""Retrieval metrics as BEIR computes them, through pytrec_eval (trec_eval's own code).

- nDCG@10: ``ndcg_cut.10`` with gain = the graded relevance (0-3), log2 discount, the ideal
  ranking built from all judged documents of the query.
- Recall@k: ``recall.k``, relevant = grade >= 1.
- MRR@10: reciprocal rank of the first relevant document within the first 10 (BEIR truncates the
  run to k before ``recip_rank``).

A run maps query id -> [doc ids, best first]. Ranks are turned into strictly decreasing scores,
so trec_eval's tie-breaking (by document id) never reorders what the system returned. A query
with no documents retrieved scores 0 (trec_eval would skip it and inflate the mean).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

METRICS: tuple[str, ...] = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def _as_scores(ranking: Sequence[str], limit: int | None = None) -> dict[str, float]:
    scores: dict[str, float] = {}
    for doc in ranking[:limit] if limit else ranking:
        if doc not in scores:
            scores[doc] = float(len(ranking) - len(scores))
    return scores


def per_query(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, float]]:
    """metric -> query id -> value, for every judged query (missing from the run = 0)."""
    try:
        import pytrec_eval
    except ImportError:  # the Lambda layer (the re-embed gate) carries no compiled trec_eval
        return _per_query_python(run, qrels)

    judged = {q: dict(docs) for q, docs in qrels.items() if any(g > 0 for g in docs.values())}
    full = {q: _as_scores(run.get(q, ())) for q in judged}
    top10 = {q: _as_scores(run.get(q, ()), 10) for q in judged}
    # trec_eval drops queries with an empty run; a placeholder document keeps them at 0
    for scored in (full, top10):
        for docs in scored.values():
            if not docs:
                docs["\x00none"] = 0.0
    deep = pytrec_eval.RelevanceEvaluator(judged, {"ndcg_cut.10", "recall.10,100"})
    shallow = pytrec_eval.RelevanceEvaluator(judged, {"recip_rank"})
    out: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    for q, values in deep.evaluate(full).items():
        out["ndcg@10"][q] = values["ndcg_cut_10"]
        out["recall@10"][q] = values["recall_10"]
        out["recall@100"][q] = values["recall_100"]
    for q, values in shallow.evaluate(top10).items():
        out["mrr@10"][q] = values["recip_rank"]
    return out


def _per_query_python(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, dict[str, float]]:
    """The same four metrics computed as trec_eval does, in plain Python."""
    import math

    out: dict[str, dict[str, float]] = {m: {} for m in METRICS}
    for q, docs in qrels.items():
        relevant = {d: g for d, g in docs.items() if g > 0}
        if not relevant:
            continue
        ranking = list(_as_scores(run.get(q, ())))  # first occurrences, best first
        dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        out["ndcg@10"][q] = dcg / idcg if idcg else 0.0
        for k in (10, 100):
            out[f"recall@{k}"][q] = sum(1 for d in ranking[:k] if d in relevant) / len(relevant)
        first = next((i for i, d in enumerate(ranking[:10]) if d in relevant), None)
        out["mrr@10"][q] = 1.0 / (first + 1) if first is not None else 0.0
    return out


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """The mean of each metric over the judged queries."""
    return {
        metric: (statistics.fmean(values.values()) if values else 0.0)
        for metric, values in per_query(run, qrels).items()
    }
