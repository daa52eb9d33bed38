"""PDF extraction before and after layout mode: time, broken words, and known facts as clean text.

"old" is the extractor as it was (pypdf's plain mode, content-stream order); "new" is the current
one (pypdf's layout mode, tables as `` | `` rows). Both run through ``extract_document``, so
cleaning, hyphen joining and running-head stripping are the same.

Broken words are counted against one vocabulary built from both modes' text of the same file
(words seen at least ``--min-count`` times), so neither mode judges itself:

- split: two whitespace-separated lowercase tokens, one of them not in the vocabulary, whose
  concatenation is ("attributab le");
- merged: a lowercase token of 7+ letters not in the vocabulary that splits into two frequent
  words (seen ``--frequent`` times) of 3+ letters each ("newdynamics", "ouremployees").

Facts are ``docket.evaluation.filings.EXTRACTION_FACTS``: text that must be on a given page.

    .venv/bin/python bench/bench_pdf_extract.py [--data ../shared/data] [--examples 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from docket.evaluation.filings import EXTRACTION_FACTS, FILINGS_DIR, fact_pages
from docket.extract import extract_document
from docket.models import ExtractedDocument

DOCUMENTS = ("uber_2021.pdf", "lyft_2021.pdf", "DeepSeek_R1.pdf", "graphrag.pdf")
_WORD = re.compile(r"^[a-z]+$")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


@contextmanager
def old_mode() -> Iterator[None]:
    """The extractor as it was: pypdf's plain mode, nothing rewritten."""
    from docket.extract import pdf

    saved = pdf._page_text
    pdf._page_text = lambda page: page.extract_text() or ""  # type: ignore[assignment]
    try:
        yield
    finally:
        pdf._page_text = saved  # type: ignore[assignment]


def extract(path: Path, mode: str) -> tuple[ExtractedDocument, float]:
    data = path.read_bytes()
    started = time.perf_counter()
    if mode == "old":
        with old_mode():
            document = extract_document(data, path.name)
    else:
        document = extract_document(data, path.name)
    return document, time.perf_counter() - started


def tokens(document: ExtractedDocument) -> list[str]:
    return [token for page in document.pages for token in page.text.split()]


def vocabulary(*documents: ExtractedDocument) -> Counter[str]:
    counts: Counter[str] = Counter()
    for document in documents:
        for token in tokens(document):
            word = _EDGE.sub("", token).lower()
            if word.isalpha():
                counts[word] += 1
    return counts


def split_words(document: ExtractedDocument, vocab: set[str]) -> list[str]:
    found = []
    words = tokens(document)
    for left, right in itertools.pairwise(words):
        a, b = _EDGE.sub("", left), _EDGE.sub("", right)
        # only tokens that touch each other across whitespace: "attributab le", not "a, b"
        if not (left.endswith(a) and right.startswith(b) and _WORD.match(a) and _WORD.match(b)):
            continue
        if (a not in vocab or b not in vocab) and a + b in vocab:
            found.append(f"{a} {b}")
    return found


def merged_words(document: ExtractedDocument, vocab: set[str], frequent: set[str]) -> list[str]:
    found = []
    for token in tokens(document):
        word = _EDGE.sub("", token)
        if len(word) < 7 or not _WORD.match(word) or word in vocab:
            continue
        if any(word[:i] in frequent and word[i:] in frequent for i in range(3, len(word) - 2)):
            found.append(word)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get(
        "DOCKET_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    parser.add_argument("--data", type=Path, default=Path(default_data))
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--frequent", type=int, default=10)
    parser.add_argument("--examples", type=int, default=5)
    args = parser.parse_args()
    folder = args.data / FILINGS_DIR
    if not folder.is_dir():
        print(f"shared data not found at {folder} (set DOCKET_SHARED_DATA)", file=sys.stderr)
        return 2
    extracted: dict[str, dict[str, ExtractedDocument]] = {"old": {}, "new": {}}
    header = (
        f"{'document':<18} {'pages':>5} {'old s':>7} {'new s':>7} "
        f"{'split old':>9} {'split new':>9} {'merged old':>10} {'merged new':>10}"
    )
    print(header)
    examples: list[str] = []
    for name in DOCUMENTS:
        path = folder / name
        if not path.is_file():
            print(f"{name:<18} missing")
            continue
        old, old_s = extract(path, "old")
        new, new_s = extract(path, "new")
        extracted["old"][name], extracted["new"][name] = old, new
        counts = vocabulary(old, new)
        vocab = {word for word, count in counts.items() if count >= args.min_count}
        split = {mode: split_words(doc, vocab) for mode, doc in (("old", old), ("new", new))}
        frequent = {word for word, count in counts.items() if count >= args.frequent}
        merged = {
            mode: merged_words(doc, vocab, frequent) for mode, doc in (("old", old), ("new", new))
        }
        print(
            f"{name:<18} {new.metadata.get('page_count', '?'):>5} {old_s:>7.2f} {new_s:>7.2f} "
            f"{len(split['old']):>9} {len(split['new']):>9} "
            f"{len(merged['old']):>10} {len(merged['new']):>10}"
        )
        for mode in ("old", "new"):
            examples.append(
                f"  {name} {mode}: split {split[mode][: args.examples]}"
                f" merged {merged[mode][: args.examples]}"
            )
    print("\nexamples")
    print("\n".join(examples))
    print(f"\n{'fact':<24} {'page':>4}  {'old':<12} {'new':<12}  text")
    for fact in EXTRACTION_FACTS:
        cells = []
        for mode in ("old", "new"):
            document = extracted[mode].get(fact.filing)
            if document is None:
                cells.append("missing")
                continue
            pages = fact_pages(extracted[mode], fact)
            cells.append("yes" if fact.page in pages else ("elsewhere" if pages else "no"))
        text = fact.text.replace("\n", " / ")
        print(f"{fact.id:<24} {fact.page:>4}  {cells[0]:<12} {cells[1]:<12}  {text[:70]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
