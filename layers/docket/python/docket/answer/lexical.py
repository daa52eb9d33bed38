"""Cheap, deterministic text tools for the extractive answerer: sentence spans, content-word stems.

No model and no corpus statistics: the answerer computes its term weights over the candidate
sentences it is given, so everything here is pure string work that runs in microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

# Small English stop list: function words and question words that carry no topic.
_STOPWORDS = """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else
    ever few for from further had has have having he her here hers herself him himself his how many much
    i if in into is it its itself just let may me might more most must my myself neither no nor
    not now of off on once only or other ought our ours ourselves out over own per same shall she
    should so some such than that the their theirs them themselves then there these they this
    those through to too under until up upon us very was we were what when where whether which
    while who whom whose why will with within without would yet you your yours yourself
    yourselves s t d ll m re ve
"""
STOPWORDS = frozenset(_STOPWORDS.split())

_WORD_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_VOWELS = frozenset("aeiouy")

# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) before whitespace.
_SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'\u201d\u2019)\]]*(?=\s)")
_PARAGRAPH_RE = re.compile(r"\n[ \t]*\n\s*|\n[ \t]*(?=[•▪·*-]\s|\d{1,2}[.)]\s)")
_ABBREVIATIONS_TEXT = """
    al approx ca cf co corp dept dr e.g eg esp est etc fig figs gen gov i.e ie inc jr ltd mr mrs
    ms no nos p.m a.m pp prof ref refs resp sr st u.k u.s u.s.a vol vols vs
"""
_ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())
_NEXT_STARTS_SENTENCE_RE = re.compile(r"\s+[\"'\u201c\u2018(\[]?[A-Z0-9]")


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence as ``text[start:end]`` of the text it was split from."""

    start: int
    end: int


def _ends_with_abbreviation(text: str, end: int) -> bool:
    """Whether the word before the period at ``text[end-1]`` is an abbreviation or an initial."""
    start = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end), text.rfind("\t", 0, end)) + 1
    word = text[start : end - 1].lstrip("(\"'\u201c[").lower().rstrip(".")
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # initials ("J. Smith") and dotted acronyms ("U.S.A.")
    return (len(word) == 1 and word.isalpha()) or ("." in word and len(word.replace(".", "")) <= 4)


def _sentence_breaks(text: str) -> list[int]:
    breaks = []
    for match in _SENTENCE_END_RE.finditer(text):
        end = match.end()
        punctuation = match.group()
        if punctuation[0] == "." and (
            len(punctuation) == 1 or len(punctuation.rstrip("\"'\u201d\u2019)]")) == 1
        ):
            if _ends_with_abbreviation(text, match.start() + 1):
                continue
            # "... in vitro. cells" is rarely a boundary; "... 2021. The" is.
            if not _NEXT_STARTS_SENTENCE_RE.match(text, end):
                continue
        breaks.append(end)
    if "\n" in text:
        breaks.extend(match.start() for match in _PARAGRAPH_RE.finditer(text))
        breaks = sorted(set(breaks))
    return breaks


def trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def _windows(text: str, span: Span, max_chars: int) -> Iterator[Span]:
    """Cut an over-long run (a table, a list without punctuation) at lines, then at spaces."""
    if span.end - span.start <= max_chars:
        yield span
        return
    start = span.start
    while span.end - start > max_chars:
        limit = start + max_chars
        cut = text.rfind("\n", start + max_chars // 3, limit)
        if cut == -1:
            cut = text.rfind(" ", start + max_chars // 3, limit)
        if cut == -1:
            cut = limit
        piece = trimmed(text, start, cut)
        if piece:
            yield piece
        start = cut
    piece = trimmed(text, start, span.end)
    if piece:
        yield piece


def split_sentences(text: str, max_chars: int = 400) -> list[Span]:
    """Sentence spans of ``text``; ``text[span.start:span.end]`` is each sentence verbatim."""
    spans: list[Span] = []
    start = 0
    for end in _sentence_breaks(text):
        piece = trimmed(text, start, end)
        if piece:
            spans.extend(_windows(text, piece, max_chars))
        start = end
    piece = trimmed(text, start, len(text))
    if piece:
        spans.extend(_windows(text, piece, max_chars))
    return spans


def _has_vowel(word: str) -> bool:
    return any(ch in _VOWELS for ch in word)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English suffix stripper (plurals, -ed/-ing, -ly, a few derivations).

    Not Porter: it only has to map a question's words and a sentence's words onto the same
    key, deterministically and fast, without a dependency in the Lambda layer.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "ches", "shes", "xes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ingly", "edly", "ing", "ed"):
        if word.endswith(suffix):
            base = word[: -len(suffix)]
            if len(base) >= 3 and _has_vowel(base):
                word = base
                if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                    word = word[:-1]
            break
    for suffix, replacement in (
        ("ational", "ate"),
        ("ization", "ize"),
        ("isation", "ize"),
        ("fulness", "ful"),
        ("iveness", "ive"),
        ("ousness", "ous"),
        ("ation", "ate"),
        ("ness", ""),
        ("ment", ""),
        ("ly", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            word = word[: -len(suffix)] + replacement
            break
    if word.endswith("y") and len(word) > 4:
        word = word[:-1] + "i"
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _term(token: str) -> str:
    """The stemmed term of a lower-cased token, or "" for a stop word."""
    token = token.replace("\u2019", "'").split("'", 1)[0]
    if token in STOPWORDS or (len(token) == 1 and not token.isdigit()):
        return ""
    return stem(token)


_TERM_CACHE: dict[str, str] = {}
_TERM_CACHE_LIMIT = 200_000


def content_terms(text: str) -> list[str]:
    """Lower-cased, stemmed words of ``text`` without stop words, in order (repeats kept)."""
    cache = _TERM_CACHE
    terms = []
    for token in _WORD_RE.findall(text.lower()):
        term = cache.get(token)
        if term is None:
            if len(cache) >= _TERM_CACHE_LIMIT:
                cache.clear()
            term = cache[token] = _term(token)
        if term:
            terms.append(term)
    return terms


# --- answer types: a cheap hint of what kind of sentence answers a wh-question ------------------

_MONTHS = (
    "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec|january|february|march|april|june|"
    "july|august|september|october|november|december"
)
_DATE_RE = re.compile(rf"\b(?:1[5-9]\d\d|20\d\d)\b|\b(?:{_MONTHS})\.?\s+\d{{1,2}}\b", re.I)
_NUMBER_RE = re.compile(r"(?<!\w)[$€£]?\d[\d,.]*")
_NAME_RE = re.compile(r"\b[A-Z][\w'\u2019-]*")
_QUESTION_TYPES = (
    ("date", re.compile(r"\bwhen\b|^\W*what (?:year|date|day|month|time)\b", re.I)),
    (
        "number",
        re.compile(
            r"^\W*how (?:many|much|long|far|old|big|large|tall)\b"
            r"|^\W*what (?:percentage|number|amount|price)\b",
            re.I,
        ),
    ),
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhere\b|^\W*which\b", re.I)),
)


def answer_type(question: str) -> str | None:
    """ "date", "number" or "name" when the question's wording asks for one, else None."""
    for kind, pattern in _QUESTION_TYPES:
        if pattern.search(question):
            return kind
    return None


def has_answer_type(sentence: str, kind: str | None, question_terms: frozenset[str]) -> bool:
    """Whether ``sentence`` holds a ``kind`` of thing that the question does not already name."""
    if kind == "date":
        found = [m.group() for m in _DATE_RE.finditer(sentence)]
    elif kind == "number":
        found = [m.group() for m in _NUMBER_RE.finditer(sentence)]
    elif kind == "name":
        # capitalised words other than the sentence's first word
        found = [m.group() for m in _NAME_RE.finditer(sentence) if m.start() > 0]
    else:
        return False
    return any(not set(content_terms(text)) <= question_terms for text in found)


# "4,453 employees", "29,300 global employees": a count followed (at most one word between) by a
# word; years are dates, not counts.
_COUNT_RE = re.compile(
    r"(?<![\w$€£.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w,.]\d)\s+(?:([^\W\d_]+)\s+)?([^\W\d_]+)"
)
# a year as a term: 1500-2099
YEAR_RE = re.compile(r"^(?:1[5-9]|20)\d\d$")


def counts_asked_thing(sentence: str, question_terms: frozenset[str]) -> bool:
    """Whether ``sentence`` gives a count of something the question names ("how many employees"
    met by "4,453 employees"): the strongest sign a sentence answers a how-many question."""
    for match in _COUNT_RE.finditer(sentence):
        if YEAR_RE.match(match.group(1)):
            continue
        for word in (match.group(2), match.group(3)):
            if word and (terms := content_terms(word)) and terms[0] in question_terms:
                return True
    return False
