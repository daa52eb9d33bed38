"""DOCX with python-docx: paragraphs and tables in document order, headings as "# " lines."""

from __future__ import annotations

import io
import re

import docx
from docx.document import Document as DocxDocument
from docx.oxml.ns import qn
from docx.table import Table
from docx.text.paragraph import Paragraph

from docket.extract.base import RawDocument

_HEADING = re.compile(r"^heading\s*(\d)$", re.I)


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
        return (style.name or "") if style is not None else ""
    except (KeyError, ValueError, AttributeError):
        return ""


def _is_list(paragraph: Paragraph, style: str) -> bool:
    properties = paragraph._p.pPr
    return "list" in style.lower() or (properties is not None and properties.numPr is not None)


def _table_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[object] = []
        for cell in row.cells:
            if any(cell._tc is element for element in seen):
                continue  # a merged cell repeats once per grid column it spans
            seen.append(cell._tc)
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


def _blocks(document: DocxDocument) -> tuple[list[tuple[str, bool]], str | None]:
    """(text, is_list_item) per block, and the text of the first Title-styled paragraph."""
    blocks: list[tuple[str, bool]] = []
    title = None
    body = document.element.body
    for element in body.iterchildren():
        if element.tag == qn("w:tbl"):
            lines = _table_lines(Table(element, document))
            if lines:
                blocks.append(("\n".join(lines), False))
            continue
        if element.tag == qn("w:p"):
            paragraphs = [element]
        elif element.tag == qn("w:sdt"):  # content controls wrap ordinary paragraphs
            paragraphs = list(element.iter(qn("w:p")))
        else:
            continue
        for p in paragraphs:
            paragraph = Paragraph(p, document)
            text = paragraph.text.strip()
            if not text:
                continue
            style = _style_name(paragraph)
            heading = _HEADING.match(style)
            if style.lower() == "title":
                title = title or text
                blocks.append(("# " + text, False))
            elif heading:
                blocks.append(("#" * min(int(heading.group(1)), 6) + " " + text, False))
            elif _is_list(paragraph, style):
                blocks.append(("- " + text, True))
            else:
                blocks.append((text, False))
    return blocks, title


def extract_docx(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    document = docx.Document(io.BytesIO(data))
    blocks, styled_title = _blocks(document)
    parts: list[str] = []
    previous_list = False
    for text, is_list in blocks:
        if parts:
            parts.append("\n" if is_list and previous_list else "\n\n")
        parts.append(text)
        previous_list = is_list
    properties = document.core_properties
    metadata = {"author": properties.author or "", "created": str(properties.created or "")}
    return RawDocument.single(
        "".join(parts), title=properties.title or styled_title, metadata=metadata
    )
