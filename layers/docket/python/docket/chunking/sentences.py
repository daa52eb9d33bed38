"""A rule-based sentence splitter, good enough for chunk boundaries and cheap enough for Lambda.

A boundary is terminal punctuation (``.``, ``!``, ``?``, ``…``, optionally followed by closing
quotes or brackets), then whitespace, then something that can start a sentence (not a lowercase
letter). A full stop is no boundary after a known abbreviation ("e.g.", "Fig. 2", "et al."), after
a single letter (initials: "J. Smith"), or inside dotted abbreviations ("U.S."). Decimals ("3.5")
never qualify because no whitespace follows the point. CJK full stops end a sentence with or
without whitespace after them. Mistakes only move a preferred cut point, never lose text.
"""

from __future__ import annotations

import re

# Lowercased, without the final full stop: no sentence ends after these.
ABBREVIATIONS = frozenset(
    {
        # Latin and scholarly ("etc." is left out: it often ends a sentence)
        "al", "approx", "ca", "cf", "e.g", "eg", "i.e", "ie", "ibid", "viz", "vs", "resp",
        "incl", "esp", "spp", "ssp", "cv", "var", "aff", "nov", "comb",
        # references into a text
        "fig", "figs", "eq", "eqs", "ref", "refs", "tab", "tbl", "ed", "eds",
        # titles and organisations
        "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "mt", "rev", "lt", "sgt",
        "inc", "ltd", "co", "corp", "dept", "univ", "assn", "bros",
        # months
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "dec",
    }
)  # fmt: skip

# Ordinary words too ("no", "vol"), so abbreviations only when a number follows: "No. 5", "pp. 3-9".
NUMBER_ABBREVIATIONS = frozenset(
    {"no", "nos", "vol", "vols", "pp", "ch", "chap", "sec", "sect", "art", "para", "suppl", "app"}
)

_OPENING = "\"'(\\[\u00ab\u2018\u201c"  # quotes and brackets that may open a sentence
_CLOSING = "\"')\\]\u00bb\u2019\u201d"
_CJK_STOPS = "\u3002\uff01\uff1f"  # ideographic full stop, fullwidth ! and ?

# Terminal punctuation + closing marks, the whitespace after it, and the next visible character.
_CANDIDATE = re.compile(rf"([.!?\u2026]+)([{_CLOSING}]*)\s+([{_OPENING}]*)(\S)")
_CJK_STOP = re.compile(rf"[{_CJK_STOPS}]+[{_CLOSING}\u300d\u300f\uff09]*\s*")
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each sentence in ``text[start:end]``, without surrounding whitespace."""
    stop = len(text) if end is None else end
    cuts: list[int] = []
    for match in _CANDIDATE.finditer(text, start, stop):
        if _is_boundary(text, match, start):
            cuts.append(match.start(3))
    if any(stop_char in text for stop_char in _CJK_STOPS):
        cuts.extend(m.end() for m in _CJK_STOP.finditer(text, start, stop) if m.end() < stop)
        cuts = sorted(set(cuts))
    spans: list[tuple[int, int]] = []
    begin = start
    for cut in [*cuts, stop]:
        span = _strip(text, begin, cut)
        if span is not None:
            spans.append(span)
        begin = cut
    return spans


def split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def _is_boundary(text: str, match: re.Match[str], floor: int) -> bool:
    next_char = match.group(4)
    if next_char.islower():
        return False
    terminal = match.group(1)
    if terminal != ".":
        return True  # "!", "?", "…" and "..." end a sentence when a capital or digit follows
    begin = end = match.start(1)
    while begin > floor and not text[begin - 1].isspace():
        begin -= 1
    word = text[begin:end].lstrip(_OPENING).lower()
    if not word:
        return True
    if word in ABBREVIATIONS or (word in NUMBER_ABBREVIATIONS and next_char.isdigit()):
        return False
    if len(word) == 1 and word.isalpha():
        return False  # an initial: "J. Smith", "vitamin K. Levels" is the price
    return _DOTTED.fullmatch(word) is None  # "U.S.", "e.g." written without the list


def _strip(text: str, begin: int, end: int) -> tuple[int, int] | None:
    while begin < end and text[begin].isspace():
        begin += 1
    while end > begin and text[end - 1].isspace():
        end -= 1
    return (begin, end) if begin < end else None
