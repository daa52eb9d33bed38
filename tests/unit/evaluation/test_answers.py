"""``docket eval answers`` on hand-made data: a tiny BEIR folder, hand-made RGB records, the
hashing embedder (no model) and the extractive answerer."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from docket.answer.factory import build_answerers
from docket.answer.verify import CitationVerifier
from docket.config import Settings
from docket.embedding.hashing import HashingEmbedder
from docket.evaluation.answers import (
    AskOutcome,
    CounterfactualRecord,
    Label,
    QueryServiceWithout,
    check_answerable,
    check_citations,
    check_counterfactual,
    check_unanswerable,
    index_counterfactual,
    load_counterfactual,
    mentions,
    states,
    verdict,
)
from docket.evaluation.beir import BeirDataset, DatasetError, load_beir
from docket.evaluation.indexing import EVAL_TENANT, IndexedCorpus, build_index
from docket.models import Citation, Principal, document_id_for
from docket.query import QueryFilters, QueryResponse, QueryService, RetrievedChunk
from docket.search.retrieval import retriever_for

PRINCIPAL = Principal(subject="eval", tenant=EVAL_TENANT)

CORPUS = [
    {
        "_id": "refunds",
        "title": "Refund policy",
        "text": "Refunds for returned laptops are issued within fourteen days of receipt. "
        "The refund goes back to the original card.",
    },
    {
        "_id": "volcano",
        "title": "Volcanology",
        "text": "Basaltic lava erupts at temperatures near 1200 degrees Celsius. "
        "Pyroclastic flows travel down the slopes of stratovolcanoes.",
    },
    {
        "_id": "bees",
        "title": "Pollinators",
        "text": "Honey bees communicate the direction of flowers with a waggle dance. "
        "A colony overwinters as a cluster around its queen.",
    },
    {
        "_id": "tides",
        "title": "Oceanography",
        "text": "Spring tides occur when the sun and moon align with the earth. "
        "Neap tides are the weakest tides of the lunar month.",
    },
]
QUERIES = {
    "q1": "Refunds for returned laptops are issued within fourteen days.",
    "q2": "Honey bees communicate the direction of flowers with a waggle dance.",
}
QRELS = {"q1": "refunds", "q2": "bees"}


def write_beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in CORPUS) + "\n")
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t in QUERIES.items()) + "\n"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in QRELS.items())
    )
    return folder


RGB_RECORDS = [
    {
        "id": 0,
        "query": "Where was the 2021 Super Bowl played?",
        "answer": "Tampa, Florida",
        "fakeanswer": "Glendale, Arizona",
        "positive": ["The 2021 Super Bowl was played at Raymond James Stadium in Tampa, Florida."],
        "positive_wrong": [],
        "negative": ["Super Bowl ticket packages are on sale for fans in Las Vegas."],
    },
    {
        "id": 1,
        "query": "Which company acquired Instagram in 2012?",
        "answer": "Facebook",
        "fakeanswer": "Apple",
        "positive": [],
        "positive_wrong": ["Apple acquired Instagram in 2012 for one billion dollars."],
        "negative": ["Instagram filters became popular with smartphone photographers."],
    },
    {
        "id": 2,
        "query": "Who composed the opera Turandot?",
        "answer": "Giacomo Puccini",
        "fakeanswer": "Giuseppe Verdi",
        "positive": [],
        "positive_wrong": [],
        "negative": ["The marathon route crosses five bridges of the city."],
    },
]


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, embedding_provider="hash")  # type: ignore[call-arg]


@pytest.fixture
def beir(tmp_path: Path) -> BeirDataset:
    return load_beir(write_beir(tmp_path / "tiny"), "test")


@pytest.fixture
def indexed(beir: BeirDataset, settings: Settings, tmp_path: Path) -> Iterator[IndexedCorpus]:
    corpus = build_index(
        list(beir.corpus.values()),
        settings=settings,
        embedder=HashingEmbedder(),
        directory=tmp_path / "index",
    )
    yield corpus
    corpus.index.close()


@pytest.fixture
def service(indexed: IndexedCorpus, settings: Settings) -> QueryService:
    retriever = retriever_for(settings, indexed.index, HashingEmbedder())
    return QueryService(settings, retriever, build_answerers(settings))


def chunk(chunk_id: str, text: str) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=chunk_id,
        document_id=document_id_for(EVAL_TENANT, chunk_id),
        source=chunk_id,
        page_start=1,
        page_end=1,
        text=text,
        score=1.0,
    )


def citation(number: int, chunk_id: str) -> Citation:
    return Citation(
        number=number,
        document_id=document_id_for(EVAL_TENANT, chunk_id),
        chunk_id=chunk_id,
        source=chunk_id,
        page_start=1,
        page_end=1,
        quote="",
    )


def response(answer: str, citations: list[Citation], chunks: list[RetrievedChunk]) -> QueryResponse:
    return QueryResponse(
        question="q",
        found=True,
        answer=answer,
        confidence=1.0,
        citations=citations,
        chunks=chunks,
        mode="hybrid",
        embedding_model="m",
        timings_ms={},
    )


def outcome(text: str, *, found: bool = True, cited: tuple[str, ...] = ()) -> AskOutcome:
    return AskOutcome(
        question_id="0",
        found=found,
        text=text,
        sentences=1,
        supported=1,
        cited_sources=cited,
        latency_ms=1.0,
    )


# --- citation coverage ----------------------------------------------------------------------------


def test_a_sentence_counts_as_supported_only_by_the_chunk_it_cites() -> None:
    # Given an answer whose first sentence cites the chunk stating it and whose second cites a
    # chunk about something else
    chunks = [
        chunk("a", "Refunds are issued within fourteen days of receipt."),
        chunk("b", "Spring tides occur when the sun and moon align."),
    ]
    answer = (
        "Refunds are issued within fourteen days of receipt [1]. Bees dance to find flowers [2]."
    )

    # When the citations are checked
    claims = check_citations(
        response(answer, [citation(1, "a"), citation(2, "b")], chunks), CitationVerifier()
    ).claims

    # Then one sentence of two is supported
    assert [claim.supported for claim in claims] == [True, False]


def test_a_citation_of_a_chunk_that_was_not_retrieved_supports_nothing() -> None:
    # Given a sentence citing [1] whose chunk is not among the response's chunks
    answer = "Refunds are issued within fourteen days of receipt [1]."
    resp = response(answer, [citation(1, "missing")], [chunk("a", "unrelated text here")])

    # When / Then it is not supported
    assert not check_citations(resp, CitationVerifier()).claims[0].supported


def test_answerable_questions_are_answered_with_supported_citations_of_relevant_documents(
    service: QueryService, beir: BeirDataset
) -> None:
    # Given a tiny corpus where each question's relevant document states it verbatim
    # When the answerable check asks every question
    figures = check_answerable(service, PRINCIPAL, beir)

    # Then each is answered, every sentence is supported and cites the relevant document
    assert figures.questions == 2
    assert figures.answered == 1.0
    assert figures.sentences >= 2
    assert figures.citation_coverage == 1.0
    assert figures.fully_supported == 1.0
    assert figures.cites_relevant == 1.0


def test_the_llm_path_is_checked_the_same_way(
    indexed: IndexedCorpus, beir: BeirDataset, settings: Settings
) -> None:
    # Given the LLM answerer with the offline fake model (it echoes the extractive answer)
    llm = settings.model_copy(update={"answerer": "llm", "llm_provider": "fake"})
    retriever = retriever_for(llm, indexed.index, HashingEmbedder())
    service = QueryService(llm, retriever, build_answerers(llm))
    assert service.answerer_for(PRINCIPAL).name == "llm:fake-extractive-echo"

    # When the answerable check asks every question
    figures = check_answerable(service, PRINCIPAL, beir)

    # Then its renumbered citations are verified against the chunks they point at
    assert figures.answered == 1.0
    assert figures.citation_coverage == 1.0
    assert figures.cites_relevant == 1.0


def test_limit_asks_only_the_first_questions(service: QueryService, beir: BeirDataset) -> None:
    assert check_answerable(service, PRINCIPAL, beir, limit=1).questions == 1


# --- abstention -----------------------------------------------------------------------------------


def test_questions_abstain_once_their_relevant_documents_are_out_of_reach(
    service: QueryService, beir: BeirDataset, indexed: IndexedCorpus
) -> None:
    # Given the same questions, each with its relevant document excluded
    documents = {c.document_id for c in indexed.chunks}

    # When the unanswerable check asks them
    figures = check_unanswerable(service, PRINCIPAL, beir, documents)

    # Then every answer is "not found", and the shared index still holds every document
    assert figures.abstained == 1.0
    assert figures.false_answers == 0.0
    assert figures.excluded_documents == 2
    for corpus_id in QRELS.values():
        document_id = document_id_for(EVAL_TENANT, corpus_id)
        assert indexed.index.count_document(EVAL_TENANT, document_id) >= 1


def bare_service(settings: Settings) -> QueryService:
    """Enough of a service to build search filters (no retriever, no answerer)."""
    return QueryService(settings, retriever=None, answerer=None)


def test_the_exclusion_is_an_allow_list_of_the_other_documents(settings: Settings) -> None:
    # Given a service that puts one of three documents out of reach
    without = QueryServiceWithout(bare_service(settings), {"doc_a", "doc_b", "doc_c"})
    without.excluded = frozenset({"doc_b"})

    # When filters are built with and without the caller's own document filter
    plain = without.search_filter(PRINCIPAL, None)
    narrowed = without.search_filter(PRINCIPAL, QueryFilters(document_ids=["doc_a", "doc_b"]))

    # Then the excluded document is never let through, and the caller's filter still applies
    assert plain.document_ids == {"doc_a", "doc_c"}
    assert narrowed.document_ids == {"doc_a"}
    assert plain.tenant == EVAL_TENANT


def test_without_exclusions_the_filter_is_the_services_own(settings: Settings) -> None:
    service = bare_service(settings)
    without = QueryServiceWithout(service, {"doc_a"})
    assert without.search_filter(PRINCIPAL, None) == service.search_filter(PRINCIPAL, None)


# --- RGB scoring ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase", "expected"),
    [
        ("Played in  TAMPA,\nFlorida [1].", "Tampa, Florida", True),
        ("Released on Nov 10, 2020.", "Nov 1, 2020", False),
        ("Chloe Zhao won best director.", "Chloé Zhao", True),
        ("The U.S. came out on top.", "U.S.", True),
        ("Facebook's deal closed.", "Facebook", True),
        ("Applesauce prices rose.", "Apple", False),
        ("anything", "", False),
    ],
)
def test_mentions_matches_whole_words_with_case_space_and_accents_folded(
    text: str, phrase: str, expected: bool
) -> None:
    assert mentions(text, phrase) is expected


def test_a_list_answer_needs_every_item_and_any_alternative_of_each() -> None:
    alternatives: Label = [["July 21 2017", "Jul 21, 2017", "21 July 2017"]]
    assert states("It came out on 21 July 2017 worldwide.", alternatives)
    assert not states("It came out in July 2017.", alternatives)
    both: Label = ["Joe Biden", ["Kamala Harris", "Harris"]]
    assert states("Joe Biden and Harris won.", both)
    assert not states("Joe Biden won.", both)
    assert not states("anything", [])


def test_verdicts_tell_true_fake_both_neither_and_abstention() -> None:
    record = CounterfactualRecord(
        id=0, query="Who acquired Instagram?", answer="Facebook", fakeanswer="Apple"
    )
    assert verdict(outcome("Facebook acquired Instagram [1]."), record) == "true"
    assert verdict(outcome("Apple acquired Instagram [1]."), record) == "fake"
    assert verdict(outcome("Facebook bought it [1]. Apple bought it [2]."), record) == "both"
    assert verdict(outcome("Instagram is a photo app [1]."), record) == "neither"
    assert verdict(outcome("Facebook", found=False), record) == "abstained"


def test_markers_are_not_read_as_answers() -> None:
    record = CounterfactualRecord(id=0, query="How many?", answer="3", fakeanswer="1")
    assert verdict(outcome("There were 3 winners [1]."), record) == "true"


def test_counterfactual_questions_are_scored_each_under_its_own_tenant(
    settings: Settings, tmp_path: Path
) -> None:
    # Given one question whose passages state the true answer, one whose passages state only the
    # planted false one, and one whose passages are off topic, in one index, a tenant each
    records = [CounterfactualRecord.model_validate(r) for r in RGB_RECORDS]
    embedder = HashingEmbedder()
    index, passages = index_counterfactual(
        records, settings=settings, embedder=embedder, directory=tmp_path / "rgb"
    )
    try:
        service = QueryService(
            settings, retriever_for(settings, index, embedder), build_answerers(settings)
        )

        # When each is asked
        figures = check_counterfactual(service, records, passages=passages)
    finally:
        index.close()

    # Then the answers follow their own passages only
    assert passages == 5
    assert figures.verdicts == {"0": "true", "1": "fake", "2": "abstained"}
    assert figures.true_answer == pytest.approx(1 / 3)
    assert figures.fake_answer == pytest.approx(1 / 3)
    assert figures.abstained == pytest.approx(1 / 3)
    assert figures.both == 0.0
    assert figures.cites_planted == pytest.approx(1 / 2)
    cited = {o.question_id: o.cited_sources for o in figures.outcomes}
    assert cited["0"] == ("positive/0",)
    assert cited["1"] == ("positive_wrong/0",)


def test_rgb_lines_load_and_a_bad_line_says_where(tmp_path: Path) -> None:
    path = tmp_path / "en_fact.json"
    path.write_text("\n".join(json.dumps(r) for r in RGB_RECORDS) + "\n\n")
    assert [r.id for r in load_counterfactual(path)] == [0, 1, 2]
    assert len(load_counterfactual(path, limit=2)) == 2
    path.write_text('{"id": 0}\n')
    with pytest.raises(DatasetError, match=r"en_fact\.json:1"):
        load_counterfactual(path)


# --- the command ----------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    from docket.evaluation.cli import add_parser

    parser = argparse.ArgumentParser(prog="docket")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "answers", *argv])
    return int(args.func(args))


@pytest.fixture
def hash_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from docket.embedding.factory import reset_embedders

    monkeypatch.setenv("DOCKET_EMBEDDING_PROVIDER", "hash")
    monkeypatch.setenv("DOCKET_SHARED_DATA", str(tmp_path / "no-shared-data"))
    reset_embedders()


@pytest.mark.usefixtures("hash_env")
def test_the_command_writes_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a tiny BEIR folder and an RGB file
    dataset = write_beir(tmp_path / "tiny")
    rgb = tmp_path / "en_fact.json"
    rgb.write_text("\n".join(json.dumps(r) for r in RGB_RECORDS) + "\n")
    out = tmp_path / "answers.json"

    # When the command runs
    assert run_cli("--dataset", str(dataset), "--rgb", str(rgb), "--json", str(out)) == 0

    # Then the table is printed and the JSON holds the three checks' figures
    assert "citation coverage" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["answerer"] == "extractive"
    assert report["answerable"]["citation_coverage"] == 1.0
    assert report["unanswerable"]["abstained"] == 1.0
    assert report["counterfactual"]["questions"] == 3
    assert "outcomes" not in report["answerable"]


@pytest.mark.usefixtures("hash_env")
def test_the_command_skips_rgb_when_the_shared_file_is_absent(tmp_path: Path) -> None:
    out = tmp_path / "answers.json"
    assert run_cli("--dataset", str(write_beir(tmp_path / "tiny")), "--json", str(out)) == 0
    report = json.loads(out.read_text())
    assert report["counterfactual"] is None
    assert "RGB counterfactual" in report["skipped"]
    # the 10-K questions need the shared filings too: skipped, with the reason
    assert report["filings"] is None
    assert "not found" in report["skipped"]["10-K filings"]


@pytest.mark.usefixtures("hash_env")
def test_the_command_refuses_a_missing_rgb_file_or_a_bad_limit(tmp_path: Path) -> None:
    dataset = str(write_beir(tmp_path / "tiny"))
    assert run_cli("--dataset", dataset, "--rgb", str(tmp_path / "nope.json")) == 2
    assert run_cli("--dataset", dataset, "--limit", "0") == 2
