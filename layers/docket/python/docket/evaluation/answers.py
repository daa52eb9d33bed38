"""``docket eval answers``: answer-level checks of the ask path, in-process.

Every question goes through ``QueryService.ask`` (retrieve, rerank when configured, answer) with
the configured answerer: extractive by default; ``DOCKET_ANSWERER=llm DOCKET_LLM_PROVIDER=fake``
runs the LLM path (prompt, verifier, renumbering) offline. Three checks:

1. answerable: the BEIR test queries over the whole corpus. Each found answer is re-checked with
   ``CitationVerifier`` against the texts of the chunks it cites: citation coverage is the share
   of answer sentences that a cited chunk supports. Also the share answered, and the share of
   answers citing a relevant (qrels) document.
2. unanswerable: the same queries with their relevant documents out of reach; an answer should be
   "not found". The shared index is never written: the query's filter lets through every
   document but the query's relevant ones (an allow-list of the rest), which is what deleting
   them does to retrieval except that BM25's term statistics still count them. Checked once on
   SciFact test: deleting every relevant document from a private index gave an abstention rate
   of 0.650 against this one's 0.643, the same decision on 296 of 300 queries. The answerable
   pass runs first; the order does not matter since nothing is changed.
3. counterfactual (RGB, English ``en_fact``): one tenant per question in a small index holding its
   passages as documents: ``positive`` (state the true answer), ``positive_wrong`` (the same
   passages with the true answer replaced by a planted false one) and ``negative`` (on topic,
   no answer). The answer is matched against the true and the false answer: case, whitespace
   and accents folded, whole words; RGB answers may be lists, each item a list of alternatives,
   and every item must match (as RGB's own ``checkanswer``).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from docket.answer.verify import CitationVerifier, Verification, strip_markers
from docket.config import Settings
from docket.evaluation.beir import BeirDataset, DatasetError
from docket.evaluation.filings import FILINGS, FILINGS_DIR, FilingsFigures
from docket.models import (
    ChunkRecord,
    ExtractedDocument,
    Page,
    Principal,
    SearchFilter,
    chunk_id_for,
    document_id_for,
)
from docket.query import QueryFilters, QueryRequest, QueryResponse, QueryService

if TYPE_CHECKING:
    from docket.embedding.port import Embedder
    from docket.search.embedded import EmbeddedIndex

RGB_FILE = Path("rgb_counterfactual") / "en_fact.json"
RGB_KINDS: tuple[str, ...] = ("positive", "positive_wrong", "negative")

Progress = Callable[[int, int], None]  # (questions done, questions total)

# An RGB answer: a string, or a list whose items are strings or lists of alternatives.
Label = str | list[str | list[str]]


def shared_data_dir() -> Path:
    """DOCKET_SHARED_DATA, else ``../shared/data`` (relative to the working directory: the
    repository root, where the commands are run)."""
    return Path(os.environ.get("DOCKET_SHARED_DATA", Path("..") / "shared" / "data"))


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


# --- outcomes and figures ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AskOutcome:
    """One question's answer, as the checks read it."""

    question_id: str
    found: bool
    text: str
    sentences: int  # sentences of a found answer (0 when not found)
    supported: int  # of which a cited chunk supports
    cited_sources: tuple[str, ...]  # sources (corpus ids, passage names) of the citations
    latency_ms: float


class AnswerableFigures(BaseModel):
    questions: int
    answered: float = Field(description="share of questions with a found answer")
    sentences: int = Field(description="sentences in the found answers")
    citation_coverage: float = Field(
        description="share of those sentences that a cited chunk supports (CitationVerifier)"
    )
    fully_supported: float = Field(description="share of found answers with every sentence so")
    cites_relevant: float = Field(description="share of found answers citing a qrels document")
    latency_ms_p50: float
    outcomes: list[AskOutcome] = Field(default_factory=list, exclude=True)


class UnanswerableFigures(BaseModel):
    questions: int
    abstained: float = Field(description="share answered 'not found': the abstention rate")
    false_answers: float = Field(description="share answered anyway, from other documents")
    excluded_documents: int = Field(description="relevant documents put out of reach, in all")
    latency_ms_p50: float
    outcomes: list[AskOutcome] = Field(default_factory=list, exclude=True)


class CounterfactualFigures(BaseModel):
    questions: int
    passages: int
    true_answer: float = Field(description="share whose answer states the true answer")
    fake_answer: float = Field(description="share whose answer states the planted false answer")
    both: float = Field(description="share stating both: the conflict is in plain sight")
    abstained: float
    neither: float = Field(description="share answered with neither answer in the text")
    cites_planted: float = Field(description="share of found answers citing a planted passage")
    latency_ms_p50: float
    verdicts: dict[str, str] = Field(default_factory=dict, exclude=True)
    outcomes: list[AskOutcome] = Field(default_factory=list, exclude=True)


class AnswerReport(BaseModel):
    dataset: str
    split: str
    answerer: str
    embedding_model: str
    answerable: AnswerableFigures | None = None
    unanswerable: UnanswerableFigures | None = None
    counterfactual: CounterfactualFigures | None = None
    filings: FilingsFigures | None = None
    skipped: dict[str, str] = Field(default_factory=dict)


# --- asking ------------------------------------------------------------------------------------


def check_citations(response: QueryResponse, verifier: CitationVerifier) -> Verification:
    """Every sentence of the answer against the texts of the chunks it cites (``[n]`` is the
    citation numbered n); a citation whose chunk is not among the retrieved ones cites nothing."""
    texts = {chunk.chunk_id: chunk.text for chunk in response.chunks}
    by_number = {c.number: texts.get(c.chunk_id, "") for c in response.citations}
    sources = [by_number.get(n, "") for n in range(1, max(by_number, default=0) + 1)]
    return verifier.verify(response.answer, sources)


def ask(
    service: QueryService,
    principal: Principal,
    question_id: str,
    question: str,
    verifier: CitationVerifier,
) -> AskOutcome:
    started = time.perf_counter()
    response = service.ask(principal, QueryRequest(question=question))
    latency = (time.perf_counter() - started) * 1000
    sentences = supported = 0
    if response.found:
        claims = check_citations(response, verifier).claims
        sentences, supported = len(claims), sum(claim.supported for claim in claims)
    return AskOutcome(
        question_id=question_id,
        found=response.found,
        text=response.answer,
        sentences=sentences,
        supported=supported,
        cited_sources=tuple(dict.fromkeys(c.source for c in response.citations)),
        latency_ms=latency,
    )


def _p50(outcomes: Sequence[AskOutcome]) -> float:
    return round(statistics.median(o.latency_ms for o in outcomes), 2) if outcomes else 0.0


def _questions(dataset: BeirDataset, limit: int | None) -> list[tuple[str, str]]:
    items = list(dataset.queries.items())
    return items[:limit] if limit is not None else items


def check_answerable(
    service: QueryService,
    principal: Principal,
    dataset: BeirDataset,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> AnswerableFigures:
    verifier = CitationVerifier()
    questions = _questions(dataset, limit)
    outcomes = []
    for done, (query_id, text) in enumerate(questions, start=1):
        outcomes.append(ask(service, principal, query_id, text, verifier))
        if progress:
            progress(done, len(questions))
    found = [o for o in outcomes if o.found]
    sentences = sum(o.sentences for o in found)
    return AnswerableFigures(
        questions=len(outcomes),
        answered=_share(len(found), len(outcomes)),
        sentences=sentences,
        citation_coverage=_share(sum(o.supported for o in found), sentences),
        fully_supported=_share(
            sum(o.sentences > 0 and o.supported == o.sentences for o in found), len(found)
        ),
        cites_relevant=_share(
            sum(bool(dataset.relevant(o.question_id) & set(o.cited_sources)) for o in found),
            len(found),
        ),
        latency_ms_p50=_p50(outcomes),
        outcomes=outcomes,
    )


class QueryServiceWithout(QueryService):
    """``service``'s ask path with the documents in ``excluded`` out of reach: its search filter
    becomes an allow-list of the tenant's other ``documents``. Nothing is written to the index,
    so a shared index stays as it was."""

    def __init__(self, service: QueryService, documents: Iterable[str]) -> None:
        super().__init__(
            service.settings, service.retriever, service.answerer, reranker=service.reranker
        )
        self.documents = frozenset(documents)
        self.excluded: frozenset[str] = frozenset()

    def search_filter(self, principal: Principal, filters: QueryFilters | None) -> SearchFilter:
        flt = super().search_filter(principal, filters)
        if not self.excluded:
            return flt
        allowed = (flt.document_ids or self.documents) - self.excluded
        return flt.model_copy(update={"document_ids": frozenset(allowed)})


def check_unanswerable(
    service: QueryService,
    principal: Principal,
    dataset: BeirDataset,
    documents: Iterable[str],
    *,
    limit: int | None = None,
    progress: Progress | None = None,
) -> UnanswerableFigures:
    """Each query asked with its relevant documents out of reach. ``documents``: every document
    id of the principal's tenant (the allow-list is built from it)."""
    verifier = CitationVerifier()
    without = QueryServiceWithout(service, documents)
    questions = _questions(dataset, limit)
    outcomes = []
    excluded: set[str] = set()
    for done, (query_id, text) in enumerate(questions, start=1):
        without.excluded = frozenset(
            document_id_for(principal.tenant, corpus_id) for corpus_id in dataset.relevant(query_id)
        )
        excluded |= without.excluded
        outcomes.append(ask(without, principal, query_id, text, verifier))
        if progress:
            progress(done, len(questions))
    answered = sum(o.found for o in outcomes)
    return UnanswerableFigures(
        questions=len(outcomes),
        abstained=_share(len(outcomes) - answered, len(outcomes)),
        false_answers=_share(answered, len(outcomes)),
        excluded_documents=len(excluded),
        latency_ms_p50=_p50(outcomes),
        outcomes=outcomes,
    )


# --- RGB counterfactual ------------------------------------------------------------------------


class CounterfactualRecord(BaseModel):
    """One line of RGB's ``en_fact.json``."""

    id: int | str
    query: str
    answer: Label
    fakeanswer: Label
    positive: list[str] = Field(default_factory=list)
    positive_wrong: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)

    @property
    def tenant(self) -> str:
        return f"rgb-{str(self.id).lower()}"


def load_counterfactual(path: Path, limit: int | None = None) -> list[CounterfactualRecord]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing")
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(CounterfactualRecord.model_validate_json(line))
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: not an RGB record ({exc})") from exc
            if limit is not None and len(records) >= limit:
                break
    return records


def normalise(text: str) -> str:
    """Case, whitespace and accents folded ("Chloé" is "chloe")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def mentions(text: str, phrase: str) -> bool:
    """``phrase`` in ``text`` as whole words ("Nov 1, 2020" is not in "Nov 10, 2020"), both
    ``normalise``d."""
    wanted = normalise(phrase)
    if not wanted:
        return False
    return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", normalise(text)) is not None


def states(text: str, label: Label) -> bool:
    """RGB's rule: every item of the label is in the text; an item that is a list is a set of
    alternatives (any one will do)."""
    items = label if isinstance(label, list) else [label]
    return bool(items) and all(
        any(mentions(text, alt) for alt in (item if isinstance(item, list) else [item]))
        for item in items
    )


def verdict(outcome: AskOutcome, record: CounterfactualRecord) -> str:
    """``abstained``, ``true``, ``fake``, ``both`` or ``neither``."""
    if not outcome.found:
        return "abstained"
    text = strip_markers(outcome.text)
    true, fake = states(text, record.answer), states(text, record.fakeanswer)
    if true and fake:
        return "both"
    return "true" if true else "fake" if fake else "neither"


def passage_source(kind: str, number: int) -> str:
    return f"{kind}/{number}"


def counterfactual_chunks(
    records: Sequence[CounterfactualRecord], settings: Settings
) -> list[ChunkRecord]:
    """Each passage a document (source ``positive/0``...) under its question's tenant, chunked as
    the ingest path chunks a text file."""
    from docket.chunking import chunker_for

    chunker = chunker_for(settings)
    chunks = []
    for record in records:
        for kind in RGB_KINDS:
            for number, passage in enumerate(getattr(record, kind)):
                if not passage.strip():
                    continue
                source = passage_source(kind, number)
                document_id = document_id_for(record.tenant, source)
                extracted = ExtractedDocument(format="text", pages=[Page(number=1, text=passage)])
                for draft in chunker.chunk(extracted):
                    chunks.append(
                        ChunkRecord(
                            tenant=record.tenant,
                            document_id=document_id,
                            chunk_id=chunk_id_for(document_id, draft.text),
                            ordinal=draft.ordinal,
                            text=draft.text,
                            page_start=draft.page_start,
                            page_end=draft.page_end,
                            section=draft.section,
                            token_count=draft.token_count,
                            source=source,
                        )
                    )
    return chunks


def index_counterfactual(
    records: Sequence[CounterfactualRecord],
    *,
    settings: Settings,
    embedder: Embedder,
    directory: Path,
    cache_dir: Path | None = None,
) -> tuple[EmbeddedIndex, int]:
    """One index, one tenant per question; returns it and the number of chunks."""
    from docket.evaluation.indexing import embed_chunks
    from docket.search.embedded import EmbeddedIndex

    chunks = counterfactual_chunks(records, settings)
    vectors = embed_chunks(embedder, chunks, cache_dir=cache_dir)
    index = EmbeddedIndex(Path(directory), embedder.model)
    try:
        index.upsert(chunks, vectors)
        index.commit()
    except BaseException:
        index.close()
        raise
    return index, len(chunks)


def check_counterfactual(
    service: QueryService,
    records: Sequence[CounterfactualRecord],
    *,
    passages: int = 0,
    progress: Progress | None = None,
) -> CounterfactualFigures:
    """Each record asked under its own tenant, over an index ``index_counterfactual`` built."""
    verifier = CitationVerifier()
    outcomes = []
    verdicts: dict[str, str] = {}
    for done, record in enumerate(records, start=1):
        principal = Principal(subject="eval", tenant=record.tenant)
        outcome = ask(service, principal, str(record.id), record.query, verifier)
        outcomes.append(outcome)
        verdicts[outcome.question_id] = verdict(outcome, record)
        if progress:
            progress(done, len(records))
    counts = {v: sum(x == v for x in verdicts.values()) for v in ("true", "fake", "both")}
    found = [o for o in outcomes if o.found]
    planted = sum(any(s.startswith("positive_wrong/") for s in o.cited_sources) for o in found)
    total = len(outcomes)
    return CounterfactualFigures(
        questions=total,
        passages=passages,
        true_answer=_share(counts["true"] + counts["both"], total),
        fake_answer=_share(counts["fake"] + counts["both"], total),
        both=_share(counts["both"], total),
        abstained=_share(total - len(found), total),
        neither=_share(sum(v == "neither" for v in verdicts.values()), total),
        cites_planted=_share(planted, len(found)),
        latency_ms_p50=_p50(outcomes),
        verdicts=verdicts,
        outcomes=outcomes,
    )


# --- report ------------------------------------------------------------------------------------


def table_rows(report: AnswerReport) -> list[tuple[str, str, str]]:
    """(check, figure, value) rows of the console table."""
    rows: list[tuple[str, str, str]] = []
    if report.answerable:
        a = report.answerable
        check = f"answerable ({a.questions})"
        rows += [
            (check, "answered", f"{a.answered:.3f}"),
            (check, "citation coverage (sentences supported)", f"{a.citation_coverage:.3f}"),
            (check, "answers fully supported", f"{a.fully_supported:.3f}"),
            (check, "answers citing a relevant document", f"{a.cites_relevant:.3f}"),
            (check, "latency ms p50", f"{a.latency_ms_p50:.1f}"),
        ]
    if report.unanswerable:
        u = report.unanswerable
        check = f"unanswerable ({u.questions})"
        rows += [
            (check, "abstained (not found)", f"{u.abstained:.3f}"),
            (check, "false answers", f"{u.false_answers:.3f}"),
        ]
    if report.counterfactual:
        c = report.counterfactual
        check = f"RGB counterfactual ({c.questions})"
        rows += [
            (check, "states the true answer", f"{c.true_answer:.3f}"),
            (check, "states the planted false answer", f"{c.fake_answer:.3f}"),
            (check, "states both", f"{c.both:.3f}"),
            (check, "abstained", f"{c.abstained:.3f}"),
            (check, "states neither", f"{c.neither:.3f}"),
            (check, "found answers citing a planted passage", f"{c.cites_planted:.3f}"),
        ]
    if report.filings:
        f = report.filings
        check = f"10-K filings, answerable ({f.answerable})"
        rows += [
            (check, "answered", f"{f.answered:.3f}"),
            (check, "the expected value in the answer", f"{f.correct:.3f}"),
            (check, "an expected page cited", f"{f.cites_page:.3f}"),
            (check, "an expected page retrieved", f"{f.retrieved_page:.3f}"),
            (f"10-K filings, unanswerable ({f.unanswerable})", "abstained", f"{f.abstained:.3f}"),
        ]
    rows += [(check, "skipped", why) for check, why in report.skipped.items()]
    return rows


def print_report(report: AnswerReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"answers: {report.dataset} {report.split}, {report.answerer} answerer")
    table.add_column("check")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for row in table_rows(report):
        table.add_row(*row)
    Console().print(table)


# --- the command -------------------------------------------------------------------------------


def add_answers_parser(esub: Any) -> None:
    a = esub.add_parser(
        "answers",
        help="citation coverage, abstention and robustness to planted false passages",
    )
    a.add_argument("--dataset", type=Path, required=True, help="a BEIR-layout folder")
    a.add_argument("--split", default="test", help="qrels/SPLIT.tsv (default: test)")
    a.add_argument(
        "--rgb",
        type=Path,
        help="RGB's en_fact.json (default: $DOCKET_SHARED_DATA or ../shared/data, "
        f"{RGB_FILE}; skipped when absent)",
    )
    a.add_argument(
        "--filings",
        type=Path,
        help="the folder holding uber_2021.pdf and lyft_2021.pdf for the 10-K questions "
        f"(default: $DOCKET_SHARED_DATA or ../shared/data, {FILINGS_DIR}; skipped when absent)",
    )
    a.add_argument("--json", type=Path, help="write the figures as JSON here")
    a.add_argument("--limit", type=int, help="ask only the first N questions of each check")
    a.add_argument(
        "--embedding-cache",
        type=Path,
        help="development only: reuse chunk vectors computed by an earlier run with this folder",
    )
    a.set_defaults(func=cmd_eval_answers)


def _answerer_name(settings: Settings) -> str:
    if settings.answerer == "llm":
        return f"llm ({settings.llm_provider})"
    return settings.answerer


def cmd_eval_answers(args: argparse.Namespace) -> int:
    from docket.answer.factory import build_answerers
    from docket.embedding.factory import get_embedder
    from docket.evaluation.beir import load_beir
    from docket.evaluation.indexing import EVAL_TENANT, build_index
    from docket.evaluation.report import write_json
    from docket.rerank.factory import get_reranker
    from docket.search.retrieval import retriever_for

    if args.limit is not None and args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return 2
    rgb_path: Path = args.rgb or shared_data_dir() / RGB_FILE
    if args.rgb is not None and not args.rgb.is_file():
        print(f"{args.rgb} is missing", file=sys.stderr)
        return 2
    settings = Settings()
    dataset = load_beir(args.dataset, args.split)
    embedder = get_embedder(settings)
    answerers = build_answerers(settings)
    reranker = get_reranker(settings)
    report = AnswerReport(
        dataset=dataset.name,
        split=args.split,
        answerer=_answerer_name(settings),
        embedding_model=embedder.model.tag,
    )
    principal = Principal(subject="eval", tenant=EVAL_TENANT)
    from docket.evaluation.cli import _progress

    with tempfile.TemporaryDirectory(prefix="docket-eval-answers-") as scratch, _progress() as bar:

        def stage(description: str) -> Progress:
            task = bar.add_task(description, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        indexed = build_index(
            list(dataset.corpus.values()),
            settings=settings,
            embedder=embedder,
            directory=Path(scratch) / "beir",
            progress=stage(f"indexing {dataset.name}"),
            cache_dir=args.embedding_cache,
        )
        try:
            service = QueryService(
                settings, retriever_for(settings, indexed.index, embedder), answerers, reranker
            )
            report.answerable = check_answerable(
                service, principal, dataset, limit=args.limit, progress=stage("answerable")
            )
            report.unanswerable = check_unanswerable(
                service,
                principal,
                dataset,
                {c.document_id for c in indexed.chunks},
                limit=args.limit,
                progress=stage("unanswerable"),
            )
        finally:
            indexed.index.close()

        if rgb_path.is_file():
            records = load_counterfactual(rgb_path, args.limit)
            index, passages = index_counterfactual(
                records,
                settings=settings,
                embedder=embedder,
                directory=Path(scratch) / "rgb",
                cache_dir=args.embedding_cache,
            )
            try:
                service = QueryService(
                    settings, retriever_for(settings, index, embedder), answerers, reranker
                )
                report.counterfactual = check_counterfactual(
                    service, records, passages=passages, progress=stage("RGB counterfactual")
                )
            finally:
                index.close()
        else:
            report.skipped["RGB counterfactual"] = f"{rgb_path} not found (--rgb)"

        filings_dir: Path = args.filings or shared_data_dir() / FILINGS_DIR
        if all((filings_dir / name).is_file() for name in FILINGS):
            from docket.evaluation.filings import check_filings, extract_filings, index_filings
            from docket.evaluation.filings import query_service as filings_service

            documents = extract_filings(filings_dir)
            index, _ = index_filings(
                documents,
                settings=settings,
                embedder=embedder,
                directory=Path(scratch) / "filings",
                progress=stage("indexing the 10-K filings"),
            )
            try:
                report.filings = check_filings(
                    filings_service(settings, index, embedder), progress=stage("10-K questions")
                )
            finally:
                index.close()
        else:
            report.skipped["10-K filings"] = f"{', '.join(FILINGS)} not found in {filings_dir}"
    print_report(report)
    if args.json:
        write_json(args.json, report.model_dump(mode="json"))
        print(f"wrote {args.json}")
    return 0
