"""``docket eval tune``: the fit and its cross-validated keep-or-not decision on hand-made
candidate lists, and the command end to end on a small BEIR folder (hashing embedder)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docket.evaluation.tune import QueryLists, TuneError, candidates, half_of, tune
from docket.models import ChunkRecord, SearchHit, chunk_id_for, document_id_for
from docket.search.fusion import Fusion


def hits(retriever: str, scored: list[tuple[str, float]]) -> list[SearchHit]:
    return [
        SearchHit(
            chunk=ChunkRecord(
                tenant="eval",
                document_id=document_id_for("eval", doc),
                chunk_id=chunk_id_for(document_id_for("eval", doc), doc),
                ordinal=0,
                text=doc,
                page_start=1,
                page_end=1,
                source=doc,
            ),
            score=score,
            retriever=retriever,
            rank=rank,
        )
        for rank, (doc, score) in enumerate(scored, start=1)
    ]


def golden_set(questions: int, *, knn_misleads: bool) -> tuple[dict, dict]:
    """Each question's relevant document is BM25's clear first; k-NN prefers a decoy when
    ``knn_misleads`` (and agrees with BM25 otherwise)."""
    lists, qrels = {}, {}
    for i in range(questions):
        relevant, decoy = f"rel{i}", f"decoy{i}"
        noise = [(f"n{i}-{j}", 5.0 - j * 0.1) for j in range(20)]
        bm25 = hits("bm25", [(relevant, 12.0), (decoy, 4.0), *noise])
        dense_order = [(decoy, 0.75), (relevant, 0.62)] if knn_misleads else [(relevant, 0.75)]
        knn = hits("knn", [*dense_order, *[(f"m{i}-{j}", 0.6 - j * 0.001) for j in range(20)]])
        lists[f"q{i}"] = QueryLists(bm25=bm25, knn=knn, terms=None)
        qrels[f"q{i}"] = {relevant: 1}
    return lists, qrels


def test_a_fit_that_helps_on_held_out_questions_is_kept():
    # Given a golden set where k-NN's favourite is a decoy and BM25 is right
    lists, qrels = golden_set(30, knn_misleads=True)
    base = Fusion(bm25_weight=0.2, dense_pivot=None)
    # When tuned
    report = tune(lists, qrels, base, depth=100)
    # Then BM25 gets more weight, the tuned row beats the defaults, and cross-validation says
    # the gain holds on questions the fit did not see
    assert report.best["bm25_weight"] > 0.2
    names = [row.name for row in report.table]
    assert names == ["bm25", "dense", "hybrid, defaults", "hybrid, tuned"]
    assert report.table[3].ndcg10 > report.table[2].ndcg10
    assert report.cv_tuned > report.cv_default and report.kept
    stored = report.stored("owner-set")
    assert stored["fusion"] == report.best and stored["golden_set"] == "owner-set"


def test_no_gain_keeps_the_defaults():
    # Given a golden set both retrievers already get right
    lists, qrels = golden_set(30, knn_misleads=False)
    report = tune(lists, qrels, Fusion(), depth=100)
    # Then nothing beats the defaults by the margin: they stay
    assert not report.kept
    assert "defaults stay" in report.reason


def test_too_small_a_golden_set_is_refused():
    lists, qrels = golden_set(5, knn_misleads=True)
    with pytest.raises(TuneError, match="at least 20"):
        tune(lists, qrels, Fusion(), depth=100)


def test_the_grid_fits_a_pivot_only_for_an_uncalibrated_model():
    lists, _ = golden_set(8, knn_misleads=True)
    calibrated = candidates(Fusion(dense_pivot=0.55), lists)
    assert {f.dense_pivot for f in calibrated} == {0.55}
    uncalibrated = candidates(Fusion(), lists)
    pivots = {f.dense_pivot for f in uncalibrated}
    assert None in pivots and len(pivots) > 1
    assert all(f.dense_pivot is not None for f in uncalibrated if f.dense_slope)


def test_the_halves_are_fixed_and_balanced():
    ids = [f"q{i}" for i in range(400)]
    assert [half_of(q) for q in ids] == [half_of(q) for q in ids]
    assert 150 < sum(half_of(q) for q in ids) < 250


CORPUS = {
    f"doc{i}": f"{topic} notes number {i}: the {topic} {word} schedule and {word} rules"
    for i, (topic, word) in enumerate(
        (t, w)
        for t in ("harbour", "orchard", "glacier", "library", "bakery", "foundry")
        for w in ("winter", "summer", "night", "weekend")
    )
}


def write_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as fh:
        for doc, text in CORPUS.items():
            fh.write(json.dumps({"_id": doc, "title": "", "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as fh, (root / "qrels" / "test.tsv").open("w") as q:
        q.write("query-id\tcorpus-id\tscore\n")
        for i, (doc, text) in enumerate(CORPUS.items()):
            words = text.split()
            fh.write(json.dumps({"_id": f"q{i}", "text": f"{words[0]} {words[6]} {words[7]}"}))
            fh.write("\n")
            q.write(f"q{i}\t{doc}\t1\n")
    return root


def test_the_command_builds_tunes_stores_and_the_query_path_uses_it(tmp_path, monkeypatch, capsys):
    from docket.cli import main
    from docket.config import Settings
    from docket.embedding.hashing import HashingEmbedder
    from docket.search.embedded import EmbeddedIndex
    from docket.search.retrieval import fusion_for

    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    folder = write_folder(tmp_path / "golden")
    index_dir = tmp_path / "index"
    # When tuned with no margin required (a fit is always kept)
    code = main(
        [
            "eval", "tune", "--dataset", str(folder), "--index-dir", str(index_dir),
            "--build", "--min-gain", "-1", "--json", str(tmp_path / "report.json"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    # Then the table is shown and the fit is stored with the index
    assert code == 0
    assert "hybrid, tuned" in out and "stored with the index" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["questions"] == len(CORPUS) and report["kept"]
    manifest = json.loads((index_dir / "manifest.json").read_text())
    assert manifest["tuned_fusion"]["fusion"] == report["best"]
    # And the query path builds its fusion from it
    index = EmbeddedIndex(index_dir, HashingEmbedder().model)
    try:
        used = fusion_for(Settings(), index)
        assert used.bm25_weight == report["best"]["bm25_weight"]
        assert used.coordination_max_documents == report["best"]["coordination_max_documents"]
    finally:
        index.close()
    # When reset, the defaults apply again
    assert main(["eval", "tune", "--dataset", str(folder), "--index-dir", str(index_dir),
                 "--tenant", "eval", "--reset"]) == 0  # fmt: skip
    assert "tuned_fusion" not in json.loads((index_dir / "manifest.json").read_text())


def test_the_command_refuses_a_golden_set_whose_documents_are_not_indexed(
    tmp_path, monkeypatch, capsys
):
    from docket.cli import main

    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    folder = write_folder(tmp_path / "golden")
    index_dir = tmp_path / "index"
    assert main(["eval", "tune", "--dataset", str(folder), "--index-dir", str(index_dir),
                 "--build", "--dry-run"]) == 0  # fmt: skip
    # Asked as another tenant, none of the judged documents is there
    code = main(["eval", "tune", "--dataset", str(folder), "--index-dir", str(index_dir),
                 "--tenant", "someone-else"])  # fmt: skip
    assert code == 2
    assert "none of the 24 judged documents" in capsys.readouterr().err


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path, monkeypatch, capsys):
    from docket.cli import main

    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    folder = write_folder(tmp_path / "golden")
    # no such dataset, no tenant for an existing index, --build without a place to keep it
    assert main(["eval", "tune", "--dataset", str(tmp_path / "nope"), "--tenant", "t"]) == 2
    assert main(["eval", "tune", "--dataset", str(folder)]) == 2
    assert main(["eval", "tune", "--dataset", str(folder), "--build"]) == 2
    err = capsys.readouterr().err
    assert "is not a folder" in err and "--tenant is required" in err
    assert "--build needs --index-dir" in err and "Traceback" not in err
