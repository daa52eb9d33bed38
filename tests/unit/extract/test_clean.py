"""Cleaning: one normal form for every format; idempotent and total (never raises)."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from docket.extract.clean import clean_text, clean_title, strip_repeated_lines


def test_nfkc_folds_ligatures_and_full_width_forms():
    # Given text with a ligature, full-width letters and a non-breaking space
    # When it is cleaned
    # Then compatibility forms become their plain equivalents
    assert clean_text("\ufb01le \uff21\uff22\uff23\u00a0ok") == "file ABC ok"


def test_control_and_zero_width_characters_are_removed():
    # Given text with a bell, a zero-width space, a BOM, a soft hyphen and bidi marks
    text = "in\u200bvoice\x07 to\ufeff\u00adtal \u202ashown\u202c"

    # When it is cleaned
    # Then only the visible text is left
    assert clean_text(text) == "invoice total shown"


def test_spaces_collapse_and_paragraph_breaks_stay():
    # Given tabs, runs of spaces, CRLF line ends and many blank lines
    text = "  one \t two  \r\nthree\r\n\r\n\r\n\r\n  four\x0cfive  "

    # When it is cleaned
    # Then runs of spaces are single, lines are trimmed, and blank-line runs become one
    assert clean_text(text) == "one two\nthree\n\nfour\nfive"


def test_hyphenated_line_breaks_join_only_when_asked_and_before_lower_case():
    # Given words broken across lines by a hyphen
    text = "exam-\nple and self-\nService and 2019-\n2020"

    # When cleaned with and without joining
    joined = clean_text(text, join_hyphenated_lines=True)
    kept = clean_text(text)

    # Then only the letter-hyphen-lowercase break is joined, and only when asked
    assert joined == "example and self-\nService and 2019-\n2020"
    assert kept == text


def test_clean_title_is_one_line_or_none():
    # Given a multi-line title, and one with nothing visible
    # When they are cleaned
    # Then the first becomes one line and the second is None
    assert clean_title("  Annual\n  Report\t2024 ") == "Annual Report 2024"
    assert clean_title("\u200b \n") is None


def test_repeated_edge_lines_are_stripped_but_unique_lines_stay():
    # Given pages that share a header and a numbered footer but differ in body
    pages = [f"Quarterly Review\nBody {chr(65 + n)}\n{n + 1}" for n in range(5)]
    pages[2] = "Quarterly Review\nBody C\nCompany Confidential\n3"

    # When repeated lines are stripped
    result = strip_repeated_lines(pages)

    # Then header and page numbers are gone; body lines (even at an edge) stay
    assert result == ["Body A", "Body B", "Body C\nCompany Confidential", "Body D", "Body E"]


def test_repeated_lines_need_enough_pages():
    # Given only two pages with the same header
    pages = ["Header\nOne", "Header\nTwo"]

    # When repeated lines are stripped
    # Then nothing is removed: two pages are too few to call anything a running head
    assert strip_repeated_lines(pages) == pages


_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\ufeff\u00ad]")
_texts = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # every code point, surrogates too
    max_size=300,
) | st.text(alphabet="ab -\n\t\r\u00ad\u200b\ufb01\u00b4\u0301e\u2028 ", max_size=200)


@settings(max_examples=400)
@given(_texts, st.booleans())
def test_cleaning_is_idempotent(text, join):
    # Given any text, cleaned once
    once = clean_text(text, join_hyphenated_lines=join)

    # When it is cleaned again
    twice = clean_text(once, join_hyphenated_lines=join)

    # Then nothing changes
    assert twice == once


@settings(max_examples=400)
@given(_texts)
def test_cleaned_text_is_in_normal_form(text):
    # Given any text (it never raises)
    cleaned = clean_text(text, join_hyphenated_lines=True)

    # Then the result is NFKC, has no invisible characters, no double spaces, no trailing
    # spaces on lines, no more than one blank line in a row, and encodes as UTF-8
    assert unicodedata.is_normalized("NFKC", cleaned)
    assert not _INVISIBLE.search(cleaned)
    assert "  " not in cleaned
    assert "\n\n\n" not in cleaned
    assert all(line == line.strip() for line in cleaned.split("\n"))
    cleaned.encode("utf-8")


@given(st.lists(st.text(alphabet="ab1\n ", max_size=40), max_size=8))
def test_strip_repeated_lines_keeps_page_count_and_never_adds_text(pages):
    # Given any pages
    result = strip_repeated_lines(pages)

    # Then there are as many pages, and every kept line was on its page before
    assert len(result) == len(pages)
    for before, after in zip(pages, result, strict=True):
        assert {line.strip() for line in after.split("\n")} - {""} <= {
            line.strip() for line in before.split("\n")
        }
