"""The whole SciFact corpus through the real chunker: the bound holds and it is fast."""

from __future__ import annotations

import json
import time

import pytest

from docket.chunking import Chunker
from docket.models import ExtractedDocument, Page

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def test_scifact_chunks_within_the_size_in_seconds(shared_data, wordpiece):
    # Given the 5,183 SciFact abstracts as one-page documents (title, blank line, abstract)
    corpus = shared_data / "scifact" / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip(f"{corpus} not found")
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    docs = [
        ExtractedDocument(
            format="txt",
            title=row["title"],
            pages=[Page(number=1, text=f"{row['title']}\n\n{row['text']}")],
        )
        for row in rows
    ]
    chunker = Chunker(wordpiece, chunk_size=256, overlap=32)

    # When every document is chunked
    started = time.perf_counter()
    chunks = [chunk for doc in docs for chunk in chunker.chunk(doc)]
    elapsed = time.perf_counter() - started

    # Then every chunk is within 256 tokens, and the corpus takes seconds, not minutes
    print(f"scifact: {len(docs)} documents, {len(chunks)} chunks in {elapsed:.2f}s")
    assert len(chunks) >= len(docs)
    assert max(c.token_count for c in chunks) <= 256
    assert elapsed < 60
