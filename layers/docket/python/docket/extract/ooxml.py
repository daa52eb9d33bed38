"""PPTX and XLSX read straight from their ZIP + XML parts (no extra dependency).

A slide is a page (its number is the slide number); a worksheet is a page too, rendered
like CSV rows so column names stay next to their values.
"""

from __future__ import annotations

import re

from lxml import etree

from docket.extract.archive import Package, resolve
from docket.extract.base import RawDocument, RawPage
from docket.extract.tabular import render_rows

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_TITLE_PLACEHOLDERS = {"title", "ctrTitle"}
_SKIPPED_PLACEHOLDERS = {"sldNum", "dt", "ftr", "hdr", "sldImg"}
_CELL_REF = re.compile(r"^([A-Z]+)")


def _relationships(package: Package, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type suffix, member name) for ``part``."""
    folder, name = part.rsplit("/", 1) if "/" in part else ("", part)
    rels_part = f"{folder}/_rels/{name}.rels" if folder else f"_rels/{name}.rels"
    if rels_part not in package:
        return {}
    result = {}
    for rel in package.xml(rels_part).iter(f"{_REL}Relationship"):
        if rel.get("TargetMode") == "External":
            continue
        kind = (rel.get("Type") or "").rsplit("/", 1)[-1]
        result[rel.get("Id", "")] = (kind, resolve(part, rel.get("Target", "")))
    return result


def _core_title(package: Package) -> str | None:
    if "docProps/core.xml" not in package:
        return None
    title = package.xml("docProps/core.xml").find(f"{_DC}title")
    return title.text if title is not None and title.text else None


# --- PPTX ---------------------------------------------------------------------------------------


def _paragraph_text(paragraph: etree._Element) -> str:
    parts = []
    for node in paragraph.iter(f"{_A}t", f"{_A}br"):
        parts.append("\n" if node.tag == f"{_A}br" else node.text or "")
    return "".join(parts).strip()


def _placeholder(shape: etree._Element) -> str | None:
    ph = shape.find(f"{_P}nvSpPr/{_P}nvPr/{_P}ph")
    return None if ph is None else ph.get("type", "body")


def _shape_lines(tree: etree._Element, *, notes: bool = False) -> tuple[list[str], str | None]:
    lines: list[str] = []
    title = None
    for node in tree.iter(f"{_P}sp", f"{_A}tbl"):
        if node.tag == f"{_A}tbl":
            for row in node.iter(f"{_A}tr"):
                cells = [
                    " ".join(_paragraph_text(p) for p in cell.iter(f"{_A}p")).strip()
                    for cell in row.iter(f"{_A}tc")
                ]
                line = " | ".join(cell for cell in cells if cell)
                if line:
                    lines.append(line)
            continue
        kind = _placeholder(node)
        if kind in _SKIPPED_PLACEHOLDERS or (notes and kind != "body"):
            continue
        body = node.find(f"{_P}txBody")
        if body is None:
            continue
        texts = [text for p in body.iter(f"{_A}p") if (text := _paragraph_text(p))]
        if kind in _TITLE_PLACEHOLDERS and texts:
            title = title or " ".join(texts)
            lines.append("# " + " ".join(texts))
        else:
            lines += texts
    return lines, title


def _slide_parts(package: Package) -> list[str]:
    presentation = "ppt/presentation.xml"
    rels = _relationships(package, presentation)
    order = [
        rels[rid][1]
        for slide in package.xml(presentation).iter(f"{_P}sldId")
        if (rid := slide.get(f"{_R}id")) in rels
    ]
    if order:
        return order
    numbered = [n for n in package.names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)]
    return sorted(numbered, key=lambda n: int(re.sub(r"\D", "", n.rsplit("/", 1)[-1])))


def extract_pptx(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    package = Package(data, "PPTX")
    pages: list[RawPage] = []
    first_title = None
    slides = _slide_parts(package)
    for number, part in enumerate(slides, start=1):
        if part not in package:
            continue
        lines, title = _shape_lines(package.xml(part))
        first_title = first_title or title
        for kind, target in _relationships(package, part).values():
            if kind == "notesSlide" and target in package:
                notes, _ = _shape_lines(package.xml(target), notes=True)
                if notes:
                    lines += ["", "Notes: " + "\n".join(notes)]
        pages.append(RawPage(number, "\n".join(lines)))
    metadata = {"page_count": str(len(slides)), "page_unit": "slide"}
    return RawDocument(pages=pages, title=_core_title(package) or first_title, metadata=metadata)


# --- XLSX ---------------------------------------------------------------------------------------


def _shared_strings(package: Package) -> list[str]:
    rels = _relationships(package, "xl/workbook.xml")
    part = next((t for k, t in rels.values() if k == "sharedStrings"), "xl/sharedStrings.xml")
    if part not in package:
        return []
    strings = []
    for item in package.xml(part).iter(f"{_S}si"):
        # Rich text runs hold <t> pieces; phonetic guides (<rPh>) are not part of the text.
        strings.append(
            "".join(t.text or "" for t in item.iter(f"{_S}t") if t.getparent().tag != f"{_S}rPh")
        )
    return strings


def _column(ref: str | None, fallback: int) -> int:
    match = _CELL_REF.match(ref or "")
    if not match:
        return fallback
    index = 0
    for letter in match.group(1):
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _cell_value(cell: etree._Element, strings: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter(f"{_S}t"))
    value = cell.find(f"{_S}v")
    raw = value.text if value is not None and value.text else ""
    if kind == "s":
        try:
            return strings[int(raw)]
        except (ValueError, IndexError):
            return ""
    if kind == "b":
        return "TRUE" if raw == "1" else "FALSE"
    if kind == "e":
        return ""
    return raw


def _sheet_rows(sheet: etree._Element, strings: list[str]) -> list[list[str]]:
    rows = []
    for row in sheet.iter(f"{_S}row"):
        values: dict[int, str] = {}
        for position, cell in enumerate(row.iter(f"{_S}c")):
            values[_column(cell.get("r"), position)] = _cell_value(cell, strings)
        if values:
            width = max(values) + 1
            rows.append([values.get(index, "") for index in range(width)])
    return rows


def extract_xlsx(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    package = Package(data, "XLSX")
    workbook = "xl/workbook.xml"
    rels = _relationships(package, workbook)
    strings = _shared_strings(package)
    sheets = [
        (sheet.get("name") or f"Sheet {index}", rels.get(sheet.get(f"{_R}id") or "", ("", ""))[1])
        for index, sheet in enumerate(package.xml(workbook).iter(f"{_S}sheet"), start=1)
    ]
    pages = []
    for number, (name, part) in enumerate(sheets, start=1):
        if part not in package:
            continue
        table = render_rows(_sheet_rows(package.xml(part), strings))
        if table:
            pages.append(RawPage(number, f"# {name}\n\n{table}"))
    metadata = {
        "page_count": str(len(sheets)),
        "page_unit": "sheet",
        "sheets": ", ".join(name for name, _ in sheets),
    }
    return RawDocument(pages=pages, title=_core_title(package), metadata=metadata)
