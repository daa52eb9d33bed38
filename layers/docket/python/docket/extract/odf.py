"""OpenDocument text, spreadsheets and presentations (.odt/.ods/.odp) from content.xml."""

from __future__ import annotations

from lxml import etree

from docket.extract.archive import Package
from docket.extract.base import RawDocument

_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_DRAW = "{urn:oasis:names:tc:opendocument:xmlns:drawing:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_SKIP = {f"{_TEXT}tracked-changes", f"{_TEXT}sequence-decls", f"{_OFFICE}annotation"}


def _inline(element: etree._Element) -> str:
    """Text of a paragraph, honouring ODF's encoded spaces, tabs and line breaks."""
    parts = [element.text or ""]
    for child in element:
        tag = child.tag
        if tag == f"{_TEXT}s":
            parts.append(" " * int(child.get(f"{_TEXT}c", "1") or 1))
        elif tag == f"{_TEXT}tab":
            parts.append("\t")
        elif tag == f"{_TEXT}line-break":
            parts.append("\n")
        elif tag not in _SKIP and tag != f"{_TEXT}note":
            parts.append(_inline(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _blocks(element: etree._Element, out: list[str], sections: bool = False) -> None:
    for child in element:
        tag = child.tag
        if tag in _SKIP:
            continue
        if tag == f"{_TEXT}h":
            level = int(child.get(f"{_TEXT}outline-level", "1") or 1)
            text = _inline(child).strip()
            if text:
                out.append("#" * min(max(level, 1), 6) + " " + text)
        elif tag == f"{_TEXT}p":
            text = _inline(child).strip()
            if text:
                out.append(text)
        elif tag == f"{_TEXT}list-item":
            items: list[str] = []
            _blocks(child, items, sections)
            out += ["- " + item for item in items]
        elif tag == f"{_TABLE}table-row":
            cells = [" ".join(_inline(p).strip() for p in cell.iter(f"{_TEXT}p")).strip()
                     for cell in child if cell.tag == f"{_TABLE}table-cell"]  # fmt: skip
            line = " | ".join(cell for cell in cells if cell)
            if line:
                out.append(line)
        elif sections and tag in {f"{_TABLE}table", f"{_DRAW}page"}:
            # A spreadsheet's sheets and a presentation's slides become headed sections.
            name = child.get(f"{_TABLE}name") or child.get(f"{_DRAW}name")
            if name:
                out.append(f"# {name}")
            _blocks(child, out, sections)
        else:
            _blocks(child, out, sections)


def extract_odf(fmt: str, data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    package = Package(data, fmt.upper())
    body = package.xml("content.xml").find(f"{_OFFICE}body")
    blocks: list[str] = []
    if body is not None:
        _blocks(body, blocks, sections=fmt in {"ods", "odp"})
    title = None
    if "meta.xml" in package:
        found = package.xml("meta.xml").find(f".//{_DC}title")
        title = found.text if found is not None else None
    return RawDocument.single("\n\n".join(blocks), title=title)
