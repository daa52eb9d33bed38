"""Questions over two long real documents: the Uber and Lyft 10-K filings for 2021.

A new user's test: upload the two annual reports (307 and 238 pages, full of tables) and ask
for headcounts, revenue and net loss. Two levels are measured:

- extraction (``check_extraction``): each known fact is clean text on its physical page, a
  sentence whole or a table row with its cells in order ("Revenue | $13,000 | $11,139 | $17,455");
- answers (``check_filings``): the PDFs go through the project's own extract -> chunk -> embed ->
  index path in-process, and each question is asked through ``QueryService``. Answerable
  questions are scored on answering, on the expected value being in the answer text, and on
  citing an expected page; unanswerable ones (facts neither filing states, checked by reading
  the text) on abstaining.

Every expected value and page was read off the extracted text (2026-12-04); figures are in
millions (Uber) and thousands (Lyft), as the filings print them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from docket.models import ChunkRecord, ExtractedDocument, Principal

if TYPE_CHECKING:
    from docket.config import Settings
    from docket.embedding.port import Embedder
    from docket.query import QueryService
    from docket.search.embedded import EmbeddedIndex

FILINGS_DIR = "documents/real_world"
UBER = "uber_2021.pdf"
LYFT = "lyft_2021.pdf"
FILINGS = (UBER, LYFT)
TENANT = "eval"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Fact:
    """Text that must be on ``page`` of ``filing`` once extracted (whitespace-normalised; a
    one-line text may wrap over lines, a text with line breaks must keep them)."""

    id: str
    filing: str
    page: int
    text: str


EXTRACTION_FACTS: tuple[Fact, ...] = (
    Fact(
        "lyft-employees",
        LYFT,
        12,
        "As of December 31, 2021, we had 4,453 employees in approximately 119 offices",
    ),
    Fact(
        "uber-employees",
        UBER,
        10,
        "We are a global company and as of December 31, 2021, we and our subsidiaries had"
        " approximately 29,300 employees globally",
    ),
    Fact("uber-revenue-header", UBER, 77, "Year Ended December 31,\n2019 | 2020 | 2021\nRevenue"),
    Fact("uber-revenue-row", UBER, 77, "Revenue | $13,000 | $11,139 | $17,455"),
    Fact("uber-highlights-row", UBER, 53, "Revenue | $11,139 | $17,455 | 57% | 54%"),
    Fact(
        "uber-net-loss-row",
        UBER,
        77,
        "Net loss attributable to Uber Technologies, Inc. | $(8,506) | $(6,768) | $(496)",
    ),
    Fact("lyft-revenue-header", LYFT, 79, "Year Ended December 31,\n2021 | 2020 | 2019\nRevenue"),
    Fact("lyft-revenue-row", LYFT, 79, "Revenue | $3,208,323 | $2,364,681 | $3,615,960"),
    Fact("lyft-net-loss-row", LYFT, 79, "Net loss | $(1,009,359) | $(1,752,857) | $(2,602,241)"),
    Fact(
        "uber-revenue-sentence",
        UBER,
        53,
        "Revenue was $17.5 billion, or up 57% year-over-year, reflecting the overall growth",
    ),
)


@dataclass(frozen=True, slots=True)
class FilingQuestion:
    """``answers``: any one of them in the answer text is right; empty: the files cannot say."""

    id: str
    question: str
    filing: str | None = None
    answers: tuple[str, ...] = ()
    pages: tuple[int, ...] = ()

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _phrasings(
    fact: str, filing: str, answers: tuple[str, ...], pages: tuple[int, ...], *questions: str
) -> list[FilingQuestion]:
    return [
        FilingQuestion(f"{fact}-{n}", question, filing, answers, pages)
        for n, question in enumerate(questions, start=1)
    ]


ANSWERABLE: tuple[FilingQuestion, ...] = (
    *_phrasings(
        "lyft-employees",
        LYFT,
        ("4,453",),
        (12, 29),
        "How many employees did Lyft have at the end of 2021?",
        "What was Lyft's headcount as of December 31, 2021?",
        "How many people did Lyft employ in 2021?",
    ),
    *_phrasings(
        "uber-employees",
        UBER,
        ("29,300",),
        (10, 21),
        "How many employees did Uber have at the end of 2021?",
        "What was Uber's global headcount as of December 31, 2021?",
        "How many people worked for Uber and its subsidiaries in 2021?",
    ),
    *_phrasings(
        "uber-revenue",
        UBER,
        ("17,455", "17.5 billion"),
        (53, 56, 57, 60, 77, 98, 129),
        "What was Uber's revenue in 2021?",
        "How much revenue did Uber Technologies report for the year ended December 31, 2021?",
        "What were Uber's total revenues for fiscal year 2021?",
    ),
    *_phrasings(
        "lyft-revenue",
        LYFT,
        ("3,208,323", "3.2 billion", "3,208.3"),
        (56, 63, 69, 79, 86),
        "What was Lyft's revenue in 2021?",
        "How much total revenue did Lyft report for the year ended December 31, 2021?",
        "What were Lyft's revenues for fiscal year 2021?",
    ),
    *_phrasings(
        "uber-net-loss",
        UBER,
        ("496",),
        (53, 56, 65, 77, 126),
        "What was Uber's net loss in 2021?",
        "How much net loss attributable to Uber Technologies did Uber report for 2021?",
        "How much money did Uber lose in 2021?",
    ),
    *_phrasings(
        "lyft-net-loss",
        LYFT,
        ("1,009,359", "1.0 billion", "1,009.4"),
        (56, 63, 70, 71, 79, 80, 83, 121),
        "What was Lyft's net loss in 2021?",
        "How much net loss did Lyft report for the year ended December 31, 2021?",
        "How much money did Lyft lose in 2021?",
    ),
)

# Neither filing states these (read in the extracted text: Tesla and DoorDash appear only as
# competitors; Lyft gives its headcount for 2017 and 2021 only; no revenue before 2019).
UNANSWERABLE: tuple[FilingQuestion, ...] = (
    FilingQuestion("tesla-revenue", "What was Tesla's revenue in 2021?"),
    FilingQuestion("tesla-employees", "How many employees did Tesla have at the end of 2021?"),
    FilingQuestion("doordash-revenue", "What was DoorDash's revenue in 2021?"),
    FilingQuestion("lyft-employees-2015", "How many employees did Lyft have in 2015?"),
    FilingQuestion("lyft-revenue-2016", "What was Lyft's revenue in 2016?"),
    FilingQuestion("amazon-net-income", "What was Amazon's net income in 2021?"),
)

QUESTIONS: tuple[FilingQuestion, ...] = ANSWERABLE + UNANSWERABLE


# --- extraction ---------------------------------------------------------------------------------


def _normal(text: str) -> str:
    """Runs of spaces as one space, lines kept (a table row is a line)."""
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def extract_filings(directory: Path) -> dict[str, ExtractedDocument]:
    """Each filing through ``extract_document``, as an upload would be."""
    from docket.extract import extract_document

    return {name: extract_document((directory / name).read_bytes(), name) for name in FILINGS}


def fact_pages(documents: Mapping[str, ExtractedDocument], fact: Fact) -> list[int]:
    """The pages of ``fact.filing`` that hold ``fact.text`` (right when it holds ``fact.page``)."""
    needle = _normal(fact.text)

    def holds(text: str) -> bool:
        if "\n" in needle:
            return needle in _normal(text)
        return needle in " ".join(text.split())

    return [page.number for page in documents[fact.filing].pages if holds(page.text)]


def check_extraction(documents: Mapping[str, ExtractedDocument]) -> dict[str, bool]:
    """Fact id -> whether its text is on its page."""
    return {fact.id: fact.page in fact_pages(documents, fact) for fact in EXTRACTION_FACTS}


# --- indexing and asking ------------------------------------------------------------------------


def chunk_filings(
    documents: Mapping[str, ExtractedDocument], settings: Settings
) -> list[ChunkRecord]:
    """Chunks as the ingest path makes them; ``source`` is the file name, the title the
    filing's own or its file name."""
    from docket.evaluation.indexing import chunk_documents

    titled = (
        (name, doc if doc.title else doc.model_copy(update={"title": name}))
        for name, doc in documents.items()
    )
    return chunk_documents(titled, settings, tenant=TENANT)


def index_filings(
    documents: Mapping[str, ExtractedDocument],
    *,
    settings: Settings,
    embedder: Embedder,
    directory: Path,
    progress: Progress | None = None,
) -> tuple[EmbeddedIndex, int]:
    """An embedded index of the filings' chunks; returns it and the number of chunks."""
    from docket.evaluation.indexing import embed_chunks, index_chunks

    chunks = chunk_filings(documents, settings)
    vectors = embed_chunks(embedder, chunks, progress=progress)
    return index_chunks(chunks, vectors, embedder.model, directory), len(chunks)


def query_service(settings: Settings, index: EmbeddedIndex, embedder: Embedder) -> QueryService:
    """The ask path as ``get_query_service`` builds it, over ``index``."""
    from docket.answer.factory import build_answerers
    from docket.query import QueryService
    from docket.rerank.factory import get_reranker
    from docket.search.retrieval import retriever_for

    retriever = retriever_for(settings, index, embedder)
    return QueryService(
        settings, retriever, build_answerers(settings), reranker=get_reranker(settings)
    )


@dataclass(frozen=True, slots=True)
class FilingOutcome:
    question_id: str
    question: str
    found: bool
    correct: bool  # an expected value is in the answer text
    cites_page: bool  # a citation covers an expected page of the expected filing
    retrieved_page: bool  # a retrieved chunk (top 10) covers one, answered or not
    answer: str
    cited: tuple[str, ...]  # "file p.N" of each citation
    latency_ms: float


class FilingsFigures(BaseModel):
    answerable: int
    answered: float = Field(description="share of answerable questions with a found answer")
    correct: float = Field(description="share of answerable questions whose answer has the value")
    cites_page: float = Field(description="share of answerable questions citing an expected page")
    retrieved_page: float = Field(
        description="share of answerable questions with an expected page among the chunks retrieved"
    )
    unanswerable: int
    abstained: float = Field(description="share of unanswerable questions not answered")
    answer_chars_p50: float = Field(
        description="median length of the found answers: a long quote can hold a value by chance"
    )
    latency_ms_p50: float
    outcomes: list[FilingOutcome] = Field(default_factory=list, exclude=True)


def _ask(service: QueryService, principal: Principal, question: FilingQuestion) -> FilingOutcome:
    from docket.query import QueryRequest

    started = time.perf_counter()
    response = service.ask(principal, QueryRequest(question=question.question))
    latency = (time.perf_counter() - started) * 1000
    answer = _normal(response.answer)

    def covers(source: str, start: int, end: int) -> bool:
        return source == question.filing and any(start <= page <= end for page in question.pages)

    cites_page = any(covers(c.source, c.page_start, c.page_end) for c in response.citations)
    retrieved = any(covers(c.source, c.page_start, c.page_end) for c in response.chunks)
    return FilingOutcome(
        question_id=question.id,
        question=question.question,
        found=response.found,
        correct=response.found and any(value in answer for value in question.answers),
        cites_page=response.found and cites_page,
        retrieved_page=retrieved,
        answer=response.answer,
        cited=tuple(
            f"{c.source} p.{c.page_start}"
            + (f"-{c.page_end}" if c.page_end != c.page_start else "")
            for c in response.citations
        ),
        latency_ms=latency,
    )


def _share(count: int, total: int) -> float:
    return round(count / total, 3) if total else 0.0


def check_filings(
    service: QueryService,
    questions: Sequence[FilingQuestion] = QUESTIONS,
    *,
    progress: Progress | None = None,
) -> FilingsFigures:
    principal = Principal(subject="eval", tenant=TENANT)
    outcomes = []
    for done, question in enumerate(questions, start=1):
        outcomes.append(_ask(service, principal, question))
        if progress:
            progress(done, len(questions))
    by_id = {q.id: q for q in questions}
    answerable = [o for o in outcomes if by_id[o.question_id].answerable]
    unanswerable = [o for o in outcomes if not by_id[o.question_id].answerable]
    found = [len(o.answer) for o in outcomes if o.found]
    return FilingsFigures(
        answerable=len(answerable),
        answered=_share(sum(o.found for o in answerable), len(answerable)),
        correct=_share(sum(o.correct for o in answerable), len(answerable)),
        cites_page=_share(sum(o.cites_page for o in answerable), len(answerable)),
        retrieved_page=_share(sum(o.retrieved_page for o in answerable), len(answerable)),
        unanswerable=len(unanswerable),
        abstained=_share(sum(not o.found for o in unanswerable), len(unanswerable)),
        answer_chars_p50=statistics.median(found) if found else 0.0,
        latency_ms_p50=(
            round(statistics.median(o.latency_ms for o in outcomes), 2) if outcomes else 0.0
        ),
        outcomes=outcomes,
    )
