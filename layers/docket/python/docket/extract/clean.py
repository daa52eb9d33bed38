"""Text cleaning shared by every format, so chunks and citations see the same normal form.

``clean_text`` is idempotent (cleaning clean text changes nothing) and never raises on any
``str``: the property tests hold it to both.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

# Unicode line and paragraph separators, vertical tab, form feed and NEL end a line.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# Controls other than tab and newline, every format character (Cf in Python 3.11's Unicode 14:
# U+200B and other zero-widths, U+FEFF, soft hyphen, bidi marks), lone surrogates, and the
# non-characters U+FFFE/U+FFFF. Written out as ranges: scanning unicodedata costs 100 ms of import.
_INVISIBLE_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff"
    "\ufff9-\ufffb\ufffe\uffff\U000110bd\U000110cd\U00013430-\U00013438"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# "exam-\nple" -> "example": a letter, a hyphen at the end of a line, a lower-case letter next.
_HYPHEN_BREAK = re.compile(r"(?<=[^\W\d_])-\n(?=([^\W\d_]))")


def _strip_lines(text: str) -> str:
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def _join_hyphen(match: re.Match[str]) -> str:
    return "" if match.group(1).islower() else match.group(0)


def clean_text(text: str, *, join_hyphenated_lines: bool = False) -> str:
    """Normalise ``text``: NFKC, no invisible characters, single spaces, at most one blank line.

    ``join_hyphenated_lines`` re-joins words a PDF broke at a line end ("exam-\\nple").
    """
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE_RE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    # NFKC can turn compatibility characters into line breaks or format characters again.
    text = _INVISIBLE_RE.sub("", _LINE_BREAKS.sub("\n", text))
    text = _strip_lines(text)
    if join_hyphenated_lines:
        text = _HYPHEN_BREAK.sub(_join_hyphen, text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def clean_title(title: str | None, *, max_chars: int = 300) -> str | None:
    """One line of clean text, or None when nothing is left."""
    if not title:
        return None
    line = " ".join(clean_text(title).split())
    return line[:max_chars].rstrip() or None


_DIGITS = re.compile(r"\d+")


def _line_key(line: str) -> str:
    return _DIGITS.sub("#", line.casefold())


def strip_repeated_lines(
    pages: list[str], *, edge_lines: int = 2, min_pages: int = 4, min_share: float = 0.5
) -> list[str]:
    """Drop running heads and footers: short lines at a page's top or bottom seen on most pages.

    Digits are ignored when comparing lines, so "Page 3 of 10" matches "Page 4 of 10".
    """
    if sum(1 for page in pages if page.strip()) < min_pages:
        return pages
    edges: list[list[tuple[int, str]]] = []
    counts: Counter[str] = Counter()
    for page in pages:
        lines = page.split("\n")
        filled = [i for i, line in enumerate(lines) if line.strip()]
        positions = sorted(set(filled[:edge_lines] + filled[-edge_lines:]))
        page_edges = [(i, _line_key(lines[i])) for i in positions if len(lines[i]) <= 100]
        edges.append(page_edges)
        counts.update({key for _, key in page_edges})
    threshold = max(3, math.ceil(min_share * sum(1 for page in pages if page.strip())))
    repeated = {key for key, count in counts.items() if count >= threshold}
    if not repeated:
        return pages
    result = []
    for page, page_edges in zip(pages, edges, strict=True):
        drop = {i for i, key in page_edges if key in repeated}
        kept = [line for i, line in enumerate(page.split("\n")) if i not in drop]
        # A page that would lose every line keeps them: its only text is not a running head.
        result.append("\n".join(kept).strip() if drop and any(kept) else page)
    return result
