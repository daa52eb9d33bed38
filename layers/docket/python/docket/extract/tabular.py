"""CSV/TSV (and spreadsheet sheets) as one line per row that keeps column names with values.

"Product: Laptop Pro X; Quantity: 2; Total: 1999.98" retrieves far better than a bare
"Laptop Pro X,2,1999.98": the chunk that answers a question carries the column it answers from.
"""

from __future__ import annotations

import csv
import io

from docket.errors import CorruptDocument
from docket.extract.base import RawDocument
from docket.extract.encoding import decode_text

_DELIMITERS = ",;\t|"


def _header(row: list[str]) -> list[str]:
    names: list[str] = []
    for index, cell in enumerate(row, start=1):
        name = " ".join(cell.split()) or f"column {index}"
        names.append(name if name not in names else f"{name} ({index})")
    return names


def render_rows(rows: list[list[str]]) -> str:
    """First non-empty row is the header; every later row becomes "name: value; ..."."""
    rows = [[cell.strip() for cell in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    header = _header(rows[0])
    lines = ["Columns: " + ", ".join(header)]
    for row in rows[1:]:
        pairs = []
        for index, value in enumerate(row):
            if value:
                name = header[index] if index < len(header) else f"column {index + 1}"
                pairs.append(f"{name}: {' '.join(value.split())}")
        lines.append("; ".join(pairs))
    return "\n".join(lines)


def _dialect_delimiter(text: str, default: str) -> str:
    sample = "\n".join(text[:65536].split("\n")[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return default


def extract_table(fmt: str, data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    text, encoding = decode_text(data, declared=charset, what=f"{fmt.upper()} file")
    delimiter = "\t" if fmt == "tsv" else _dialect_delimiter(text, ",")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise CorruptDocument(f"{fmt.upper()} file cannot be parsed: {exc}") from exc
    metadata = {
        "encoding": encoding,
        "delimiter": {"\t": "tab"}.get(delimiter, delimiter),
        "rows": str(max(len([row for row in rows if any(cell.strip() for cell in row)]) - 1, 0)),
    }
    return RawDocument.single(render_rows(rows), metadata=metadata)
