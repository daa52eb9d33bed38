"""Table rows as sentences of their own, each read with the column headers above it.

The extractors write a table as lines of cells joined by ``" | "`` (a PDF's statement:
``"2019 | 2020 | 2021"`` then ``"Revenue | $13,000 | $11,139 | $17,455"``). A table has no
sentence ends, so the sentence splitter leaves it as one run of several rows, and a question
("What was Uber's revenue in 2021?") then matches the run's words spread over unrelated rows. Here
each row is its own span; it carries the header row it sits under, because the row states its
values *for those columns*: the year a question asks for is in the header, not in the row.

A header row has cells and no values but years ("2021 | 2020 | 2019", "Mobility | Delivery");
a row has at least one value cell (an amount, a percentage, a dash). A header holds for the rows
below it until the next header or a prose sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from docket.answer.lexical import Span, stem, trimmed

CELL_SEP = " | "

# An amount, a count or a percentage as statements print them: "$13,000", "(8,506)", "$(496)",
# "57%", "1.2", "-", "—" (nil).
_VALUE_RE = re.compile(
    r"^[(\-\u2212]?[$€£]?[(\-\u2212]?\d[\d,]*(?:\.\d+)?\)?%?\)?$|^[\-\u2013\u2014]$"
)
_YEAR_RE = re.compile(r"^(?:19|20)\d\d$")
_PROSE_END_RE = re.compile(r"[.!?…][\"'\u201d\u2019)\]]*$")
_LINE_RE = re.compile(r"[^\n]+")
_CAPTION_CHARS = 120
_WORD_RE = re.compile(r"[^\W\d_]{2,}")
_LABEL_FILLER = frozenset(
    ["total", "to", "of", "and", "the", "a", "an", "for", "from", "in", "on", "by"]
)


@dataclass(frozen=True, slots=True)
class RowSpan(Span):
    """A table row as ``text[start:end]``, with the header row it sits under ("" if none)."""

    header: str = ""
    # The table's caption line above the header ("Year Ended December 31,"), "" if none.
    caption: str = ""

    @staticmethod
    def label_terms(row: str) -> frozenset[str]:
        """The stemmed words of the row's label, stop words kept but for a few function words
        and "total": "All other revenue" keeps "all" and "other", so that it is not mistaken for
        "Revenue" or "Total revenue"."""
        label = _cells(row)[0]
        if _is_value(label):
            return frozenset()
        words = (w.lower() for w in _WORD_RE.findall(label))
        return frozenset(stem(w) for w in words if w not in _LABEL_FILLER)

    def labelled(self, row: str) -> str:
        """The row with each value named by its column: "Revenue (2019: $13,000; 2020: ...)".
        The row as printed (runs of spaces folded) when its values and the header's columns do
        not line up one to one."""
        cells = _cells(row)
        columns = _cells(self.header) if self.header else []
        label, values = ("", cells) if _is_value(cells[0]) else (cells[0], cells[1:])
        if not columns or len(columns) != len(values):
            return " ".join(row.split())
        body = "; ".join(
            f"{column}: {value}" for column, value in zip(columns, values, strict=True)
        )
        return f"{label} ({body})" if label else body


def _cells(line: str) -> list[str]:
    return [" ".join(cell.split()) for cell in line.split(CELL_SEP)]


def _is_value(cell: str) -> bool:
    return bool(_VALUE_RE.match(cell.replace(" ", "")))


def is_header(line: str) -> bool:
    """Two or more cells, none of them a value other than a year."""
    cells = _cells(line)
    return len(cells) >= 2 and all(
        cell and (not _is_value(cell) or _YEAR_RE.match(cell)) for cell in cells
    )


def is_row(line: str) -> bool:
    """Two or more cells, one of them a value (that is not a year)."""
    cells = _cells(line)
    return len(cells) >= 2 and any(_is_value(c) and not _YEAR_RE.match(c) for c in cells)


def table_rows(text: str, spans: Iterable[Span]) -> list[Span]:
    """``spans`` (sentences of ``text``, in order) with every run that holds table lines cut into
    its lines: each row a ``RowSpan`` under the header above it; a header line is dropped (it
    states nothing); other lines of the run stay together as one span."""
    out: list[Span] = []
    header = caption = plain = ""  # plain: the last line above that is not a table line
    for span in spans:
        piece = text[span.start : span.end]
        if CELL_SEP not in piece:
            if _PROSE_END_RE.search(piece):
                header = caption = plain = ""
            else:
                plain = piece.rsplit("\n", 1)[-1]
            out.append(span)
            continue
        run: tuple[int, int] | None = None  # consecutive lines that are not table lines
        for match in _LINE_RE.finditer(piece):
            line = match.group()
            start, end = span.start + match.start(), span.start + match.end()
            if is_header(line):
                header, caption = line, plain if len(plain) <= _CAPTION_CHARS else ""
            elif is_row(line):
                row = trimmed(text, start, end)
                if row:
                    out.append(RowSpan(row.start, row.end, header, caption))
            else:
                run = (run[0] if run else start, end)
                plain = line
                continue
            plain = ""
            if run:
                out.extend(filter(None, [trimmed(text, *run)]))
                run = None
        if run:
            out.extend(filter(None, [trimmed(text, *run)]))
    return sorted(out, key=lambda s: s.start)
