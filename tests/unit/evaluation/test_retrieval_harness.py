"""The retrieval harness end to end on a tiny BEIR folder (hashing embedder: no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pytrec_eval")

from docket.cli import main
from docket.evaluation.beir import DatasetError, load_beir

DOCS = {
    "d1": ("Tides", "The moon's gravity raises ocean tides twice a day."),
    "d2": ("Photosynthesis", "Plants turn light into chemical energy in chloroplasts."),
    "d3": ("Volcanoes", "Magma rises through the crust and erupts as lava."),
    "d4": ("Glaciers", "Compacted snow forms slowly moving rivers of ice."),
}
QUERIES = {"q1": "what causes ocean tides", "q2": "how do plants use light", "q3": "lava eruption"}
QRELS = [("q1", "d1", 2), ("q2", "d2", 1), ("q3", "d3", 1), ("q3", "d4", 0)]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n" for k, (t, x) in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in QUERIES.items())
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS)
    )
    return folder


def test_loader_keeps_judged_queries_and_grades(dataset: Path) -> None:
    data = load_beir(dataset, "test")
    assert list(data.queries) == ["q1", "q2", "q3"]
    assert data.qrels["q1"] == {"d1": 2} and data.relevant("q3") == {"d3"}
    with pytest.raises(DatasetError, match=r"train\.tsv is missing"):
        load_beir(dataset, "train")
    (dataset / "corpus.jsonl").write_text('{"_id": "x"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2"):
        load_beir(dataset, "test")


def test_cli_reports_every_mode_writes_json_and_chart(
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    monkeypatch.delenv("DOCKET_RERANK_PROVIDER", raising=False)
    out, chart = tmp_path / "r.json", tmp_path / "r.png"
    code = main(
        ["eval", "retrieval", "--dataset", str(dataset), "--json", str(out), "--plot", str(chart)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["dataset"] == "tiny" and report["split"] == "test"
    assert set(report["modes"]) == {"bm25", "dense", "hybrid", "hybrid+rerank"}
    # no reranker configured: reported as skipped, never with a score
    assert set(report["modes"]["hybrid+rerank"]) == {"skipped"}
    for mode in ("bm25", "dense", "hybrid"):
        figures = report["modes"][mode]
        assert {
            "ndcg@10",
            "recall@10",
            "recall@100",
            "mrr@10",
            "latency_ms_p50",
            "latency_ms_p95",
        } <= set(figures)
        assert all(0.0 <= figures[m] <= 1.0 for m in ("ndcg@10", "recall@10", "mrr@10"))
    # four documents, one relevant each that shares words with its query: BM25 finds them all
    assert report["modes"]["bm25"]["recall@10"] == 1.0
    assert report["documents"] == 4 and report["chunks"] == 4
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hybrid" in capsys.readouterr().out


def test_cli_rejects_unknown_modes(dataset: Path) -> None:
    assert main(["eval", "retrieval", "--dataset", str(dataset), "--modes", "bm25,magic"]) == 2


def test_identical_ids_are_dropped_before_scoring_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a corpus where a query is itself a document (ArguAna's layout): "a1" argues, and
    # its counter-argument "a2" is the relevant document
    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    folder = tmp_path / "args"
    (folder / "qrels").mkdir(parents=True)
    docs = {
        "a1": "school uniforms suppress expression and individuality of pupils",
        "a2": "uniforms remove pressure of fashion and expression through clothing costs",
        "a3": "nuclear power stations are safe and cheap to run for decades",
    }
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "a1", "text": docs["a1"]}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\na1\ta2\t1\n")
    reports = {}
    for flag in ([], ["--ignore-identical-ids"]):
        out = tmp_path / f"r{len(flag)}.json"
        args = ["eval", "retrieval", "--dataset", str(folder), "--modes", "bm25", "--json"]
        assert main([*args, str(out), *flag]) == 0
        reports[bool(flag)] = json.loads(out.read_text())
    # Then kept, the query finds itself first and the counter-argument second; dropped, the
    # counter-argument is first (BEIR's rule), and the report says which rule applied
    assert reports[False]["modes"]["bm25"]["mrr@10"] == pytest.approx(0.5)
    assert reports[True]["modes"]["bm25"]["mrr@10"] == pytest.approx(1.0)
    assert reports[True]["ignore_identical_ids"] is True
