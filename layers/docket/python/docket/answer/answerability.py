"""Whether the retrieved passages answer the question: features of the hits and a small logistic
model over them, for the extractive answerer's abstention (and the LLM answerer's pre-check).

An on-topic corpus always has near hits, so "something matches" is not evidence. The features
compare what the quoted passage and the best document hold against the question, and how far the
best hit stands out from the rest of the list; all but ``dense_top`` are shares, log-ratios or
ranks, so they do not depend on a corpus's score scale:

    coverage           idf-weighted share of the question's words in the best sentence (idf over
                       the candidate sentences)
    document_coverage  share of the question's words in the best-covering document (its title and
                       retrieved chunks)
    entity_coverage    share of the question's named things (capitalised, mixed-case or numbered
                       words) that some hit mentions; 1 when it names none
    bm25_prominence    ln(best / median) of the hits' BM25 scores
    agreement          2 / (bm25 rank + knn rank) of the best chunk both retrievers found
    dense_top          best k-NN cosine among the hits (all-MiniLM-L6-v2 scale)
    dense_slope        cosine drop per unit of ln(knn rank) between the best- and the worst-ranked
                       hit by k-NN: how steeply similarity falls after the top

The confidence is 0 when no sentence shares a word with the question (nothing to quote). On top
of the model, two rules scale the confidence down: a question that names a proper noun
("Tesla") that no hit mentions, in text or title, or that the quoted sentence is not about
(``unlinked_names``), is not answered from them (``MISSING_NAME_FACTOR``), and hits whose best
cosine is below ``OFF_TOPIC_COSINE`` are off topic (``OFF_TOPIC_FACTOR``) unless the quoted
sentence holds most of the question's words (``ON_TOPIC_COVERAGE``): a short question against a
long passage has a low cosine even when the passage answers it ("What happens when a file is
password-protected?", 0.28).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from docket.answer.lexical import STOPWORDS, YEAR_RE, content_terms
from docket.models import SearchHit

# A question naming something absent from every hit keeps this share of its confidence.
MISSING_NAME_FACTOR = 0.2
# Hits whose best cosine is below this are off topic (all-MiniLM-L6-v2 scale: 0.1% of SciFact
# train claims have their best hit below it); they keep this share of the confidence.
OFF_TOPIC_COSINE = 0.3
OFF_TOPIC_FACTOR = 0.2
ON_TOPIC_COVERAGE = 0.5


@dataclass(frozen=True, slots=True)
class LogisticModel:
    """``sigmoid(intercept + sum(weight * feature))`` over the named features, each clipped to
    ``limits`` first (the 1st to 99th percentile of the fit data): a linear term must not
    extrapolate far beyond the values it was fit on."""

    intercept: float
    weights: Mapping[str, float]
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def probability(self, features: Mapping[str, float | None]) -> float:
        logit = self.intercept
        for name, weight in self.weights.items():
            value = float(features[name] or 0.0)
            low, high = self.limits.get(name, (-math.inf, math.inf))
            logit += weight * min(high, max(low, value))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, logit))))

    def applies_to(self, features: Mapping[str, float | None]) -> bool:
        return all(features.get(name) is not None for name in self.weights)


# Fit 2026-12-04 with `bench/calibrate_answerer.py fit` (logistic regression, L2 = 1 on the
# standardised weights, numpy IRLS, features clipped to their 1st-99th percentiles, weights mapped
# back to raw feature units) on SciFact TRAIN: 809 claims, each asked twice through the query
# path (hybrid BM25 + all-MiniLM-L6-v2 with the configured fusion, top 10 hits): with the whole
# corpus (label 1) and with its relevant abstracts out of reach (label 0). The lexical, dense and
# text models are the same fit restricted to the features such hits carry. SciFact test, msmarco
# and RGB were only measured, never fit on. The separation on SciFact (AUC ~0.74) was the same
# for every richer set tried (bigrams, titles, exclusive terms, sentence-level cosines,
# boosted stumps): a claim whose abstract is gone usually still has a neighbour that says much
# of it.
HYBRID_MODEL = LogisticModel(  # AUC on the fit data 0.744
    intercept=-3.594,
    weights={
        "coverage": 0.481,
        "document_coverage": 2.201,
        "entity_coverage": 0.401,
        "bm25_prominence": 1.883,
        "agreement": 0.403,
        "dense_top": 0.284,
        "dense_slope": 9.617,
    },
    limits={
        "coverage": (0.068, 1.000),
        "document_coverage": (0.286, 1.000),
        "entity_coverage": (0.000, 1.000),
        "bm25_prominence": (0.077, 1.459),
        "agreement": (0.036, 1.000),
        "dense_top": (0.292, 0.859),
        "dense_slope": (0.000, 0.127),
    },
)
LEXICAL_MODEL = LogisticModel(  # AUC on the fit data 0.732
    intercept=-3.333,
    weights={
        "coverage": 0.325,
        "document_coverage": 2.831,
        "entity_coverage": 0.559,
        "bm25_prominence": 2.345,
    },
    limits={
        "coverage": (0.068, 1.000),
        "document_coverage": (0.286, 1.000),
        "entity_coverage": (0.000, 1.000),
        "bm25_prominence": (0.077, 1.459),
    },
)
DENSE_MODEL = LogisticModel(  # AUC on the fit data 0.718
    intercept=-3.205,
    weights={
        "coverage": 0.963,
        "document_coverage": 2.407,
        "entity_coverage": 0.402,
        "dense_top": 0.154,
        "dense_slope": 17.677,
    },
    limits={
        "coverage": (0.068, 1.000),
        "document_coverage": (0.286, 1.000),
        "entity_coverage": (0.000, 1.000),
        "dense_top": (0.292, 0.859),
        "dense_slope": (0.000, 0.127),
    },
)
TEXT_MODEL = LogisticModel(  # AUC on the fit data 0.690
    intercept=-2.762,
    weights={
        "coverage": 1.047,
        "document_coverage": 3.062,
        "entity_coverage": 0.606,
    },
    limits={
        "coverage": (0.068, 1.000),
        "document_coverage": (0.286, 1.000),
        "entity_coverage": (0.000, 1.000),
    },
)
# The first model whose features the hits all carry is used.
MODELS: tuple[LogisticModel, ...] = (HYBRID_MODEL, LEXICAL_MODEL, DENSE_MODEL, TEXT_MODEL)


def raw_score(hit: SearchHit, retriever: str) -> float | None:
    """A retriever's raw score for the hit: from a fused hit's ``scores``, or an unfused hit's."""
    if retriever in hit.scores:
        return hit.scores[retriever]
    return hit.score if hit.retriever == retriever else None


def retriever_rank(hit: SearchHit, retriever: str) -> int | None:
    """A retriever's 1-based rank for the hit, as ``raw_score`` finds scores."""
    if retriever in hit.ranks:
        return max(1, hit.ranks[retriever])
    return max(1, hit.rank) if hit.retriever == retriever and hit.rank else None


# --- named things --------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"[^\W_]+(?:['\u2019.\-/][^\W_]+)*")
_POSSESSIVE_RE = re.compile(r"['\u2019]s?$")
_QUESTION_WORDS = frozenset(
    {"what", "when", "where", "who", "whom", "whose", "which", "why", "how"}
    | {"is", "are", "was", "were", "does", "do", "did", "can", "could"}
)


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in ".!?:;\"'\u201c("


def named_things(question: str) -> list[str]:
    """Words that name something: with a digit ("2021", "CCL19"), a capital inside ("iPhone",
    "HDAC4") or a capital not at a sentence's start ("Tesla"); as content terms, "a b" for
    multi-term tokens."""
    names = []
    for match in _TOKEN_RE.finditer(question):
        token = match.group()
        if token.lower() in STOPWORDS or token.lower() in _QUESTION_WORDS:
            continue
        if (
            any(c.isdigit() for c in token)
            or any(c.isupper() for c in token[1:])
            or (token[0].isupper() and not _starts_sentence(question, match.start()))
        ):
            terms = content_terms(token)
            if terms:
                names.append(" ".join(terms))
    return list(dict.fromkeys(names))


def proper_nouns(question: str) -> list[str]:
    """Capitalised alphabetic words ("Tesla", "Lyft") that do not start a sentence or follow a
    hyphen: the names a question is about, as content terms."""
    names = []
    for match in _TOKEN_RE.finditer(question):
        token = _POSSESSIVE_RE.sub("", match.group())
        start = match.start()
        if (
            len(token) < 2
            or not token.isalpha()
            or not (token[0].isupper() and token[1:].islower())
            or token.lower() in STOPWORDS
            or _starts_sentence(question, start)
            or question[start - 1] in "-/"
        ):
            continue
        names.extend(content_terms(token))
    return list(dict.fromkeys(names))


def _mentioned(name: str, vocabulary: AbstractSet[str]) -> bool:
    return all(part in vocabulary for part in name.split())


_CAMEL_RE = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\b")
_NAME_RUN_RE = re.compile(r"\b[A-Z][\w'\u2019.&-]*(?:\s+[A-Z][\w'\u2019.&-]*)*")
_POSSESSIVE_NAME_RE = re.compile(r"\b([A-Z][\w&.-]*)['\u2019]s\s+((?:[^\W\d_][\w-]*\s*){1,3})")


def _possessions(question: str) -> dict[str, set[str]]:
    """Name -> the content terms of what the question asks of it ("Tesla's revenue": {revenu})."""
    owned: dict[str, set[str]] = {}
    for match in _POSSESSIVE_NAME_RE.finditer(question):
        names, things = content_terms(match.group(1)), content_terms(match.group(2))[:2]
        if names and things:
            owned.setdefault(names[0], set()).update(things)
    return owned


# Months and weekdays are capitalised, but they date a fact, they do not name what it is about.
_CALENDAR_TERMS = frozenset(
    content_terms(
        "January February March April May June July August September October November December"
        " Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
    )
)


def unlinked_names(
    question: str,
    question_terms: frozenset[str],
    sentence_terms: frozenset[str],
    chunk_terms: frozenset[str],
    context_terms: frozenset[str],
) -> list[str]:
    """The question's names (proper nouns, CamelCase names such as "DoorDash", and years; not
    months, weekdays, acronyms or codes such as "DNA" or "CCL19") that the quoted sentence is not
    about: names its chunk never says, or says only in passing.

    A name is linked when the quote's document says it in its title or source name (a filing
    names its company once, its sentences say "we"); when the quote's chunk says it outside the
    quote (the quote answers "who", the chunk names the event); or when the quote holds it not only
    in passing, with another word of the question (of a possessive, with what is asked of the
    name). Not linked: the filer's own headcount, asked as Tesla's (the chunk never says
    "Tesla"); a quote listing Tesla among car makers, asked for Tesla's revenue or headcount; "our
    auditor since 2015", asked for the headcount in 2015. A year the chunk never says is left to
    the other signals: news rarely repeats the year it reports."""
    names = [
        name
        for name in [
            *proper_nouns(question),
            *(t for m in _CAMEL_RE.finditer(question) for t in content_terms(m.group())),
            *(t for t in content_terms(question) if YEAR_RE.match(t)),
        ]
        if name not in _CALENDAR_TERMS
    ]
    years = {name for name in names if YEAR_RE.match(name)}
    owned = _possessions(question)

    def linked(name: str, run: set[str]) -> bool:
        if _mentioned(name, context_terms):
            return True
        if _mentioned(name, sentence_terms):  # in the quote: not only in passing
            return bool(sentence_terms & owned.get(name, question_terms - run))
        return _mentioned(name, chunk_terms) or name in years

    # A run of capitalised words is one name: "Uber Technologies" is linked by "Uber".
    runs = [set(content_terms(m.group())) for m in _NAME_RUN_RE.finditer(question)]
    unlinked = []
    for name in dict.fromkeys(names):
        run = next((r for r in runs if set(name.split()) <= r), {name})
        if not any(linked(other, run) for other in names if set(other.split()) <= run):
            unlinked.append(name)
    return unlinked


# --- features -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HitVocabulary:
    """Content terms of each hit's text and of its document's title."""

    texts: list[frozenset[str]]
    titles: list[frozenset[str]]

    @classmethod
    def of(
        cls, hits: Sequence[SearchHit], texts: Sequence[frozenset[str]] | None = None
    ) -> HitVocabulary:
        """``texts``: the hits' text terms when the caller has them already."""
        titles: dict[str, frozenset[str]] = {}
        for hit in hits:
            title = hit.chunk.title or ""
            if title not in titles:
                titles[title] = frozenset(content_terms(title))
        return cls(
            texts=list(texts)
            if texts is not None
            else [frozenset(content_terms(hit.chunk.text)) for hit in hits],
            titles=[titles[hit.chunk.title or ""] for hit in hits],
        )

    def union(self) -> set[str]:
        return set().union(*self.texts, *self.titles)


def document_coverage(
    question_terms: frozenset[str], hits: Sequence[SearchHit], vocabulary: HitVocabulary
) -> float:
    """Share of the question's terms in the best-covering document (title + retrieved chunks)."""
    if not question_terms:
        return 0.0
    documents: dict[str, set[str]] = {}
    for hit, text, title in zip(hits, vocabulary.texts, vocabulary.titles, strict=True):
        documents.setdefault(hit.chunk.document_id, set()).update(text, title)
    best = max((len(question_terms & terms) for terms in documents.values()), default=0)
    return best / len(question_terms)


def entity_coverage(names: Iterable[str], vocabulary: set[str]) -> float:
    """Share of ``names`` that some hit mentions; 1 when there are none."""
    names = list(names)
    if not names:
        return 1.0
    return sum(_mentioned(name, vocabulary) for name in names) / len(names)


def bm25_prominence(hits: Sequence[SearchHit]) -> float | None:
    """ln(best / median) of the hits' BM25 scores; None with fewer than 3 scored hits."""
    scores = [s for s in (raw_score(hit, "bm25") for hit in hits) if s is not None and s > 0]
    if len(scores) < 3:
        return None
    return math.log(max(scores) / statistics.median(scores))


def dense_signals(hits: Sequence[SearchHit]) -> tuple[float | None, float | None]:
    """(best cosine, cosine drop per unit of ln(knn rank)) over the hits the k-NN retriever
    ranked; None for what the hits cannot tell (no cosine; fewer than two ranks for a slope)."""
    ranked = sorted(
        (rank, cosine)
        for rank, cosine in ((retriever_rank(hit, "knn"), raw_score(hit, "knn")) for hit in hits)
        if cosine is not None and rank is not None
    )
    if not ranked:
        return None, None
    top = max(cosine for _, cosine in ranked)
    (first_rank, first), (last_rank, last) = ranked[0], ranked[-1]
    if last_rank == first_rank:
        return top, None
    return top, (first - last) / math.log(last_rank / first_rank)


def agreement(hits: Sequence[SearchHit]) -> float | None:
    """2 / (bm25 rank + knn rank) of the best chunk both retrievers ranked; 0 when none was, None
    when the hits carry only one retriever's ranks."""
    ranked_by: set[str] = set()
    best = 0.0
    for hit in hits:
        bm25, knn = retriever_rank(hit, "bm25"), retriever_rank(hit, "knn")
        ranked_by.update(name for name, rank in (("bm25", bm25), ("knn", knn)) if rank)
        if bm25 and knn:
            best = max(best, 2.0 / (bm25 + knn))
    return best if ranked_by == {"bm25", "knn"} else None


def features(
    question: str,
    question_terms: frozenset[str],
    coverage: float,
    hits: Sequence[SearchHit],
    hit_terms: Sequence[frozenset[str]] | None = None,
) -> tuple[dict[str, float | None], list[str]]:
    """The model's features, and the question's proper nouns that no hit mentions.
    ``hit_terms``: each hit's text terms, when the caller has them already."""
    vocabulary = HitVocabulary.of(hits, hit_terms)
    mentioned = vocabulary.union()
    dense_top, dense_slope = dense_signals(hits)
    values: dict[str, float | None] = {
        "coverage": coverage,
        "document_coverage": document_coverage(question_terms, hits, vocabulary),
        "entity_coverage": entity_coverage(named_things(question), mentioned),
        "bm25_prominence": bm25_prominence(hits),
        "agreement": agreement(hits),
        "dense_top": dense_top,
        "dense_slope": dense_slope,
    }
    missing = [name for name in proper_nouns(question) if name not in mentioned]
    return values, missing


def answerability(features: Mapping[str, float | None], missing_names: Sequence[str]) -> float:
    """The probability that the hits answer the question, in [0, 1]; 0 when no sentence shares
    a word with the question (there is nothing to quote)."""
    if not features.get("coverage"):
        return 0.0
    model = next((m for m in MODELS if m.applies_to(features)), TEXT_MODEL)
    probability = model.probability(features)
    if missing_names:
        probability *= MISSING_NAME_FACTOR
    dense_top = features.get("dense_top")
    coverage = features.get("coverage") or 0.0
    if dense_top is not None and dense_top < OFF_TOPIC_COSINE and coverage < ON_TOPIC_COVERAGE:
        probability *= OFF_TOPIC_FACTOR
    return probability
