"""Write derived BEIR datasets (docket/evaluation/derived.py) where one retriever is much weaker.

    .venv/bin/python bench/derive_datasets.py [--out bench/results/derived]

Writes scifact-typos, scifact-typos-heavy (BM25 weakened), scifact-known-item (rarest terms) and
scifact-known-item-sampled (tf-idf sampled terms) (dense weakened). The corpus file is a symbolic
link to SciFact's: nothing of the shared data is copied into the project.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "layers" / "docket" / "python"))

from docket.evaluation.beir import load_beir  # noqa: E402
from docket.evaluation.derived import known_item_queries, typo_queries  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("DOCKET_SHARED_DATA", REPO.parent / "shared" / "data"))


def write(
    folder: Path, corpus: Path, queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> None:
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    link = folder / "corpus.jsonl"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(corpus.resolve())
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    with (folder / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, docs in qrels.items():
            for doc, grade in docs.items():
                fh.write(f"{qid}\t{doc}\t{grade}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "derived")
    args = ap.parse_args()
    source = data_dir() / "scifact"
    test = load_beir(source, "test")
    corpus = source / "corpus.jsonl"
    write(args.out / "scifact-typos", corpus, typo_queries(test.queries), test.qrels)
    write(
        args.out / "scifact-typos-heavy", corpus, typo_queries(test.queries, heavy=True), test.qrels
    )
    for how, name in (("rarest", "scifact-known-item"), ("sampled", "scifact-known-item-sampled")):
        queries, qrels = known_item_queries(test.corpus.values(), how=how)  # type: ignore[arg-type]
        write(args.out / name, corpus, queries, qrels)
        print(f"{name}: e.g. {next(iter(queries.values()))!r}")
    print(f"wrote under {args.out}")


if __name__ == "__main__":
    main()
