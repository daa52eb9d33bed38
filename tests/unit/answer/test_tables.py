"""Table rows as sentences: each row its own span, read under its header and caption."""

from __future__ import annotations

import pytest

from docket.answer import ExtractiveAnswerer
from docket.answer.lexical import split_sentences
from docket.answer.tables import RowSpan, is_header, is_row, table_rows
from docket.answer.verify import CitationVerifier
from tests.unit.answer.conftest import MakeHit

STATEMENT = (
    "The accompanying notes are an integral part of these statements.\n"
    "CONSOLIDATED STATEMENTS OF OPERATIONS\n"
    "(In millions) Year Ended December 31,\n\n"
    "2019 | 2020 | 2021\n"
    "Revenue | $13,000 | $11,139 | $17,455\n\n"
    "Costs and expenses\n"
    "Cost of revenue | 6,061 | 5,154 | 9,351\n"
    "All other revenue | 161 | 135 | 8\n"
    "Net loss attributable to the company | $(8,506) | $(6,768) | $(496)\n\n"
    "Revenue grew as trips recovered. Costs rose with it."
)


def _spans(text: str) -> list[tuple[str, str]]:
    return [
        (type(span).__name__, text[span.start : span.end])
        for span in table_rows(text, split_sentences(text))
    ]


def test_each_row_is_a_span_of_its_own_and_headers_state_nothing() -> None:
    # Given a statement: prose, a caption, a header row, rows, a sub-heading, prose
    # When it is split
    spans = _spans(STATEMENT)
    # Then each row is a RowSpan, the header line is dropped, the rest keeps its sentences,
    # and every span is the verbatim text at its offsets, in reading order
    assert spans == [
        ("Span", "The accompanying notes are an integral part of these statements."),
        ("Span", "CONSOLIDATED STATEMENTS OF OPERATIONS\n(In millions) Year Ended December 31,"),
        ("RowSpan", "Revenue | $13,000 | $11,139 | $17,455"),
        ("Span", "Costs and expenses"),
        ("RowSpan", "Cost of revenue | 6,061 | 5,154 | 9,351"),
        ("RowSpan", "All other revenue | 161 | 135 | 8"),
        ("RowSpan", "Net loss attributable to the company | $(8,506) | $(6,768) | $(496)"),
        ("Span", "Revenue grew as trips recovered."),
        ("Span", "Costs rose with it."),
    ]


def test_a_row_carries_its_header_and_caption_and_reads_labelled() -> None:
    # Given the statement's revenue row
    rows = [s for s in table_rows(STATEMENT, split_sentences(STATEMENT)) if isinstance(s, RowSpan)]
    revenue = rows[0]
    text = STATEMENT[revenue.start : revenue.end]
    # Then it sits under the year header and the caption line above it
    assert revenue.header == "2019 | 2020 | 2021"
    assert revenue.caption == "(In millions) Year Ended December 31,"
    # and reads with each value named by its column
    assert revenue.labelled(text) == "Revenue (2019: $13,000; 2020: $11,139; 2021: $17,455)"
    # A row whose values do not line up with the columns reads as printed
    assert RowSpan(0, 0, "2020 | 2021").labelled("Revenue | 1 | 2 | 3") == "Revenue | 1 | 2 | 3"
    # "Total" and function words are not part of a label; "all other" is
    assert RowSpan.label_terms("Total revenue | 1") == RowSpan.label_terms("Revenue | 1")
    assert RowSpan.label_terms("All other revenue | 1") > RowSpan.label_terms("Revenue | 1")


def test_prose_ends_a_header() -> None:
    # Given a header, prose, then a row of another table without a header of its own
    text = "2020 | 2021\nRevenue | 5 | 6\n\nThe table above is audited.\n\nUnits | 7 | 8"
    rows = [s for s in table_rows(text, split_sentences(text)) if isinstance(s, RowSpan)]
    # Then the second row is not read under the first table's header
    assert [row.header for row in rows] == ["2020 | 2021", ""]


@pytest.mark.parametrize(
    ("line", "header", "row"),
    [
        ("2019 | 2020 | 2021", True, False),
        ("Mobility | Delivery | Freight", True, False),
        ("Revenue | $13,000 | $11,139", False, True),
        ("Net loss | $(1,009,359) | —", False, True),
        ("Margin | 57% | (3)%", False, True),
        ("a single cell", False, False),
    ],
)
def test_header_and_row_lines(line: str, header: bool, row: bool) -> None:
    assert (is_header(line), is_row(line)) == (header, row)


def test_the_answer_quotes_the_row_asked_for_with_its_year(hit: MakeHit) -> None:
    # Given a statement chunk of a filing whose company name is only in its source
    hits = [hit(STATEMENT, source="uber_2021.pdf", title="uber_2021.pdf", rank=1)]
    # When asked for the revenue of a year
    answer = ExtractiveAnswerer().answer("What was Uber's revenue in 2021?", hits)
    # Then the first quote is the revenue row (not "All other revenue", not the net loss row),
    # labelled with its years, and its citation quotes the row verbatim
    assert answer.found
    assert answer.text.startswith("Revenue (2019: $13,000; 2020: $11,139; 2021: $17,455) [1]")
    assert answer.citations[0].quote.startswith("Revenue | $13,000 | $11,139 | $17,455")
    # and the labelled row is still supported by the chunk it cites, as an LLM answer must be
    assert CitationVerifier().verify(answer.text, [STATEMENT]).all_supported
