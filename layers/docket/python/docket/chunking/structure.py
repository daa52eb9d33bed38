"""Document text → a tree of split points, strongest first.

The tree's levels are the chunker's preferred cut points: sections (Markdown headings, deepest
last), blocks (paragraphs, fenced code, tables, headings), lines (list items, table rows, code
lines, lines that end a sentence), sentences. Its leaves are sentences, table rows, code lines and
heading lines; each leaf keeps its exact offsets in the document text (for page numbers) and the
separator that goes in front of it when it follows another leaf in a chunk, so a chunk's text is
its leaves joined: whitespace is normalised without ever touching a visible character.
"""

from __future__ import annotations

import bisect
import re
import sys
from dataclasses import dataclass, field
from enum import Enum

from docket.chunking.sentences import sentence_spans


class Kind(Enum):
    HEADING = "heading"
    PROSE = "prose"
    CODE = "code"
    ROW = "row"


PARAGRAPH_SEP = "\n\n"
LINE_SEP = "\n"
WORD_SEP = " "


@dataclass(slots=True, eq=False)
class Leaf:
    text: str
    start: int  # offset of the first visible character in the document text
    end: int  # offset just past the last visible character
    sep: str  # what joins this leaf to the previous one in a chunk
    kind: Kind
    path: tuple[str, ...]  # heading titles, outermost first
    tokens: int = 0


@dataclass(slots=True, eq=False)
class Node:
    children: list[Node | Leaf]
    keep_whole: bool = False  # code and tables: never split when they fit in one chunk
    tokens: int = 0


Item = Node | Leaf


def iter_leaves(item: Item) -> list[Leaf]:
    if isinstance(item, Leaf):
        return [item]
    out: list[Leaf] = []
    stack: list[Item] = [item]
    while stack:
        current = stack.pop()
        if isinstance(current, Leaf):
            out.append(current)
        else:
            stack.extend(reversed(current.children))
    return out


# --- blocks --------------------------------------------------------------------------------

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•▪◦‣]|\d{1,3}[.)]|\(?[A-Za-z0-9]{1,3}\))\s+\S")
_ENDS_LINE = re.compile("[.!?:;\u2026\u3002\uff01\uff1f][\"')\\]\u00bb\u2019\u201d]*$")
_SHORT_LINE = 40  # a shorter line followed by another is a deliberate break, not a wrap


@dataclass(slots=True, eq=False)
class _Block:
    kind: str  # "heading" | "code" | "table" | "para"
    lines: list[tuple[int, int]]  # (start, end) of each raw line, without its line break
    level: int = 0
    title: str = ""
    path: tuple[str, ...] = field(default_factory=tuple)


def _lines(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    offset = 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
        spans.append((offset, offset + len(content)))
        offset += len(raw)
    return spans


def _is_row(line: str) -> bool:
    return "|" in line


def _fences(text: str, lines: list[tuple[int, int]]) -> dict[int, int]:
    """Fenced code blocks as {opening line index: closing line index}.

    An opening fence with no closing fence after it is ordinary text: in extracted documents a
    stray ``` is far likelier than code running to the end, which would swallow every later
    heading (and with them, the independence of the sections).
    """
    closers: dict[str, list[tuple[int, int]]] = {"`": [], "~": []}  # char → [(index, width)]
    for index, (start, end) in enumerate(lines):
        bare = text[start:end].strip()
        if len(bare) >= 3 and bare[0] in closers and bare == bare[0] * len(bare):
            closers[bare[0]].append((index, len(bare)))
    spans: dict[int, int] = {}
    index = 0
    while index < len(lines):
        start, end = lines[index]
        opening = _FENCE.match(text[start:end])
        if opening:
            marker = opening.group(1)
            candidates = closers[marker[0]]
            at = bisect.bisect_right(candidates, (index, sys.maxsize))
            close = next((i for i, width in candidates[at:] if width >= len(marker)), None)
            if close is not None:
                spans[index] = close
                index = close
        index += 1
    return spans


def _blocks(text: str) -> list[_Block]:
    """Headings, fenced code, tables (runs of "a | b" lines) and paragraphs, in order."""
    blocks: list[_Block] = []
    plain: list[tuple[int, int]] = []  # the current run of ordinary non-blank lines

    def end_plain() -> None:
        if plain:
            blocks.extend(_split_tables(text, plain))
            plain.clear()

    lines = _lines(text)
    fences = _fences(text, lines)
    index = 0
    while index < len(lines):
        start, end = lines[index]
        line = text[start:end]
        if index in fences:
            end_plain()
            close = fences[index]
            blocks.append(_Block("code", lines[index : close + 1]))
            index = close + 1
            continue
        index += 1
        if not line.strip():
            end_plain()
            continue
        heading = _HEADING.match(line)
        if heading and heading.group(2).strip():
            end_plain()
            title = " ".join(heading.group(2).split())
            blocks.append(_Block("heading", [(start, end)], len(heading.group(1)), title))
            continue
        plain.append((start, end))
    end_plain()
    return blocks


def _split_tables(text: str, lines: list[tuple[int, int]]) -> list[_Block]:
    """A run of two or more "|" lines, or one line with two or more "|", is a table."""
    out: list[_Block] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _is_row(text[lines[j][0] : lines[j][1]]):
            j += 1
        run = lines[i:j]
        if len(run) >= 2 or (run and text[run[0][0] : run[0][1]].count("|") >= 2):
            out.append(_Block("table", run))
            i = j
            continue
        j = max(j, i + 1)  # a lone "a|b" line stays prose
        if out and out[-1].kind == "para":
            out[-1].lines.extend(lines[i:j])
        else:
            out.append(_Block("para", lines[i:j]))
        i = j
    return out


def _assign_paths(blocks: list[_Block]) -> None:
    stack: list[tuple[int, str]] = []
    for block in blocks:
        if block.kind == "heading":
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.title))
        block.path = tuple(title for _, title in stack)


# --- leaves --------------------------------------------------------------------------------


def _visible(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _normalised(text: str, start: int, end: int) -> str:
    return " ".join(text[start:end].split())


def _line_units(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Group a paragraph's lines into units: a list item starts one (its indented lines continue
    it); so does a line after one that ends a sentence or is short; other lines are wraps."""
    units: list[tuple[int, int]] = []
    previous = ""
    in_item = False
    for start, end in lines:
        line = text[start:end]
        if _LIST_ITEM.match(line):
            units.append((start, end))
            in_item = True
        elif units and in_item and line[:1].isspace():
            units[-1] = (units[-1][0], end)
        elif (
            not units or _ENDS_LINE.search(previous.rstrip()) or len(previous.strip()) < _SHORT_LINE
        ):
            units.append((start, end))
            in_item = False
        else:
            units[-1] = (units[-1][0], end)
        previous = line
    return units


def _paragraph(text: str, block: _Block) -> Item:
    units: list[Item] = []
    for u_index, (start, end) in enumerate(_line_units(text, block.lines)):
        leaves: list[Item] = []
        for s_index, (a, b) in enumerate(sentence_spans(text, start, end)):
            sep = WORD_SEP if s_index else (LINE_SEP if u_index else PARAGRAPH_SEP)
            leaves.append(Leaf(_normalised(text, a, b), a, b, sep, Kind.PROSE, block.path))
        if leaves:
            units.append(leaves[0] if len(leaves) == 1 else Node(leaves))
    return units[0] if len(units) == 1 else Node(units)


def _code(text: str, block: _Block) -> Item:
    leaves: list[Item] = []
    blank = 0
    for start, end in block.lines:
        line = text[start:end].rstrip()
        if not line.strip():
            blank += 1
            continue
        a, b = _visible(text, start, end)
        sep = PARAGRAPH_SEP if not leaves else LINE_SEP * (1 + blank)
        leaves.append(Leaf(line, a, b, sep, Kind.CODE, block.path))
        blank = 0
    return Node(leaves, keep_whole=True)


def _table(text: str, block: _Block) -> Item:
    rows: list[Item] = []
    for start, end in block.lines:
        a, b = _visible(text, start, end)
        sep = LINE_SEP if rows else PARAGRAPH_SEP
        rows.append(Leaf(_normalised(text, a, b), a, b, sep, Kind.ROW, block.path))
    return Node(rows, keep_whole=True)


def _block_item(text: str, block: _Block) -> Item:
    if block.kind == "heading":
        a, b = _visible(text, *block.lines[0])
        return Leaf(_normalised(text, a, b), a, b, PARAGRAPH_SEP, Kind.HEADING, block.path)
    if block.kind == "code":
        return _code(text, block)
    if block.kind == "table":
        return _table(text, block)
    return _paragraph(text, block)


# --- sections ------------------------------------------------------------------------------


def _split_at_level(blocks: list[_Block], level: int) -> list[list[_Block]]:
    groups: list[list[_Block]] = []
    for block in blocks:
        if not groups or (block.kind == "heading" and block.level == level):
            groups.append([])
        groups[-1].append(block)
    return groups


def _section(text: str, blocks: list[_Block]) -> Item:
    """A section's own heading (if any) and its content; subsections become child nodes."""
    body = blocks[1:] if blocks[0].kind == "heading" else blocks
    levels = [b.level for b in body if b.kind == "heading"]
    if not levels:
        items = [_block_item(text, b) for b in blocks]
    else:
        head = blocks[: len(blocks) - len(body)]
        groups = _split_at_level(body, min(levels))
        if head:
            if groups[0][0].kind == "heading" and groups[0][0].level == min(levels):
                groups.insert(0, head)
            else:
                groups[0] = head + groups[0]
        items = [_section(text, g) if len(g) > 1 else _block_item(text, g[0]) for g in groups]
    return items[0] if len(items) == 1 else Node(items)


def parse_sections(text: str) -> list[Item]:
    """The document's top-level sections (at its shallowest heading level), chunked independently.

    Text before the first such heading is a section of its own.
    """
    blocks = _blocks(text)
    if not blocks:
        return []
    _assign_paths(blocks)
    levels = [b.level for b in blocks if b.kind == "heading"]
    groups = _split_at_level(blocks, min(levels)) if levels else [blocks]
    return [_section(text, group) for group in groups]
