"""Checks each sentence of a generated answer against the sources it cites: lexical, no model.

An answer is split into sentences (claims); ``[n]`` markers after a sentence belong to it, also
when the model puts them after the full stop (``"... by 30%. [2] Next ..."``). For every claim:

- ``uncited``: it has no ``[n]`` marker;
- ``supported``: the content words of the claim (stemmed, stop words out, ``docket.answer.lexical``)
  are found in the cited sources' best windows (one or two consecutive sentences each) with recall
  at least ``min_support``, every number the claim states appears in a cited source, and no word
  is negated in the claim but affirmed in the window, or the other way round;
- ``unsupported``: otherwise, including a claim that cites only numbers no source has.

Each cited source's best window is a verbatim span of its text: the citation's ``quote``.

What it cannot see: paraphrase (synonyms lower recall, so a faithful paraphrase can fail) and
meaning that word overlap does not carry (a claim built from a source's words in another order
passes). It errs towards flagging; the prompt asks the model to keep the sources' wording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from docket.answer.lexical import Span, content_terms, split_sentences

# Content-word recall a claim needs in its cited windows. Measured on SciFact (an ad hoc run, the
# script is not in the repository yet): a claim's recall in the best two-sentence window of its
# relevant abstract (human paraphrases: the hardest faithful case) against an on-topic sentence of
# one abstract checked against the most similar other abstract (on topic, but not stated there).
#   threshold           0.40  0.50  0.55  0.60  0.67
#   paraphrases pass    0.64  0.51  0.37  0.32  0.24   (train; test 0.48 at 0.50)
#   unsupported pass    0.15  0.07  0.04  0.03  0.02   (train; test 0.07 at 0.50)
# 0.5 is the knee: above it faithful paraphrases fail fast while few more unsupported ones are
# caught. With the number and negation checks, 0.047 of the unsupported pass (train). An LLM
# answer told to keep the sources' wording scores well above a human paraphrase.
MIN_SUPPORT = 0.5

# A quote is one sentence, or two when the second adds claim words; the citation's quote is the
# best window of the claims that cite the source, merged when they are close enough.
WINDOW_SENTENCES = 2

# A negation cue covers the next few content words of its clause ("did not significantly reduce
# mortality": significant, reduce, mortality), until punctuation or a contrast word.
NEGATION_SCOPE = 3

# One [n] marker: "[2]", "[1, 3]", "[1;2]", "[2-4]" (a range), up to three digits each.
MARKER_RE = re.compile(r"\[\s*\d{1,3}(?:\s*[,;\-\u2013]\s*\d{1,3})*\s*\]")
_MARKER_NUMBER_RE = re.compile(r"(\d{1,3})(?:\s*[\-\u2013]\s*(\d{1,3}))?")
_MAX_RANGE = 20
_TRAILING_MARKERS_RE = re.compile(r"(?:\s*" + MARKER_RE.pattern + r")+[.,;:!?]*")
_LETTER_RE = re.compile(r"[^\W\d_]")

_CANT_RE = re.compile(r"\bcan(?:no|['\u2019]|)t\b", re.IGNORECASE)
_WONT_RE = re.compile(r"\bwon['\u2019]t\b", re.IGNORECASE)
_NT_RE = re.compile(r"n['\u2019]t\b", re.IGNORECASE)

_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*|[.,;:!?()\[\]]")
_CLAUSE_BREAKS = frozenset(".,;:!?()[]")
_CONTRAST_WORDS = frozenset(["but", "whereas", "although", "though", "however", "while", "yet"])
_NEGATION_CUES = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nor",
        "neither",
        "without",
        "nothing",
        "nobody",
        "unable",
        "lack",
        "lacks",
        "lacked",
        "lacking",
        "absence",
        "absent",
    ]
)

# Numbers: any word with a digit ("30", "1.8", "1,000", "BRCA1"), plus number words from two up
# ("one" is too often a pronoun to be held to a source).
_NUMBER_RE = re.compile(r"[^\W_]*\d[^\W_]*(?:[.,]\d+)*")
_THOUSANDS_RE = re.compile(r",(?=\d{3}\b)")
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
    if value >= 2
} | {
    word: str(value)
    for word, value in (
        ("thirty", 30),
        ("forty", 40),
        ("fifty", 50),
        ("sixty", 60),
        ("seventy", 70),
        ("eighty", 80),
        ("ninety", 90),
        ("hundred", 100),
        ("thousand", 1000),
    )
}
_WORD_RE = re.compile(r"[^\W\d_]+")

# Words an answer uses to attribute rather than to claim ("the study found that..."): not looked
# for in the source.
_REPORTING_TERMS = frozenset(
    content_terms(
        "according source sources document documents study studies paper article authors author "
        "researchers report reports reported reporting find finds found show shows showed shown "
        "suggest suggests suggested indicate indicates indicated state states stated mention "
        "mentions mentioned note notes noted describe describes described demonstrate "
        "demonstrates demonstrated conclude concludes concluded evidence result results"
    )
)

ClaimStatus = Literal["supported", "unsupported", "uncited"]


# --- markers and claims ----------------------------------------------------------------------------


def marker_numbers(marker: str) -> list[int]:
    """The numbers of one marker, ranges expanded, in order, without repeats."""
    numbers: list[int] = []
    for match in _MARKER_NUMBER_RE.finditer(marker):
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first or last - first > _MAX_RANGE:
            last = first
        numbers.extend(range(first, last + 1))
    return list(dict.fromkeys(numbers))


def cited_numbers(text: str) -> list[int]:
    """Every number cited in ``text`` by ``[n]`` markers, by first appearance."""
    numbers = [n for marker in MARKER_RE.findall(text) for n in marker_numbers(marker)]
    return list(dict.fromkeys(numbers))


def strip_markers(text: str) -> str:
    """``text`` without its markers, whitespace folded: the claim as a reader states it."""
    without = MARKER_RE.sub(" ", text)
    without = re.sub(r"\s+([.,;:!?])", r"\1", without)
    return " ".join(without.split())


def _blank_markers(text: str) -> str:
    return MARKER_RE.sub(lambda match: " " * len(match.group()), text)


def split_claims(text: str) -> list[Span]:
    """Sentence spans of an answer; each takes the markers that follow it, before or after its stop.

    ``text[span.start:span.end]`` is each claim verbatim. Markers are blanked out before the
    sentence splitter runs, so ``"... 30% [1]. Next"`` and ``"... 30%. [1] Next"`` both split after
    the marker and ``"[1]"`` never starts a sentence.
    """
    shadow = _blank_markers(text)
    spans = split_sentences(shadow, max_chars=len(text) + 1)
    claims: list[Span] = []
    for index, span in enumerate(spans):
        start, end = span.start, span.end
        if index == 0 and MARKER_RE.search(text, 0, start):
            start = len(text) - len(text.lstrip())
        trailing = _TRAILING_MARKERS_RE.match(text, end)
        limit = spans[index + 1].start if index + 1 < len(spans) else len(text)
        if trailing and trailing.end() <= limit:
            end = trailing.end()
        claims.append(Span(start, end))
    return claims


def has_words(text: str) -> bool:
    """Whether ``text`` has a letter outside its markers (a sentence has begun)."""
    return bool(_LETTER_RE.search(MARKER_RE.sub(" ", text)))


# --- lexical evidence ------------------------------------------------------------------------------


def _expand_contractions(text: str) -> str:
    text = _CANT_RE.sub("can not", text)
    text = _WONT_RE.sub("will not", text)
    return _NT_RE.sub(" not", text)


def _terms(text: str) -> frozenset[str]:
    return frozenset(content_terms(_expand_contractions(text)))


def numbers_in(text: str) -> frozenset[str]:
    """Numbers stated in ``text``, normalised: "1,000" is "1000", "five" is "5", "BRCA1" stays."""
    found = {_THOUSANDS_RE.sub("", match.group().lower()) for match in _NUMBER_RE.finditer(text)}
    found.update(
        _NUMBER_WORDS[word] for word in _WORD_RE.findall(text.lower()) if word in _NUMBER_WORDS
    )
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Polarity:
    """The content words of a text under a negation cue, and those outside any."""

    negated: frozenset[str]
    affirmed: frozenset[str]

    def conflicts(self, other: Polarity, terms: frozenset[str]) -> list[str]:
        """Words of ``terms`` that one text only negates and the other only affirms."""
        clashes = []
        for term in sorted(terms):
            mine = (term in self.negated, term in self.affirmed)
            theirs = (term in other.negated, term in other.affirmed)
            if (
                any(mine)
                and any(theirs)
                and not ((mine[0] and theirs[0]) or (mine[1] and theirs[1]))
            ):
                clashes.append(term)
        return clashes


def polarity(text: str) -> Polarity:
    """Which content words stand under "not", "no", "without", "lack"... (``NEGATION_SCOPE``)."""
    negated: set[str] = set()
    affirmed: set[str] = set()
    tokens = [token.lower() for token in _TOKEN_RE.findall(_expand_contractions(text))]
    scope = 0
    for index, token in enumerate(tokens):
        if token in _CLAUSE_BREAKS or token in _CONTRAST_WORDS:
            scope = 0
        elif token in _NEGATION_CUES:
            following = tokens[index + 1] if index + 1 < len(tokens) else ""
            if not (token == "not" and following == "only"):  # "not only ... but also"
                scope = NEGATION_SCOPE
        else:
            for term in content_terms(token):
                if scope:
                    negated.add(term)
                    scope -= 1
                else:
                    affirmed.add(term)
    return Polarity(frozenset(negated), frozenset(affirmed))


# --- results ---------------------------------------------------------------------------------------


class Support(BaseModel):
    """A cited source's best window for a claim: ``quote == source_text[start:end]``."""

    model_config = ConfigDict(frozen=True)

    source: int = Field(ge=1, description="the source's number as the answer cites it")
    score: float = Field(ge=0.0, le=1.0, description="claim-word recall of this window alone")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    quote: str


class ClaimCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str = Field(description="the sentence as written, markers included")
    claim: str = Field(description="the sentence without markers")
    start: int = Field(ge=0, description="offset of ``text`` in the checked answer")
    end: int = Field(ge=0)
    cited: list[int] = Field(default_factory=list, description="numbers cited, as written")
    status: ClaimStatus
    score: float = Field(
        default=0.0, ge=0.0, le=1.0, description="claim-word recall in the cited windows"
    )
    missing_numbers: list[str] = Field(default_factory=list)
    negation_conflicts: list[str] = Field(default_factory=list)
    unknown_sources: list[int] = Field(default_factory=list)
    supports: list[Support] = Field(default_factory=list)

    @property
    def supported(self) -> bool:
        return self.status == "supported"


class Verification(BaseModel):
    model_config = ConfigDict(frozen=True)

    claims: list[ClaimCheck]

    @property
    def all_supported(self) -> bool:
        return bool(self.claims) and all(claim.supported for claim in self.claims)

    @property
    def supported(self) -> list[ClaimCheck]:
        return [claim for claim in self.claims if claim.supported]

    @property
    def not_supported(self) -> list[ClaimCheck]:
        return [claim for claim in self.claims if not claim.supported]


# --- the verifier ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Window:
    start: int
    end: int
    terms: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Source:
    text: str
    windows: tuple[_Window, ...]
    numbers: frozenset[str]


class PreparedSources:
    """Source texts split into windows once, for checking many claims (one answer, or a stream)."""

    def __init__(self, sources: tuple[_Source, ...]) -> None:
        self._sources = sources

    def __len__(self) -> int:
        return len(self._sources)

    def __getitem__(self, number: int) -> _Source:
        """Source ``[number]`` (1-based, as cited)."""
        return self._sources[number - 1]


class CitationVerifier:
    """Checks claims against numbered source texts: ``sources[n-1]`` is what ``[n]`` cites."""

    def __init__(
        self,
        min_support: float = MIN_SUPPORT,
        *,
        window_sentences: int = WINDOW_SENTENCES,
        max_sentence_chars: int = 400,
    ) -> None:
        if not 0.0 < min_support <= 1.0:
            raise ValueError("min_support must be in (0, 1]")
        if window_sentences < 1:
            raise ValueError("window_sentences must be at least 1")
        self.min_support = min_support
        self.window_sentences = window_sentences
        self.max_sentence_chars = max_sentence_chars

    def prepare(self, sources: Sequence[str]) -> PreparedSources:
        prepared = []
        for text in sources:
            spans = split_sentences(text, self.max_sentence_chars)
            windows = []
            for first in range(len(spans)):
                for size in range(1, self.window_sentences + 1):
                    if first + size > len(spans):
                        break
                    start, end = spans[first].start, spans[first + size - 1].end
                    windows.append(_Window(start, end, _terms(text[start:end])))
            prepared.append(_Source(text, tuple(windows), numbers_in(text)))
        return PreparedSources(tuple(prepared))

    def verify(self, text: str, sources: Sequence[str] | PreparedSources) -> Verification:
        """Every sentence of ``text``, checked."""
        prepared = sources if isinstance(sources, PreparedSources) else self.prepare(sources)
        return Verification(
            claims=[
                self.check(text[span.start : span.end], prepared, start=span.start)
                for span in split_claims(text)
            ]
        )

    def check(self, sentence: str, sources: PreparedSources, *, start: int = 0) -> ClaimCheck:
        """One sentence (markers included), found at ``start`` in its answer."""
        claim = strip_markers(sentence)
        cited = cited_numbers(sentence)
        base = {
            "text": sentence,
            "claim": claim,
            "start": start,
            "end": start + len(sentence),
            "cited": cited,
        }
        if not cited:
            return ClaimCheck(status="uncited", **base)  # type: ignore[arg-type]
        known = [number for number in cited if 1 <= number <= len(sources)]
        unknown = [number for number in cited if not 1 <= number <= len(sources)]
        terms = _terms(claim) - _REPORTING_TERMS
        supports: list[Support] = []
        window_terms: set[str] = set()
        window_texts = []
        for number in known:
            source = sources[number]
            window, score = self._best_window(source, terms)
            if window is None:
                continue
            quote = source.text[window.start : window.end]
            supports.append(
                Support(
                    source=number,
                    score=round(score, 4),
                    start=window.start,
                    end=window.end,
                    quote=quote,
                )
            )
            window_terms |= window.terms
            window_texts.append(quote)
        score = len(terms & window_terms) / len(terms) if terms else 0.0
        available = frozenset().union(*(sources[number].numbers for number in known))
        missing = sorted(numbers_in(claim) - available)
        conflicts = (
            polarity(claim).conflicts(polarity(" ".join(window_texts)), terms & window_terms)
            if window_texts
            else []
        )
        supported = bool(known) and score >= self.min_support and not missing and not conflicts
        return ClaimCheck(
            status="supported" if supported else "unsupported",
            score=round(score, 4),
            missing_numbers=missing,
            negation_conflicts=conflicts,
            unknown_sources=unknown,
            supports=supports,
            **base,  # type: ignore[arg-type]
        )

    @staticmethod
    def _best_window(source: _Source, terms: frozenset[str]) -> tuple[_Window | None, float]:
        """The window with the highest recall of ``terms``; the shorter, then earlier, on ties."""
        best: _Window | None = None
        best_key = (-1.0, 0)
        for window in source.windows:
            recall = len(terms & window.terms) / len(terms) if terms else 0.0
            key = (recall, -(window.end - window.start))
            if key > best_key:
                best, best_key = window, key
        return best, max(best_key[0], 0.0)
