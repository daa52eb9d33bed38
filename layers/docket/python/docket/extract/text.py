"""Plain text, Markdown, reStructuredText and Org: decoded safely, headings made "# " lines.

Markdown keeps its own syntax; reStructuredText underlined titles and Org "*" headlines are
rewritten as "# " lines so the chunker sees one heading convention for every format.
"""

from __future__ import annotations

import re

from docket.extract.base import RawDocument
from docket.extract.encoding import decode_text

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.M)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M | re.I)
_RST_ADORNMENT = re.compile(r"""^([=\-~^"'`#*+:._])\1{2,}[ \t]*$""")
_SETEXT = re.compile(r"^(=+|-+)[ \t]*$")
_ORG_HEADLINE = re.compile(r"^(\*+)[ \t]+(.*)$")
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(.+?)[ \t]*$", re.M | re.I)


def _markdown(text: str) -> tuple[str, str | None]:
    title = None
    front = _FRONT_MATTER.match(text)
    if front:
        found = _FRONT_TITLE.search(front.group(1))
        title = found.group(1).strip("\"'") if found else None
        text = text[front.end() :]
    lines = text.split("\n")
    out: list[str] = []
    fenced = False
    for line in lines:
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        previous = out[-1] if out else ""
        underline = _SETEXT.match(line)
        if (
            not fenced
            and underline
            and previous.strip()
            and not previous.lstrip().startswith(("#", "-", "*", "+", ">", "|"))
        ):
            out[-1] = ("# " if line.lstrip()[0] == "=" else "## ") + previous.strip()
            continue
        out.append(line)
    text = "\n".join(out)
    if title is None:
        headings = _ATX.findall(text)
        top = [heading for hashes, heading in headings if len(hashes) == 1]
        title = (top or [heading for _, heading in headings] or [None])[0]
    return text, title


def _rst(text: str) -> tuple[str, str | None]:
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []
    out: list[str] = []
    title = None
    i = 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        after = lines[i + 2] if i + 2 < len(lines) else ""
        heading: str | None = None
        style: tuple[str, bool] | None = None
        over = _RST_ADORNMENT.match(line)
        if over and nxt.strip() and _RST_ADORNMENT.match(after) and after.strip() == line.strip():
            heading, style, step = nxt.strip(), (line.strip()[0], True), 3
        else:
            under = _RST_ADORNMENT.match(nxt)
            if (
                under
                and line.strip()
                and not _RST_ADORNMENT.match(line)
                and not line.startswith((" ", "\t"))
                and len(nxt.rstrip()) >= len(line.rstrip()) - 2
            ):
                heading, style, step = line.strip(), (nxt.strip()[0], False), 2
        if heading is not None and style is not None:
            if style not in styles:
                styles.append(style)
            level = min(styles.index(style) + 1, 6)
            title = title or heading
            out.append("#" * level + " " + heading)
            i += step
            continue
        out.append(line)
        i += 1
    return "\n".join(out), title


def _org(text: str) -> tuple[str, str | None]:
    found = _ORG_TITLE.search(text)
    out = []
    for line in text.split("\n"):
        headline = _ORG_HEADLINE.match(line)
        if headline:
            out.append("#" * min(len(headline.group(1)), 6) + " " + headline.group(2))
        else:
            out.append(line)
    return "\n".join(out), found.group(1) if found else None


_STRUCTURE = {"markdown": _markdown, "rst": _rst, "org": _org}


def extract_text_format(
    fmt: str, data: bytes, *, filename: str, charset: str | None
) -> RawDocument:
    text, encoding = decode_text(data, declared=charset, what=_name(filename))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    title = None
    structure = _STRUCTURE.get(fmt)
    if structure:
        text, title = structure(text)
    return RawDocument.single(text, title=title, metadata={"encoding": encoding})


def _name(filename: str) -> str:
    return repr(filename.replace("\\", "/").rsplit("/", 1)[-1] or "file")
