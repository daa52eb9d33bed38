"""HTML to structured text with BeautifulSoup + lxml: boilerplate out, headings as "# " lines.

Headings become Markdown-style lines so the chunker can split on structure; paragraphs are
separated by blank lines; list items start with "- "; data-table rows are " | "-joined cells.
Tables that only lay out a page (cells holding paragraphs or other tables) are read as blocks.
"""

from __future__ import annotations

import re
import warnings

from bs4 import BeautifulSoup, CData, NavigableString, Tag
from bs4.element import PreformattedString

from docket.extract.base import RawDocument
from docket.extract.encoding import bom_encoding, decode_text

_DROP = {
    "script", "style", "noscript", "template", "nav", "aside", "form", "iframe", "svg", "canvas",
    "button", "select", "textarea", "input", "object", "embed", "audio", "video", "map", "head",
    "link", "meta", "title", "dialog", "menu",
}  # fmt: skip
_DROP_ROLES = {"navigation", "search", "complementary", "menu", "menubar", "dialog"}
# Page chrome: dropped unless it sits inside the content (an article's own header keeps its title).
_CHROME = {"header", "footer"}
_CHROME_ROLES = {"banner", "contentinfo"}
_CONTENT = {"article", "main", "section"}
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_PARAGRAPH_BLOCKS = {
    "p", "blockquote", "ul", "ol", "dl", "figure", "section", "article", "main", "address",
    "details", "header", "footer", "pre", "table", "hr", "center", "fieldset",
}  # fmt: skip
_LINE_BLOCKS = {
    "div", "dt", "dd", "tr", "td", "th", "caption", "figcaption", "summary", "body", "html",
    "tbody", "thead", "tfoot", "legend", "hgroup", "option", "label",
}  # fmt: skip
_LAYOUT_MARKERS = ["table", "p", "div", "ul", "ol", "blockquote", "pre", "br", *_HEADINGS]
_WHITESPACE = re.compile(r"\s+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


class _Writer:
    """Collects text and line breaks; repeated breaks merge so blocks never pile up blank lines."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pending = 0

    def text(self, value: str) -> None:
        if not value or (value.isspace() and (self.pending or not self.parts)):
            return  # whitespace between blocks is layout, not text
        if self.pending and self.parts:
            self.parts.append("\n" * self.pending)
        self.pending = 0
        self.parts.append(value)

    def block(self, breaks: int) -> None:
        self.pending = max(self.pending, breaks)

    def line_break(self) -> None:
        self.pending = min(self.pending + 1, 2)

    def result(self) -> str:
        return "".join(self.parts)


def _collapse(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def _dropped(tag: Tag) -> bool:
    attrs = tag.attrs or {}
    role = str(attrs.get("role", "")).lower()
    if tag.name in _DROP or role in _DROP_ROLES:
        return True
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if tag.name in _CHROME or role in _CHROME_ROLES:
        return tag.find_parent(list(_CONTENT)) is None
    return False


def _is_layout_table(table: Tag) -> bool:
    role = str((table.attrs or {}).get("role", "")).lower()
    return role in {"presentation", "none"} or table.find(_LAYOUT_MARKERS) is not None


def _rows(table: Tag) -> list[Tag]:
    rows: list[Tag] = []
    for child in table.children:
        if isinstance(child, Tag):
            if child.name == "tr":
                rows.append(child)
            elif child.name in {"thead", "tbody", "tfoot"}:
                rows += [row for row in child.children if isinstance(row, Tag) and row.name == "tr"]
    return rows


def _data_table(table: Tag, out: _Writer) -> None:
    out.block(2)
    caption = table.find("caption")
    if caption:
        out.text(_collapse(caption.get_text(" ")))
        out.block(1)
    for row in _rows(table):
        cells = [
            _collapse(cell.get_text(" ")) for cell in row.find_all(["td", "th"], recursive=False)
        ]
        line = " | ".join(cell for cell in cells if cell)
        if line:
            out.text(line)
            out.block(1)
    out.block(2)


def _walk(node: Tag, out: _Writer, preformatted: bool = False) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if isinstance(child, PreformattedString) and not isinstance(child, CData):
                continue  # comments, doctypes, processing instructions
            text = str(child)
            out.text(text if preformatted else _WHITESPACE.sub(" ", text))
            continue
        if not isinstance(child, Tag) or _dropped(child):
            continue
        name = child.name
        if name in _HEADINGS:
            heading = _collapse(child.get_text(" "))
            if heading:
                out.block(2)
                out.text("#" * _HEADINGS[name] + " " + heading)
                out.block(2)
        elif name == "br":
            out.line_break()
        elif name == "li":
            out.block(1)
            out.text("- ")
            _walk(child, out, preformatted)
            out.block(1)
        elif name == "table" and not _is_layout_table(child):
            _data_table(child, out)
        elif name in _PARAGRAPH_BLOCKS:
            out.block(2)
            _walk(child, out, preformatted or name == "pre")
            out.block(2)
        elif name in _LINE_BLOCKS:
            out.block(1)
            _walk(child, out, preformatted)
            out.block(1)
        else:
            _walk(child, out, preformatted)


def _decode_html(data: bytes, charset: str | None) -> tuple[str, str]:
    """BOM, then the content type's charset, then the page's own <meta charset>, then guessing."""
    declared = charset
    if not bom_encoding(data) and not declared:
        match = _META_CHARSET.search(data[:4096])
        declared = match.group(1).decode("ascii") if match else None
    return decode_text(data, declared=declared, what="HTML file")


def parse_html(markup: str) -> BeautifulSoup:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bs4 warns about XHTML parsed as HTML, URL-like input...
        return BeautifulSoup(markup, "lxml")


def html_title(soup: BeautifulSoup) -> str | None:
    if soup.title and soup.title.get_text(strip=True):
        return _collapse(soup.title.get_text(" "))
    h1 = soup.find("h1")
    return _collapse(h1.get_text(" ")) if h1 else None


def html_to_text(soup: BeautifulSoup) -> str:
    out = _Writer()
    root = soup.body or soup
    _walk(root, out)
    return out.result()


def extract_html(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    markup, encoding = _decode_html(data, charset)
    soup = parse_html(markup)
    return RawDocument.single(
        html_to_text(soup), title=html_title(soup), metadata={"encoding": encoding}
    )
