"""Reading a BEIR-layout dataset: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{split}.tsv``.

As in BEIR's ``GenericDataLoader``: a corpus line is ``{"_id", "title", "text"}``, a query line
``{"_id", "text"}``, and the qrels file is tab-separated ``query-id, corpus-id, score`` with a
header row. Only queries that have judgements in the split are kept, and a judgement's score is
its graded relevance (0 = judged not relevant).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from docket.errors import DocketError


class DatasetError(DocketError):
    """The folder is not a readable BEIR dataset (missing file, bad line)."""

    code = "bad_dataset"
    permanent = True


class BeirDocument(BaseModel):
    model_config = ConfigDict(frozen=True)

    doc_id: str
    title: str
    text: str


class BeirDataset(BaseModel):
    name: str
    split: str
    corpus: dict[str, BeirDocument]
    queries: dict[str, str]
    # query id -> corpus id -> graded relevance
    qrels: dict[str, dict[str, int]]

    def relevant(self, query_id: str) -> set[str]:
        return {doc for doc, grade in self.qrels.get(query_id, {}).items() if grade > 0}


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise DatasetError(f"{path}:{number}: expected an object with an _id")
            yield number, row


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for number, row in enumerate(reader, start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise DatasetError(f"{path}:{number}: expected query-id, corpus-id, score")
            try:
                grade = int(float(row[2]))
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: score {row[2]!r} is not a number") from exc
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_beir(folder: Path, split: str = "test") -> BeirDataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    corpus = {
        str(row["_id"]): BeirDocument(
            doc_id=str(row["_id"]),
            title=str(row.get("title") or ""),
            text=str(row.get("text") or ""),
        )
        for _, row in _jsonl(folder / "corpus.jsonl")
    }
    all_queries = {
        str(row["_id"]): str(row.get("text") or "") for _, row in _jsonl(folder / "queries.jsonl")
    }
    qrels = load_qrels(folder / "qrels" / f"{split}.tsv")
    missing = sorted(q for q in qrels if q not in all_queries)
    if missing:
        raise DatasetError(
            f"{len(missing)} judged queries are not in queries.jsonl (first: {missing[0]!r})"
        )
    queries = {q: all_queries[q] for q in sorted(qrels, key=_natural)}
    return BeirDataset(name=folder.name, split=split, corpus=corpus, queries=queries, qrels=qrels)


def _natural(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)
