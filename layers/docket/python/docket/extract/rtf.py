"""RTF to text with a small tokenizer: control words, groups, hex and Unicode escapes.

Destinations that hold no body text (font and colour tables, stylesheets, pictures, document
info, any ``{\\*\\...}`` group) are skipped. Enough for the RTF that word processors write.
"""

from __future__ import annotations

import codecs
import re

from docket.errors import CorruptDocument
from docket.extract.base import RawDocument

_TOKEN = re.compile(
    r"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?"  # control word with its optional numeric argument
    r"|\\'([0-9a-fA-F]{2})"  # a byte in the document's code page
    r"|\\([^a-zA-Z])"  # control symbol
    r"|([{}])"
    r"|[\r\n]+"  # line breaks in RTF source are not text
    r"|([^\\{}\r\n]+)",
    re.S,
)
_SKIP_DESTINATIONS = {
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
    "headerl", "headerr", "headerf", "footerl", "footerr", "footerf", "listtable",
    "listoverridetable", "revtbl", "rsidtbl", "generator", "xmlnstbl", "themedata",
    "colorschememapping", "latentstyles", "datastore", "fldinst", "filetbl", "pgdsctbl",
    "bkmkstart", "bkmkend", "xmlopen", "mmathPr", "nonshppict", "shppict", "blipuid",
}  # fmt: skip
_SPECIAL = {
    "par": "\n", "line": "\n", "sect": "\n\n", "page": "\n\n", "tab": "\t", "cell": " | ",
    "row": "\n", "emdash": "\u2014", "endash": "\u2013", "bullet": "\u2022", "lquote": "\u2018",
    "rquote": "\u2019", "ldblquote": "\u201c", "rdblquote": "\u201d", "emspace": " ",
    "enspace": " ", "qmspace": " ", "~": "\u00a0", "-": "", "_": "-", "\n": "\n", "\r": "\n",
}  # fmt: skip
_TITLE = re.compile(r"\{\\title\s+((?:[^{}\\]|\\.)*)\}")


def _codec(rtf: str) -> str:
    match = re.search(r"\\ansicpg(\d+)", rtf[:4096])
    name = f"cp{match.group(1)}" if match else "cp1252"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"


def rtf_to_text(rtf: str) -> str:
    codec = _codec(rtf)
    out: list[str] = []
    pending = bytearray()  # \'hh bytes, decoded together so multi-byte code pages work
    stack: list[tuple[bool, int]] = []
    ignorable = False
    uc_skip = 1  # characters to skip after \uN (the fallback for readers without Unicode)
    skip = 0

    def flush() -> None:
        if pending:
            if not ignorable:
                out.append(pending.decode(codec, errors="replace"))
            pending.clear()

    for match in _TOKEN.finditer(rtf):
        word, arg, hexcode, symbol, brace, text = match.groups()
        if hexcode is not None:
            if skip:
                skip -= 1
            else:
                pending.append(int(hexcode, 16))
            continue
        flush()
        if brace == "{":
            skip = 0
            stack.append((ignorable, uc_skip))
        elif brace == "}":
            skip = 0
            if stack:
                ignorable, uc_skip = stack.pop()
        elif symbol is not None:
            skip = 0
            if symbol == "*":
                ignorable = True
            elif not ignorable:
                out.append(_SPECIAL.get(symbol, symbol if symbol in "\\{}" else ""))
        elif word is not None:
            skip = 0
            if word in _SKIP_DESTINATIONS:
                ignorable = True
            elif ignorable:
                continue
            elif word == "uc":
                uc_skip = int(arg or 1)
            elif word == "u":
                code = int(arg or 0)
                out.append(
                    chr(code + 65536 if code < 0 else code) if -32768 <= code < 65536 else ""
                )
                skip = uc_skip
            elif word in _SPECIAL:
                out.append(_SPECIAL[word])
        elif text is not None:
            if skip:
                consumed = min(skip, len(text))
                text = text[consumed:]
                skip -= consumed
            if not ignorable:
                out.append(text)
    flush()
    return "".join(out)


def extract_rtf(data: bytes, *, filename: str, charset: str | None) -> RawDocument:
    # RTF is 7-bit by definition; other bytes are read as Latin-1 rather than rejected.
    rtf = data.decode("latin-1")
    if not rtf.lstrip().startswith("{\\rtf"):
        raise CorruptDocument("RTF file has no {\\rtf header")
    title = None
    found = _TITLE.search(rtf)
    if found:
        title = rtf_to_text("{" + found.group(1) + "}").strip() or None
    return RawDocument.single(rtf_to_text(rtf), title=title)
