"""PDF text in reading order, words whole, and tables as rows under their column headers."""

from __future__ import annotations

import pytest

from docket.extract import extract_document
from docket.extract.layout import split_columns, tabulate

# Helvetica advance widths (1/1000 em) of the letters the split-word test draws.
_WIDTHS = {" ": 278, "N": 722, "a": 556, "b": 556, "e": 556, "i": 222, "l": 222, "o": 556}
_WIDTHS |= {"r": 333, "s": 500, "t": 278, "u": 556}


def _width(text: str, size: float = 10) -> float:
    return sum(_WIDTHS[char] for char in text) * size / 1000


def test_pdf_text_follows_the_page_top_to_bottom(make_placed_pdf):
    # Given a page whose lines are drawn bottom first
    pdf = make_placed_pdf(
        [[(72, 500, "Third line."), (72, 600, "Second line."), (72, 700, "First line.")]]
    )

    # When it is extracted
    document = extract_document(pdf, "order.pdf")

    # Then the text reads from the top of the page down
    lines = [line for line in document.pages[0].text.split("\n") if line]
    assert lines == ["First line.", "Second line.", "Third line."]


def test_pdf_word_drawn_in_two_runs_stays_one_word(make_placed_pdf):
    # Given a word drawn as two runs, the second starting where the first ends
    first = "Net loss attributab"
    pdf = make_placed_pdf([[(72, 700, first), (72 + _width(first), 700, "le to the parent")]])

    # When it is extracted
    document = extract_document(pdf, "split.pdf")

    # Then the word is whole
    assert document.pages[0].text == "Net loss attributable to the parent"


def test_pdf_table_comes_out_as_rows_under_its_headers(make_placed_pdf):
    # Given a paragraph, then a table whose cells are separate runs spread over the page
    runs = [
        (72, 700, "As of December 31, 2021, we had 4,453 employees."),
        (310, 560, "Year Ended December 31,"),
        (72, 540, "(In millions)"),
        (330, 540, "2020"),
        (430, 540, "2021"),
        (72, 525, "Revenue"),
        (300, 525, "$"),
        (330, 525, "11,139"),
        (400, 525, "$"),
        (430, 525, "17,455"),
        (72, 510, "Costs and expenses"),
        (80, 495, "Cost of revenue"),
        (330, 495, "5,154"),
        (430, 495, "9,351"),
        (72, 480, "Net loss"),
        (300, 480, "$"),
        (325, 480, "(6,768)"),
        (400, 480, "$"),
        (430, 480, "(496)"),
    ]

    # When it is extracted
    document = extract_document(make_placed_pdf([runs]), "table.pdf")

    # Then the paragraph comes first, and each table line is a row of cells under its headers
    lines = [line for line in document.pages[0].text.split("\n") if line]
    assert lines == [
        "As of December 31, 2021, we had 4,453 employees.",
        "Year Ended December 31,",
        "(In millions) | 2020 | 2021",
        "Revenue | $11,139 | $17,455",
        "Costs and expenses",
        "Cost of revenue | 5,154 | 9,351",
        "Net loss | $(6,768) | $(496)",
    ]


def test_pdf_page_numbers_stay_physical_with_layout_text(make_placed_pdf):
    # Given three pages, the middle one blank
    pdf = make_placed_pdf([[(72, 700, "One")], [], [(72, 700, "Three")]])

    # When it is extracted
    document = extract_document(pdf, "pages.pdf")

    # Then the pages keep their physical numbers
    assert [(page.number, page.text) for page in document.pages] == [(1, "One"), (3, "Three")]


# --- tabulate: layout text in, rows out ------------------------------------------------------


def test_tabulate_rewrites_a_financial_table_with_its_header_lines():
    # Given layout text of a statement of operations
    text = "\n".join(
        [
            "                                         Year Ended December 31,",
            "                                      2019          2020          2021",
            "Revenue                      $      13,000    $   11,139    $   17,455",
            "Costs and expenses",
            "   Operations and support            2,302         1,819         1,877",
            "Loss from operations               (8,596)       (4,863)       (3,834)",
            "Change                               57   %        (44)%          — %",
        ]
    )

    # When it is tabulated
    lines = tabulate(text).split("\n")

    # Then the header lines and rows have their cells joined in order, "$" and "%" attached
    assert lines[1:] == [
        "2019 | 2020 | 2021",
        "Revenue | $13,000 | $11,139 | $17,455",
        "Costs and expenses",
        "Operations and support | 2,302 | 1,819 | 1,877",
        "Loss from operations | (8,596) | (4,863) | (3,834)",
        "Change | 57% | (44)% | —%",
    ]
    assert lines[0].strip() == "Year Ended December 31,"


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(
            "on  self-identification,  and  employees  who  did  not  disclose  their  gender  in 2021",
            id="justified-prose",
        ),
        pytest.param(
            "surpassing  OpenAI-o1-1217.   On  MATH-500,  it  attains  an  impressive  score  of  97.3%,",
            id="wide-gap-in-prose",
        ),
        pytest.param(
            "12.     Eligibility to Participate. To\xa0the\xa0extent\xa0that\xa0the\xa0Administrator",
            id="no-break-spaces",
        ),
        pytest.param(
            "become    vested    in    full    and,    to    the    extent    applicable    12",
            id="words-spread-wide",
        ),
    ],
)
def test_tabulate_leaves_prose_alone(line):
    # Given a prose line with wide or odd spacing
    # When it is tabulated
    # Then it is unchanged
    assert tabulate(line) == line


def test_tabulate_splits_numbers_set_close_together():
    # Given a benchmark table whose number columns sit two spaces apart
    text = "MMLU (Pass@1)        88.3        87.2     88.5  85.2    91.8    90.8"

    # When it is tabulated
    # Then each number is a cell of its own
    assert tabulate(text) == "MMLU (Pass@1) | 88.3 | 87.2 | 88.5 | 85.2 | 91.8 | 90.8"


def test_pdf_rotated_text_is_kept(make_placed_pdf):
    # Given a page whose text runs up the page (a landscape table printed on a portrait page)
    pdf = make_placed_pdf([[(300, 100, "Sideways words")]], rotated=True)

    # When it is extracted
    document = extract_document(pdf, "rotated.pdf")

    # Then the text is there
    assert document.pages[0].text == "Sideways words"


def test_pdf_two_column_page_is_read_column_by_column(make_placed_pdf):
    # Given a page with a title across it and two columns of text side by side below
    runs = [(150, 740, "A Title Across The Whole Page")]
    for i in range(8):
        runs.append((72, 700 - 14 * i, f"Left column line {i} has some words."))
        runs.append((320, 700 - 14 * i, f"Right column line {i} has more words."))

    # When it is extracted
    document = extract_document(make_placed_pdf([runs]), "paper.pdf")

    # Then the title comes first, then the whole left column, then the whole right column
    lines = [line for line in document.pages[0].text.split("\n") if line]
    assert lines == [
        "A Title Across The Whole Page",
        *(f"Left column line {i} has some words." for i in range(8)),
        *(f"Right column line {i} has more words." for i in range(8)),
    ]


def test_split_columns_leaves_a_table_of_labels_and_numbers_alone():
    # Given layout text of a table: long labels on the left, numbers on the right
    text = "\n".join(
        f"Net loss attributable to the parent company line {i}        1,{i}00        2,{i}00"
        for i in range(10)
    )

    # When columns are looked for
    # Then the text is unchanged: numbers are no column of prose
    assert split_columns(text) == text
