"""The offline answerer: quotes the retrieved sentences that best match the question, cited.

No model call. Sentences are scored with BM25 computed over the candidate sentences themselves
(so term weights need no corpus statistics), scaled down for sentences that only restate or ask
the question, plus a bonus when a when/how-many/who question meets a date/number/name, plus a
small prior from the hit's rank (which carries what the dense retriever and the fusion knew).
A table row is a sentence of its own, read under its header row (docket.answer.tables), and a
chunk's title and source name count as context of each of its sentences.

It abstains ("not found") when the confidence, built from the hits alone, is below ``min_score``.
The confidence is the probability, from a small logistic model fit on SciFact train
(docket.answer.answerability), that the hits answer the question: the best sentence's and the
best document's coverage of the question's words, whether some hit names what the question names,
how far the best hit stands out in BM25 and cosine, and whether both retrievers rank it high. A
question naming something that no hit mentions ("Tesla" over Uber and Lyft filings), or that the
quoted sentence is not about (answerability.unlinked_names: Tesla listed among car makers, asked
for Tesla's revenue), or hits that are off topic by cosine, get a fraction of that confidence, so
they abstain.

The older signals (lexical, margin, dense, agreement) are still reported on the ``Assessment``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from docket.answer import answerability
from docket.answer.answerability import raw_score as _raw
from docket.answer.answerability import retriever_rank as _rank
from docket.answer.lexical import (
    answer_type,
    content_terms,
    counts_asked_thing,
    has_answer_type,
    split_sentences,
)
from docket.answer.port import AnswerDelta, AnswerDone, AnswerEvent
from docket.answer.tables import RowSpan, table_rows
from docket.answer.verify import MARKER_RE
from docket.models import NOT_FOUND_TEXT, Answer, Citation, SearchHit

# The abstention threshold on the answerability probability: the best balanced accuracy (answered
# answerable + abstained unanswerable) on SciFact train (bench/calibrate_answerer.py). On SciFact
# test (int8 model, 2026-12-05) it answers 0.60 of the claims and abstains on 0.71 without their
# abstracts.
DEFAULT_MIN_SCORE = 0.5

# all-MiniLM-L6-v2 cosines: on SciFact the best cosine among the hits is ~0.56 (median) when the
# relevant abstracts are gone and ~0.62 when they are there; below LOW nothing is on topic.
DENSE_LOW = 0.5
DENSE_HIGH = 0.85

# The BM25 margin compares the best document with the weakest of at least this many documents.
MARGIN_MIN_DOCUMENTS = 5

# Sentence selection: a date/number/name where the question asks when/how many/who is a hint.
ANSWER_TYPE_BONUS = 0.1
# ...and a count of the very thing a how-many question names ("4,453 employees") is a stronger one
COUNT_BONUS = 0.2
# ...and a table row whose label is just what the question names ("Revenue", "Net loss") another
ROW_LABEL_BONUS = 0.2
_NOVEL_TERMS = 3  # a sentence needs this many words beyond the question's to count in full
_QUESTION_PENALTY = 0.3
# A run with no sentence end that is not a table row is a heading or a caption ("Consolidated
# Statements of Operations ... Year Ended December 31,"): it names a topic, it states nothing.
_FRAGMENT_PENALTY = 0.6
_SENTENCE_END = re.compile(r"[.!?…][\"'\u201d\u2019)\]]*$")

_K1 = 1.2
_B = 0.5


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


_DOT_LEADER = re.compile(r"(?:\.\s){2,}\.|\.{4,}")


class Assessment(BaseModel):
    """Answerability from the hits alone: the confidence and the signals behind it."""

    model_config = ConfigDict(frozen=True)

    confidence: float = Field(
        ge=0.0, le=1.0, description="probability that the hits answer the question"
    )
    lexical: float = Field(ge=0.0, le=1.0, description="sqrt(coverage * margin), or coverage")
    coverage: float = Field(
        ge=0.0,
        le=1.0,
        description="idf-weighted share of the question's words in the best sentence",
    )
    margin: float | None = Field(
        default=None,
        description="(best - weakest) / best of the documents' BM25 scores; None with fewer than "
        "MARGIN_MIN_DOCUMENTS documents scored by BM25",
    )
    dense: float | None = Field(
        default=None,
        description="best k-NN cosine among the hits, scaled to [0, 1]; None if absent",
    )
    agreement: float | None = Field(
        default=None,
        description="2 / (bm25 rank + knn rank) of the best chunk both retrievers found; None if "
        "the hits carry only one retriever's ranks",
    )
    features: dict[str, float | None] = Field(
        default_factory=dict, description="the answerability model's inputs (answerability.py)"
    )
    missing_names: list[str] = Field(
        default_factory=list,
        description="names of the question that no hit mentions, or that the quoted "
        "sentence is not about (answerability.unlinked_names)",
    )


@dataclass(frozen=True, slots=True)
class _Sentence:
    hit_index: int
    start: int
    end: int
    text: str
    terms: frozenset[str]
    length: int
    # A table row's cells labelled with its column headers, shown instead of the bare row.
    display: str | None = None
    # A table row's label words (RowSpan.label_terms); None for a sentence.
    label: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class _Scored:
    sentence: _Sentence
    score: float
    relevance: float
    coverage: float


@dataclass(frozen=True, slots=True)
class _Plan:
    assessment: Assessment
    chosen: list[_Scored]


# A source's own reference markers ("... since 1979 [14].") would read as our citations in the
# answer text, where [n] always means citations[n-1]; the displayed sentence drops them (the
# citation's quote keeps the verbatim text).
_SOURCE_MARKER_RE = re.compile(r"\s*" + MARKER_RE.pattern)


def _display(text: str) -> str:
    """Sentence text for the answer: the quote with its line breaks and runs of spaces folded,
    and the source's own bracketed reference numbers left out."""
    return " ".join(_SOURCE_MARKER_RE.sub("", text).split())


class ExtractiveAnswerer:
    """Answers by quoting up to ``max_sentences`` retrieved sentences, each followed by ``[n]``.

    ``min_score`` is the abstention threshold on ``Assessment.confidence``. Hits must be ranked
    best first; ``hit.scores["knn"]`` (cosine) and ``hit.ranks["bm25"|"knn"]`` (1 = best) are used
    when present, and the confidence falls back to lexical signals when they are not.
    """

    name = "extractive"

    def __init__(
        self,
        min_score: float = DEFAULT_MIN_SCORE,
        max_sentences: int = 3,
        *,
        max_hits: int = 10,
        rank_prior: float = 0.15,
        keep_ratio: float = 0.5,
        redundancy: float = 0.6,
        max_quote_chars: int = 400,
        dense_low: float = DENSE_LOW,
        dense_high: float = DENSE_HIGH,
    ) -> None:
        if max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        if not dense_high > dense_low:
            raise ValueError("dense_high must be greater than dense_low")
        self.min_score = min_score
        self.max_sentences = max_sentences
        self.max_hits = max_hits
        self.rank_prior = rank_prior
        self.keep_ratio = keep_ratio
        self.redundancy = redundancy
        self.max_quote_chars = max_quote_chars
        self.dense_low = dense_low
        self.dense_high = dense_high

    # --- public API ---------------------------------------------------------------------------

    def answer(self, question: str, hits: Sequence[SearchHit]) -> Answer:
        return self._compose(question, hits)[1]

    def stream(self, question: str, hits: Sequence[SearchHit]) -> Iterator[AnswerEvent]:
        deltas, answer = self._compose(question, hits)
        yield from deltas
        yield AnswerDone(answer=answer)

    def assess(self, question: str, hits: Sequence[SearchHit]) -> Assessment:
        """The confidence that the hits answer the question, without composing an answer."""
        return self._plan(question, hits).assessment

    # --- composition --------------------------------------------------------------------------

    def _compose(
        self, question: str, hits: Sequence[SearchHit]
    ) -> tuple[list[AnswerDelta], Answer]:
        plan = self._plan(question, hits)
        confidence = round(plan.assessment.confidence, 4)
        if not plan.chosen or plan.assessment.confidence < self.min_score:
            answer = Answer(
                found=False, text=NOT_FOUND_TEXT, confidence=confidence, answerer=self.name
            )
            return [AnswerDelta(text=NOT_FOUND_TEXT)], answer

        # Group by chunk, most relevant chunk first; reading order inside a chunk.
        by_hit: dict[int, list[_Scored]] = {}
        for item in plan.chosen:
            by_hit.setdefault(item.sentence.hit_index, []).append(item)
        deltas: list[AnswerDelta] = []
        citations: list[Citation] = []
        for number, (hit_index, items) in enumerate(by_hit.items(), start=1):
            items.sort(key=lambda item: item.sentence.start)
            chunk = hits[hit_index].chunk
            citations.append(
                Citation(
                    number=number,
                    document_id=chunk.document_id,
                    chunk_id=chunk.chunk_id,
                    source=chunk.source,
                    title=chunk.title,
                    page_start=chunk.page_start,
                    page_end=chunk.page_end,
                    quote=chunk.text[items[0].sentence.start : items[-1].sentence.end],
                )
            )
            for item in items:
                sentence = item.sentence.display or _display(
                    chunk.text[item.sentence.start : item.sentence.end]
                )
                prefix = " " if deltas else ""
                deltas.append(
                    AnswerDelta(text=f"{prefix}{sentence} [{number}]", citations=[number])
                )
        answer = Answer(
            found=True,
            text="".join(delta.text for delta in deltas),
            citations=citations,
            confidence=confidence,
            answerer=self.name,
        )
        return deltas, answer

    # --- scoring ------------------------------------------------------------------------------

    def _sentences(self, hits: Sequence[SearchHit]) -> list[_Sentence]:
        sentences = []
        for hit_index, hit in enumerate(hits[: self.max_hits]):
            text = hit.chunk.text
            for span in table_rows(text, split_sentences(text, self.max_quote_chars)):
                sentence = text[span.start : span.end]
                if _DOT_LEADER.search(sentence):
                    continue  # a table-of-contents line names a section; it answers nothing
                terms = content_terms(sentence)
                if not terms:
                    continue
                display, label = None, None
                if isinstance(span, RowSpan):
                    # The row's column headers are part of what it says ("2021" of "Revenue").
                    terms += content_terms(f"{span.caption} {span.header}")
                    display, label = span.labelled(sentence), span.label_terms(sentence)
                sentences.append(
                    _Sentence(
                        hit_index,
                        span.start,
                        span.end,
                        sentence,
                        frozenset(terms),
                        len(terms),
                        display,
                        label,
                    )
                )
        return sentences

    def _plan(self, question: str, hits: Sequence[SearchHit]) -> _Plan:
        query = sorted(set(content_terms(question)))
        question_terms = frozenset(query)
        wanted = answer_type(question)
        sentences = self._sentences(hits)
        if not sentences:
            return _Plan(Assessment(confidence=0.0, lexical=0.0, coverage=0.0), [])

        # BM25 over the candidate sentences: idf from how many candidates contain each word.
        # Words count once per sentence (repeats inside one sentence are rare and say little).
        # A chunk's title and source name are part of every one of its sentences' context: in
        # "What was Uber's revenue?" over uber_2021.pdf, "Uber" is said by the document, and the
        # sentence that answers is the revenue row, not the one row that repeats the company name.
        context = [
            frozenset(content_terms(f"{hit.chunk.title or ''} {hit.chunk.source}")) & question_terms
            for hit in hits[: self.max_hits]
        ]
        matches = [
            (sentence.terms | context[sentence.hit_index]) & question_terms
            for sentence in sentences
        ]
        count = len(sentences)
        document_frequency = Counter(term for matched in matches for term in matched)
        idf = {
            term: math.log(
                1.0 + (count - document_frequency[term] + 0.5) / (document_frequency[term] + 0.5)
            )
            for term in query
        }
        total_idf = sum(idf.values()) or 1.0
        average_length = sum(sentence.length for sentence in sentences) / count
        saturation = _K1 + 1.0

        scored = []
        for sentence, matched in zip(sentences, matches, strict=True):
            length_norm = _K1 * (1.0 - _B + _B * sentence.length / average_length)
            coverage = sum(idf[term] for term in matched) / total_idf
            relevance = coverage * saturation / (1.0 + length_norm)
            if matched:
                # A sentence that only restates the question, or asks one, answers nothing.
                novel = len(sentence.terms - question_terms)
                relevance *= min(1.0, (novel + 1) / (_NOVEL_TERMS + 1))
                if sentence.text.rstrip("\"'\u201d\u2019)]").endswith("?"):
                    relevance *= _QUESTION_PENALTY
                elif not _SENTENCE_END.search(sentence.text) and " | " not in sentence.text:
                    relevance *= _FRAGMENT_PENALTY
                if sentence.label and sentence.label <= question_terms:
                    relevance += ROW_LABEL_BONUS  # the row is the very thing asked for
                if wanted and has_answer_type(sentence.text, wanted, question_terms):
                    relevance += ANSWER_TYPE_BONUS
                    if wanted == "number" and counts_asked_thing(sentence.text, question_terms):
                        relevance += COUNT_BONUS
            prior = self.rank_prior / (1.0 + sentence.hit_index)
            scored.append(_Scored(sentence, relevance + prior, relevance, coverage))
        scored.sort(key=lambda item: (-item.score, item.sentence.hit_index, item.sentence.start))

        best = scored[0]
        chosen = [best]
        seen_texts = {self._key(best.sentence)}
        for item in scored[1:]:
            if len(chosen) >= self.max_sentences or item.score < self.keep_ratio * best.score:
                break
            if best.relevance > 0 and item.relevance <= 0:
                continue
            key = self._key(item.sentence)
            if key in seen_texts or any(
                self._overlap(item.sentence, other.sentence) > self.redundancy for other in chosen
            ):
                continue
            seen_texts.add(key)
            chosen.append(item)
        # Chunks in order of their best sentence; chosen is already sorted by score.
        considered = hits[: self.max_hits]
        hit_terms: list[set[str]] = [set() for _ in considered]
        for sentence in sentences:
            hit_terms[sentence.hit_index].update(sentence.terms)
        features, missing = answerability.features(
            question,
            question_terms,
            _clip(best.coverage),
            considered,
            [frozenset(terms) for terms in hit_terms],
        )
        # Names the quoted sentence is not about count as missing too.
        missing += [
            name
            for name in answerability.unlinked_names(
                question,
                question_terms,
                best.sentence.terms,
                frozenset(hit_terms[best.sentence.hit_index]),
                context[best.sentence.hit_index],
            )
            if name not in missing
        ]
        assessment = self._assessment(
            best.coverage,
            *self._retrieval_signals(considered),
            features=features,
            missing_names=missing,
        )
        return _Plan(assessment, chosen)

    @staticmethod
    def _key(sentence: _Sentence) -> str:
        return _display(sentence.text).lower()

    @staticmethod
    def _overlap(a: _Sentence, b: _Sentence) -> float:
        """Jaccard overlap of the two sentences' word sets."""
        union = len(a.terms | b.terms)
        return len(a.terms & b.terms) / union if union else 0.0

    def _retrieval_signals(
        self, hits: Sequence[SearchHit]
    ) -> tuple[float | None, float | None, float | None]:
        """(margin, dense, agreement) from the retrievers' raw scores and ranks."""
        best_bm25: dict[str, float] = {}
        cosines: list[float] = []
        both: list[tuple[int, int]] = []
        ranked_by: set[str] = set()
        for hit in hits:
            bm25, knn = _raw(hit, "bm25"), _raw(hit, "knn")
            if bm25 is not None:
                document = hit.chunk.document_id
                best_bm25[document] = max(best_bm25.get(document, 0.0), bm25)
            if knn is not None:
                cosines.append(knn)
            bm25_rank, knn_rank = _rank(hit, "bm25"), _rank(hit, "knn")
            ranked_by.update(name for name, r in (("bm25", bm25_rank), ("knn", knn_rank)) if r)
            if bm25_rank and knn_rank:
                both.append((bm25_rank, knn_rank))
        top = max(best_bm25.values(), default=0.0)
        margin = (
            _clip((top - min(best_bm25.values())) / top)
            if len(best_bm25) >= MARGIN_MIN_DOCUMENTS and top > 0
            else None
        )
        dense = (
            _clip((max(cosines) - self.dense_low) / (self.dense_high - self.dense_low))
            if cosines
            else None
        )
        agreement = (
            max((2.0 / (b + k) for b, k in both), default=0.0)
            if ranked_by == {"bm25", "knn"}
            else None
        )
        return margin, dense, agreement

    def _assessment(
        self,
        coverage: float,
        margin: float | None,
        dense: float | None,
        agreement: float | None,
        *,
        features: dict[str, float | None],
        missing_names: list[str],
    ) -> Assessment:
        coverage = _clip(coverage)
        lexical = coverage if margin is None else math.sqrt(coverage * margin)
        return Assessment(
            confidence=_clip(answerability.answerability(features, missing_names)),
            lexical=lexical,
            coverage=coverage,
            margin=margin,
            dense=dense,
            agreement=agreement,
            features=features,
            missing_names=missing_names,
        )
