"""Sentence spans, stems and answer-type hints used by the extractive answerer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docket.answer.lexical import (
    answer_type,
    content_terms,
    has_answer_type,
    split_sentences,
    stem,
)


def _sentences(text: str, max_chars: int = 400) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text, max_chars)]


def test_splits_on_sentence_punctuation() -> None:
    # Given / When / Then
    assert _sentences("It rained. Then it snowed! Did it stop? Yes.") == [
        "It rained.",
        "Then it snowed!",
        "Did it stop?",
        "Yes.",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith approved the refund.",
        "The U.S. office handles returns.",
        "Some items, e.g. gift cards, are final.",
        "See Fig. 2 for the process.",
        "J. R. Smith signed the policy.",
        "The dose was 2.5 mg per day.",
        "Cells were grown in vitro. cells then divided.",
    ],
)
def test_does_not_split_after_abbreviations_initials_or_decimals(text: str) -> None:
    # Given a sentence with a period that does not end it
    # When split / Then it stays whole
    assert _sentences(text) == [text]


def test_splits_paragraphs_and_list_items_even_without_punctuation() -> None:
    # Given a heading, a paragraph and a bullet list with no final periods
    text = "Refunds\n\nItems may be returned within 30 days\n- unused items only\n- with receipt"
    # When split / Then each block is its own sentence
    assert _sentences(text) == [
        "Refunds",
        "Items may be returned within 30 days",
        "- unused items only",
        "- with receipt",
    ]


def test_cuts_over_long_runs_at_spaces() -> None:
    # Given a 1,000-character run with no sentence punctuation (a table row, say)
    text = " ".join(["cell"] * 200)
    # When split with a 100-character cap
    spans = _sentences(text, max_chars=100)
    # Then every piece fits and they cover every word
    assert all(len(s) <= 100 for s in spans)
    assert " ".join(spans).split() == text.split()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=600))
def test_spans_are_verbatim_ordered_and_cover_all_visible_text(text: str) -> None:
    # Given any text
    # When split
    spans = split_sentences(text, max_chars=120)
    # Then spans are trimmed, ordered, non-overlapping and cover every non-space character
    previous_end = 0
    covered = 0
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip()
        assert span.start >= previous_end
        previous_end = span.end
        covered += sum(not ch.isspace() for ch in piece)
    assert covered == sum(not ch.isspace() for ch in text)


@pytest.mark.parametrize(
    "words",
    [
        ("induce", "induces", "induced", "inducing"),
        ("refund", "refunds", "refunded", "refunding"),
        ("policy", "policies"),
        ("ship", "shipping", "shipped"),
        ("property", "properties"),
        ("box", "boxes"),
    ],
)
def test_inflections_share_a_stem(words: tuple[str, ...]) -> None:
    # Given / When / Then
    assert len({stem(word) for word in words}) == 1


def test_content_terms_drop_stop_words_and_keep_numbers() -> None:
    # Given / When / Then
    assert content_terms("What is the refund policy in 2021 for Tesla\u2019s Q2?") == [
        "refund",
        "polici",
        "2021",
        "tesla",
        "q2",
    ]


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When was Splatoon 2 released?", "date"),
        ("What year did the policy change?", "date"),
        ("How many days do I have to return an item?", "number"),
        ("Who acquired Instagram?", "name"),
        ("Where is the head office?", "name"),
        ("0-dimensional biomaterials show inductive properties.", None),
    ],
)
def test_answer_type_from_question_wording(question: str, kind: str | None) -> None:
    # Given / When / Then
    assert answer_type(question) == kind


def test_has_answer_type_needs_something_the_question_does_not_name() -> None:
    # Given the question's own terms
    question_terms = frozenset(content_terms("Who acquired Instagram in 2012?"))
    # When / Then: a new name counts, the question's own name or year does not
    assert has_answer_type("In 2012 it was bought by Facebook.", "name", question_terms)
    assert not has_answer_type("People loved Instagram in 2012.", "name", question_terms)
    assert has_answer_type("It launched on Oct 6, 2010.", "date", question_terms)
    assert not has_answer_type("The deal closed in 2012.", "date", question_terms)
    assert has_answer_type("It cost $1 billion.", "number", question_terms)
    assert not has_answer_type("Anything at all.", None, question_terms)
