"""Reciprocal-rank fusion, checked against hand-computed scores."""

from __future__ import annotations

import pytest

from docket.models import ChunkRecord, SearchHit
from docket.search.fusion import (
    Fusion,
    TermMatches,
    dbsf_fuse,
    fully_covered_documents,
    rrf_fuse,
)


def hit(chunk_id: str, score: float, retriever: str, tenant: str = "acme") -> SearchHit:
    chunk = ChunkRecord(
        tenant=tenant,
        document_id="doc_" + "0" * 24,
        chunk_id=chunk_id,
        ordinal=0,
        text=chunk_id,
        page_start=1,
        page_end=1,
        source="s.txt",
    )
    return SearchHit(chunk=chunk, score=score, retriever=retriever)


def ranked(retriever: str, *chunk_ids: str) -> list[SearchHit]:
    return [hit(c, 10.0 - i, retriever) for i, c in enumerate(chunk_ids)]


def order(hits: list[SearchHit]) -> list[str]:
    return [h.chunk.chunk_id for h in hits]


def test_rrf_scores_match_the_formula():
    # Given bm25 = [A, B, C] and knn = [B, D, A]
    lists = {"bm25": ranked("bm25", "A", "B", "C"), "knn": ranked("knn", "B", "D", "A")}
    # When fused with k=60
    fused = rrf_fuse(lists, k=60)
    # Then B = 1/62 + 1/61 > A = 1/61 + 1/63 > D = 1/62 > C = 1/63
    assert order(fused) == ["B", "A", "D", "C"]
    expected = {"A": 1 / 61 + 1 / 63, "B": 1 / 62 + 1 / 61, "C": 1 / 63, "D": 1 / 62}
    for h in fused:
        assert h.score == pytest.approx(expected[h.chunk.chunk_id], abs=1e-12)
    assert [h.rank for h in fused] == [1, 2, 3, 4]
    assert all(h.retriever == "hybrid" for h in fused)
    # And each hit carries every contributing retriever's rank and raw score
    a = next(h for h in fused if h.chunk.chunk_id == "A")
    assert a.ranks == {"bm25": 1, "knn": 3}
    assert a.scores == {"bm25": 10.0, "knn": 8.0}
    c = next(h for h in fused if h.chunk.chunk_id == "C")
    assert c.ranks == {"bm25": 3} and c.scores == {"bm25": 8.0}


def test_weights_scale_each_retriever():
    lists = {"bm25": ranked("bm25", "A", "B", "C"), "knn": ranked("knn", "B", "D", "A")}
    fused = rrf_fuse(lists, k=60, weights={"bm25": 2.0})
    # A = 2/61 + 1/63 = 0.048660 edges out B = 2/62 + 1/61 = 0.048651; C = 2/63 > D = 1/62
    assert order(fused) == ["A", "B", "C", "D"]
    assert fused[0].score == pytest.approx(2 / 61 + 1 / 63, abs=1e-12)
    # A zero weight keeps the retriever's ranks for display but not in the score
    muted = rrf_fuse(lists, k=60, weights={"knn": 0.0})
    assert order(muted) == ["A", "B", "C", "D"]
    assert muted[3].score == 0.0 and muted[3].ranks == {"knn": 2}


def test_small_k_favours_top_ranks():
    lists = {"bm25": ranked("bm25", "A", "B", "C"), "knn": ranked("knn", "C", "B", "A")}
    # k=0: A = 1 + 1/3, B = 1/2 + 1/2, C = 1/3 + 1
    fused = rrf_fuse(lists, k=0)
    assert fused[0].score == pytest.approx(4 / 3) and fused[2].score == pytest.approx(1.0)
    assert order(fused) == ["A", "C", "B"]  # A and C tie; the tie goes to the lower chunk id


def test_ties_break_deterministically():
    # A and B have the same ranks, mirrored: equal scores, same best rank, so chunk id decides
    lists = {"knn": ranked("knn", "B", "A"), "bm25": ranked("bm25", "A", "B")}
    assert order(rrf_fuse(lists)) == ["A", "B"]
    swapped = {"bm25": ranked("bm25", "B", "A"), "knn": ranked("knn", "A", "B")}
    assert order(rrf_fuse(swapped)) == ["A", "B"]
    # Equal scores from different ranks: the better best rank wins
    three = {
        "r1": ranked("r1", "X", "P", "Q"),
        "r2": ranked("r2", "P", "Y"),
        "r3": ranked("r3", "Q", "Y"),
    }
    fused = rrf_fuse(three, k=0, weights={"r1": 1.0, "r2": 1.0, "r3": 1.0})
    # X = 1, Y = 1/2 + 1/2 = 1: tie on score; X's best rank (1) beats Y's (2)
    x, y = (next(h for h in fused if h.chunk.chunk_id == c) for c in "XY")
    assert x.score == y.score
    assert order(fused).index("X") < order(fused).index("Y")


def test_duplicates_in_one_list_count_once_at_their_best_rank():
    lists = {"bm25": [hit("A", 3.0, "bm25"), hit("B", 2.0, "bm25"), hit("A", 1.0, "bm25")]}
    fused = rrf_fuse(lists, k=60)
    assert order(fused) == ["A", "B"]
    assert fused[0].score == pytest.approx(1 / 61) and fused[0].ranks == {"bm25": 1}


def test_same_chunk_id_in_two_tenants_stays_two_hits():
    lists = {"bm25": [hit("A", 1.0, "bm25", tenant="acme"), hit("A", 0.5, "bm25", tenant="zeta")]}
    fused = rrf_fuse(lists)
    assert [h.chunk.tenant for h in fused] == ["acme", "zeta"]


def test_limit_and_empty_inputs():
    lists = {"bm25": ranked("bm25", "A", "B", "C"), "knn": ranked("knn", "B", "D", "A")}
    assert order(rrf_fuse(lists, limit=2)) == ["B", "A"]
    assert rrf_fuse(lists, limit=0) == []
    assert rrf_fuse({}) == []
    assert rrf_fuse({"bm25": [], "knn": []}) == []
    only = rrf_fuse({"bm25": [], "knn": ranked("knn", "Z")})
    assert order(only) == ["Z"] and only[0].ranks == {"knn": 1}


def test_invalid_arguments_raise():
    with pytest.raises(ValueError):
        rrf_fuse({}, k=-1)
    with pytest.raises(ValueError):
        rrf_fuse({}, weights={"bm25": -1.0})


# --- distribution-based score fusion -----------------------------------------------------------------


def scored(retriever: str, pairs: list[tuple[str, float]]) -> list[SearchHit]:
    return [hit(cid, score, retriever) for cid, score in pairs]


def test_dbsf_scores_match_the_formula():
    # Given two lists with known means and spreads
    bm25 = scored("bm25", [("a", 9.0), ("b", 3.0)])  # mean 6, sd 3 -> low -3, span 18
    knn = scored("knn", [("b", 0.8), ("c", 0.4)])  # mean 0.6, sd 0.2 -> low 0, span 1.2
    fused = dbsf_fuse({"bm25": bm25, "knn": knn}, depth=2, weights={"bm25": 0.5, "knn": 0.5})
    # Then each chunk's score is the weighted sum of (s - (mean - 3 sd)) / (6 sd) over its lists
    expected = {
        "a": 0.5 * (9 + 3) / 18,
        "b": 0.5 * (3 + 3) / 18 + 0.5 * 0.8 / 1.2,
        "c": 0.5 * 0.4 / 1.2,
    }
    assert {h.chunk.chunk_id: h.score for h in fused} == pytest.approx(expected)
    assert order(fused) == ["b", "a", "c"]
    assert fused[0].ranks == {"bm25": 2, "knn": 1} and fused[0].scores == {"bm25": 3.0, "knn": 0.8}
    assert all(h.retriever == "hybrid" for h in fused)


def test_dbsf_lets_a_confident_retriever_outweigh_a_flat_one_where_rrf_does_not():
    # Given BM25 with one chunk far above the rest (an exact match) and k-NN with near-equal
    # scores that rank that chunk last
    bm25 = scored("bm25", [("exact", 30.0)] + [(f"b{i}", 3.0 - 0.01 * i) for i in range(9)])
    knn = scored("knn", [(f"b{i}", 0.50 - 0.001 * i) for i in range(9)] + [("exact", 0.49)])
    lists = {"bm25": bm25, "knn": knn}
    # Then score fusion keeps the exact match first; rank fusion lets k-NN's noise win
    assert order(dbsf_fuse(lists, depth=10))[0] == "exact"
    assert order(rrf_fuse(lists, k=60))[0] == "b0"


def test_dbsf_pads_bm25_with_zero_scores_so_a_rare_match_stands_out():
    # Given a rare term only one chunk contains: BM25 returns a single hit of 10 candidates asked
    bm25 = scored("bm25", [("rare", 5.0)])
    knn = scored("knn", [(f"k{i}", 0.6 - 0.01 * i) for i in range(9)] + [("rare", 0.5)])
    fused = dbsf_fuse({"bm25": bm25, "knn": knn}, depth=10)
    # Then BM25's hit is normalised against nine zeros (a clear winner), not against itself
    assert order(fused)[0] == "rare"
    unpadded = dbsf_fuse({"bm25": bm25, "knn": knn}, depth=10, floors={})
    assert order(unpadded)[0] == "k0"  # a lone score normalises to the middle: no signal


def test_dbsf_identical_scores_and_empty_lists_do_not_divide_by_zero():
    flat = scored("knn", [("a", 0.5), ("b", 0.5)])
    fused = dbsf_fuse({"bm25": [], "knn": flat}, depth=2)
    assert order(fused) == ["a", "b"]  # equal scores: ties break by chunk id
    assert dbsf_fuse({"bm25": [], "knn": []}, depth=5) == []
    assert dbsf_fuse({"knn": flat}, depth=2, limit=0) == []


def test_dbsf_weights_and_limit():
    bm25 = scored("bm25", [("a", 10.0), ("b", 1.0)])
    knn = scored("knn", [("b", 0.9), ("a", 0.1)])
    assert order(dbsf_fuse({"bm25": bm25, "knn": knn}, depth=2, weights={"knn": 0.0})) == ["a", "b"]
    assert order(dbsf_fuse({"bm25": bm25, "knn": knn}, depth=2, weights={"bm25": 0.0})) == [
        "b",
        "a",
    ]
    assert len(dbsf_fuse({"bm25": bm25, "knn": knn}, depth=2, limit=1)) == 1
    with pytest.raises(ValueError):
        dbsf_fuse({"bm25": bm25}, depth=2, weights={"bm25": -1.0})


def test_fusion_settings_choose_the_method():
    bm25 = scored("bm25", [("a", 10.0), ("b", 1.0)])
    knn = scored("knn", [("b", 0.9), ("a", 0.1)])
    lists = {"bm25": bm25, "knn": knn}
    assert Fusion().fuse(lists, depth=2) == dbsf_fuse(
        lists, depth=2, weights={"bm25": 0.5, "knn": 0.5}
    )
    rrf = Fusion(method="rrf", rrf_k=10)
    assert rrf.fuse(lists, depth=2) == rrf_fuse(lists, k=10, weights={"bm25": 0.5, "knn": 0.5})
    assert rrf.describe() == {
        "method": "rrf",
        "bm25_weight": 0.5,
        "rrf_k": 10,
        "coordination_max_documents": 10,
        "dense_pivot": None,
    }


def cosines(values: list[float]) -> list[SearchHit]:
    return scored("knn", [(f"k{i}", v) for i, v in enumerate(values)])


def test_bm25_weight_follows_the_knn_cosine_level_per_query():
    fusion = Fusion(dense_pivot=0.55, dense_slope=2.0, min_weight=0.1)
    # Given k-NN's best ten at the pivot, the base weights apply
    assert fusion.weights_for(cosines([0.55] * 10)) == pytest.approx({"bm25": 0.5, "knn": 0.5})
    # A model that reads the query well (high cosines) moves weight to k-NN, a query it reads
    # badly (a bag of rare words: low cosines) moves it to BM25; both within the bounds
    assert fusion.weights_for(cosines([0.75] * 10))["bm25"] == pytest.approx(0.1)
    assert fusion.weights_for(cosines([0.45] * 10))["bm25"] == pytest.approx(0.7)
    assert fusion.weights_for(cosines([0.05] * 10))["bm25"] == pytest.approx(0.9)
    assert fusion.weights_for(cosines([0.99] * 10))["bm25"] == pytest.approx(0.1)
    # Only the best ten count, and no k-NN hits (or no pivot) means the base weights
    assert fusion.weights_for(cosines([0.55] * 10 + [0.0] * 90))["bm25"] == pytest.approx(0.5)
    assert fusion.weights_for([]) == {"bm25": 0.5, "knn": 0.5}
    assert Fusion().weights_for(cosines([0.9] * 10)) == {"bm25": 0.5, "knn": 0.5}
    assert Fusion(dense_pivot=0.55, dense_slope=0.0).weights_for(cosines([0.9] * 10)) == {
        "bm25": 0.5,
        "knn": 0.5,
    }


def test_adaptive_weights_change_the_fused_order():
    # Given BM25 and k-NN disagreeing on the best chunk
    bm25 = scored("bm25", [("a", 20.0), ("b", 6.0), ("c", 5.0), ("d", 4.0)])
    knn = scored("knn", [("b", 0.70), ("a", 0.66), ("c", 0.65), ("d", 0.64)])
    lists = {"bm25": bm25, "knn": knn}
    adaptive = Fusion(dense_pivot=0.55)
    # When k-NN's cosines are high, its favourite leads; fixed weights keep BM25's
    assert order(adaptive.fuse(lists, depth=4))[0] == "b"
    assert order(Fusion().fuse(lists, depth=4))[0] == "a"
    # And the weights used are exactly those of weights_for, through DBSF
    assert adaptive.fuse(lists, depth=4) == dbsf_fuse(
        lists, depth=4, weights=adaptive.weights_for(knn)
    )


def doc_hit(chunk_id: str, document: str, score: float, retriever: str) -> SearchHit:
    h = hit(chunk_id, score, retriever)
    return h.model_copy(update={"chunk": h.chunk.model_copy(update={"document_id": document})})


def test_documents_holding_every_query_term_go_first():
    # Given a known-item query whose three terms only doc_b holds (split over its two chunks),
    # while k-NN and the fused scores prefer doc_a
    bm25 = [
        doc_hit("a1", "doc_a", 9.0, "bm25"),
        doc_hit("b1", "doc_b", 8.9, "bm25"),
        doc_hit("b2", "doc_b", 3.0, "bm25"),
    ]
    knn = [doc_hit("a1", "doc_a", 0.9, "knn"), doc_hit("c1", "doc_c", 0.5, "knn")]
    terms = TermMatches(
        weights={"rare": 5.0, "word": 4.0, "here": 3.0},
        matched=[frozenset({"rare", "word"}), frozenset({"rare", "word"}), frozenset({"here"})],
    )
    fusion = Fusion()
    plain = fusion.fuse({"bm25": bm25, "knn": knn}, depth=3)
    assert order(plain)[0] == "a1"
    # Then with the matched terms, doc_b's chunks (together: every term) lead, ranks renumbered
    fused = fusion.fuse({"bm25": bm25, "knn": knn}, depth=3, terms=terms, limit=3)
    assert order(fused) == ["b1", "b2", "a1"] and [h.rank for h in fused] == [1, 2, 3]
    # And nothing moves when coordination is off, when too many documents hold every term,
    # or for a one-term query
    off = Fusion(coordination_max_documents=0).fuse(
        {"bm25": bm25, "knn": knn}, depth=3, terms=terms
    )
    assert order(off) == order(plain)
    assert fully_covered_documents(bm25, terms, max_documents=0) == set()
    everyone = TermMatches(weights={"w": 1.0, "v": 1.0}, matched=[frozenset({"w", "v"})] * 3)
    assert fully_covered_documents(bm25, everyone, max_documents=1) == set()
    single = TermMatches(
        weights={"rare": 5.0}, matched=[frozenset(), frozenset({"rare"}), frozenset()]
    )
    assert fully_covered_documents(bm25, single, max_documents=10) == set()
