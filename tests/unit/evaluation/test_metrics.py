"""The metric code against hand-computed examples (BEIR / trec_eval definitions)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pytrec_eval")

from docket.evaluation.metrics import evaluate, per_query


def dcg(gains: list[int]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def test_ndcg_uses_graded_gains_and_the_ideal_of_all_judged_documents() -> None:
    qrels = {"q": {"a": 3, "b": 1, "c": 2, "z": 0}}
    run = {"q": ["b", "x", "a", "z"]}  # gains 1, 0, 3, 0; c (grade 2) is never retrieved
    expected = dcg([1, 0, 3, 0]) / dcg([3, 2, 1])
    assert evaluate(run, qrels)["ndcg@10"] == pytest.approx(expected)
    assert expected == pytest.approx(0.5250, abs=1e-4)  # by hand: (1 + 3/2) / (3 + 2/1.585 + 1/2)


def test_ndcg_cuts_at_ten() -> None:
    qrels = {"q": {"rel": 1}}
    run = {"q": [f"d{i}" for i in range(10)] + ["rel"]}  # relevant at rank 11
    m = evaluate(run, qrels)
    assert m["ndcg@10"] == 0.0
    assert m["recall@10"] == 0.0
    assert m["recall@100"] == 1.0
    assert m["mrr@10"] == 0.0


def test_recall_counts_grade_at_least_one_and_mrr_the_first_relevant() -> None:
    qrels = {"q": {"a": 1, "b": 2, "c": 0, "d": 1}}
    run = {"q": ["c", "x", "b", "y", "a"]}
    m = evaluate(run, qrels)
    assert m["recall@10"] == pytest.approx(2 / 3)  # a and b of a, b, d; c is judged irrelevant
    assert m["mrr@10"] == pytest.approx(1 / 3)


def test_the_order_given_is_the_ranking_never_ties_or_document_ids() -> None:
    # trec_eval breaks score ties by document id; ranks must survive as given
    qrels = {"q": {"a": 1}}
    assert evaluate({"q": ["z", "a"]}, qrels)["mrr@10"] == pytest.approx(0.5)
    assert evaluate({"q": ["a", "z"]}, qrels)["mrr@10"] == pytest.approx(1.0)


def test_a_duplicate_document_counts_once_at_its_first_position() -> None:
    qrels = {"q": {"a": 1, "b": 1}}
    m = evaluate({"q": ["a", "a", "b"]}, qrels)
    assert m["ndcg@10"] == pytest.approx(1.0)


def test_queries_without_results_score_zero_and_count_in_the_mean() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    m = evaluate({"q1": ["a"], "q2": []}, qrels)
    assert m["ndcg@10"] == pytest.approx(0.5)
    assert per_query({"q1": ["a"]}, qrels)["mrr@10"] == {"q1": 1.0, "q2": 0.0}


def test_queries_with_no_relevant_judgement_are_left_out() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 0}}
    assert set(per_query({"q1": ["a"], "q2": ["b"]}, qrels)["ndcg@10"]) == {"q1"}


def test_the_plain_python_metrics_equal_trec_eval() -> None:
    """The re-embed gate on Lambda has no compiled trec_eval: its fallback must agree."""
    import random

    from docket.evaluation.metrics import _per_query_python, per_query

    rng = random.Random(7)
    docs = [f"d{i}" for i in range(40)]
    qrels = {
        f"q{n}": {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 8))}
        for n in range(60)
    }
    run = {q: rng.sample(docs, rng.randint(0, 30)) for q in list(qrels)[:55]}
    exact, plain = per_query(run, qrels), _per_query_python(run, qrels)
    for metric, values in exact.items():
        assert set(values) == set(plain[metric])
        for q, value in values.items():
            assert abs(plain[metric][q] - value) < 1e-9, (metric, q)
