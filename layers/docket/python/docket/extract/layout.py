"""Tables (and columns) in a PDF page's layout text, rewritten so a reader and a retriever can
follow them.

pypdf's layout mode places each text run at its column on the page, so a table comes out as
lines whose cells are separated by wide runs of spaces. Read as prose those cells are a jumble
("Revenue $ 11,139 $ 17,455 57 %"); here each table line becomes one row with its cells joined
by `` | `` ("Revenue | $11,139 | $17,455 | 57%"), and the column header lines just above the
rows are kept the same way ("(In millions) | 2020 | 2021"). Prose lines are left alone: the
cleaner collapses their justification spaces.

A two-column page (``split_columns``) comes out of layout mode with both columns side by side on
each line; it is read column by column instead, before tables are looked for.

Pure text in, text out, so it is tested without PDFs.
"""

from __future__ import annotations

import re

CELL_SEPARATOR = " | "
# Cells are runs of text separated by three or more spaces (justified prose uses one or two).
# Only the space counts as a separator: a no-break space (U+00A0) joins words, as it should.
_CELL = re.compile(r"[^ ]+(?: {1,2}[^ ]+)*")
# Minus sign, en dash and em dash: tables print negatives and nil values with them.
_DASH = "\\-\u2212\u2013\u2014"
_VALUE = re.compile(
    rf"^(?:[(\[]?[{_DASH}+]?[$€£¥]?\(?[{_DASH}]?\d[\d,]*(?:\.\d+)?[)\]]?\s?%?\)?[x\u00d7]?"  # 1,234 $(7) 57% (44)%
    rf"|[{_DASH}]+\s?%?"  # a dash for nil
    r"|n/?m|n/?a)$",  # not meaningful, not available
    re.I,
)
_CURRENCY = re.compile(r"^[$€£¥]$")
_PERCENT = re.compile(r"^%$")
# A header line above a table: a few short cells (years, "Year Ended December 31,").
_MAX_HEADER_WORDS = 8
_MAX_VALUE_CELL_WORDS = 6
_HEADER_LINES = 4


def _cells(line: str) -> list[tuple[int, str]]:
    """(column, text) of each cell, with "$" joined to its number and "%" to its number."""
    cells: list[tuple[int, str]] = []
    for match in _CELL.finditer(line):
        start, text = match.start(), match.group(0)
        if cells and _CURRENCY.match(cells[-1][1]):
            cells[-1] = (cells[-1][0], cells[-1][1] + text)
        elif cells and _PERCENT.match(text) and _VALUE.match(cells[-1][1]):
            cells[-1] = (cells[-1][0], cells[-1][1] + "%")
        else:
            cells.append((start, text))
    return [(start, _tidy(text)) for start, text in cells]


def _tidy(cell: str) -> str:
    """One space between words; a value's sign closed up: "$ 1,234" -> "$1,234", "57 %" -> "57%"
    (but "2020 to 2021 % Change" stays as it is)."""
    cell = " ".join(cell.split())
    value = re.sub(r"(?<=[$€£¥]) (?=[-(\d])", "", cell)
    value = re.sub(rf"(?<=[\d){_DASH}]) %", "%", value)
    return value if _VALUE.match(value) else cell


def _is_value(cell: str) -> bool:
    return bool(_VALUE.match(cell))


def _split_values(cells: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A cell of several numbers close together ("88.5 85.2") is one number per column."""
    out: list[tuple[int, str]] = []
    for start, text in cells:
        parts = text.split(" ")
        if len(parts) > 1 and all(_is_value(part) and part not in {"%"} for part in parts):
            offset = start
            for part in parts:
                out.append((offset, part))
                offset += len(part) + 1
        else:
            out.append((start, text))
    return out


def _is_row(cells: list[tuple[int, str]]) -> bool:
    """A label (or nothing) followed by short cells, at least one of them a value.

    Prose spread wide by justification is not a row: its cells are lone lower-case words.
    """
    if len(cells) < 2:
        return False
    rest = [text for _, text in cells[1:]]
    if any(len(text.split()) > _MAX_VALUE_CELL_WORDS for text in rest):
        return False
    words = sum(1 for text in rest if " " not in text and text[:1].islower())
    if words >= 3 and words * 2 >= len(rest):
        return False
    return any(_is_value(text) for text in rest)


def _is_header(cells: list[tuple[int, str]], width: int, columns: int) -> bool:
    """Short cells, no more than the rows below have (plus a label), or a single cell that
    starts right of the page's first 40% ("Year Ended December 31,")."""
    if not cells or any(len(text.split()) > _MAX_HEADER_WORDS for _, text in cells):
        return False
    if len(cells) >= 2:
        return len(cells) <= columns + 1
    return width > 0 and cells[0][0] >= width * 0.4


def tabulate(text: str) -> str:
    """``text`` (pypdf layout mode) with each table line as a `` | ``-separated row."""
    lines = text.split("\n")
    width = max((len(line.rstrip()) for line in lines), default=0)
    parsed = [_split_values(_cells(line)) for line in lines]
    rows = [_is_row(cells) for cells in parsed]
    out = list(lines)
    for i, cells in enumerate(parsed):
        if rows[i]:
            out[i] = CELL_SEPARATOR.join(text for _, text in cells)
    # Column headers: up to a few header-like lines right above the first row of each table.
    for i in range(len(lines)):
        if not rows[i] or (i > 0 and rows[i - 1]):
            continue
        j = i - 1
        while j >= 0 and i - j <= _HEADER_LINES and not rows[j]:
            cells = parsed[j]
            if not cells:  # one blank line may sit between a header and its rows
                if j + 1 < i and not parsed[j + 1]:
                    break
                j -= 1
                continue
            if not _is_header(cells, width, len(parsed[i])):
                break
            out[j] = CELL_SEPARATOR.join(text for _, text in cells)
            j -= 1
    return "\n".join(out)


# --- columns ------------------------------------------------------------------------------------

_GUTTER = 3  # blank characters between two columns, at least
_MIN_COLUMN_LINES = 6
_WORD = re.compile(r"[^\W\d_]{2,}")
_GAP = re.compile(f" {{{_GUTTER},}}")


def _prose(segment: str) -> bool:
    """Three or more words, mostly letters: a column's line, not a table's cells."""
    words = segment.split()
    if len(words) < 3:
        return False
    return len(_WORD.findall(segment)) * 2 >= len(words)


def _gutter(lines: list[str], width: int) -> int | None:
    """The column where a blank band splits most lines into prose on both sides, if any."""
    filled = [line for line in lines if line.strip()]
    best, best_count = None, 0
    for column in range(int(width * 0.3), int(width * 0.7)):
        count = 0
        for line in filled:
            if line[column : column + _GUTTER].strip():
                continue
            if _prose(line[:column]) and _prose(line[column + _GUTTER :]):
                count += 1
        if count > best_count:
            best, best_count = column, count
    if best is None or best_count < max(_MIN_COLUMN_LINES, len(filled) * 0.4):
        return None
    return best


def split_columns(text: str) -> str:
    """A two-column page (layout text) read column by column: the left column's lines, then
    the right's, in each stretch of the page the gutter splits; lines that cross the gutter (a
    title, an abstract, a wide figure) stay where they are, between the stretches.

    A page is two-column only when a blank band near its middle splits many lines into prose
    on both sides, so tables (numbers right of a gap) and one-column pages are left alone.
    """
    lines = text.split("\n")
    filled = [line for line in lines if line.strip()]
    if len(filled) < _MIN_COLUMN_LINES:
        return text
    width = max(len(line) for line in filled)
    # cheap test first: enough lines with a wide gap somewhere in the middle third
    gapped = sum(
        1
        for line in filled
        if any(
            width * 0.3 <= m.start() <= width * 0.7 and m.end() < len(line.rstrip())
            for m in _GAP.finditer(line)
        )
    )
    if gapped < max(_MIN_COLUMN_LINES, len(filled) * 0.4):
        return text
    column = _gutter(lines, width)
    if column is None:
        return text
    out: list[str] = []
    left: list[str] = []
    right: list[str] = []

    def flush() -> None:
        out.extend(left)
        if left and right:
            out.append("")
        indent = min((len(r) - len(r.lstrip(" ")) for r in right if r.strip()), default=0)
        out.extend(r[indent:] for r in right)
        left.clear()
        right.clear()

    for line in lines:
        if line[column : column + _GUTTER].strip():  # crosses the gutter
            flush()
            out.append(line)
            continue
        left.append(line[:column].rstrip())
        right.append(line[column + _GUTTER :])
    flush()
    return "\n".join(out)
