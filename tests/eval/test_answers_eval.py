"""Answer-level figures of the ask path (``docket eval answers``) on SciFact and RGB.

SciFact runs on the session's ``scifact_index`` (built once, never written here: the unanswerable
check puts documents out of reach with a filter). RGB's counterfactual split gets a small index
of its own (about 1,400 passages, ~25 s to embed on two cores).

Measured with the extractive answerer (answerability model and threshold 0.50 fit on SciFact
train, docket/answer/answerability.py; table rows and linked names, docket/answer/tables.py),
all-MiniLM-L6-v2 int8, hybrid retrieval (2026-12-05):

    SciFact test (300)  answered 0.600, citation coverage 1.000, fully supported 1.000, citing a
                        relevant document 0.817 of the answered
    relevant removed    abstained 0.707 (false answers 0.293)
    MS MARCO mini (43)  answered 0.860, citing a relevant passage 1.000; with every judged
                        passage out of reach, abstained 0.907
    RGB en_fact (100)   true answer 0.43, planted false answer 0.42 (both 0.20), abstained 0.05,
                        neither 0.30; 0.45 of the answers cite a planted passage

The same run without the table rows and name linking: SciFact answered 0.617, citing relevant
0.789, abstained 0.710; MS MARCO mini unchanged; RGB true 0.44, false 0.43, abstained 0.04.
Before the answerability model (hand-weighted confidence, threshold 0.40): SciFact answered
0.660, citing relevant 0.788, abstained 0.643; MS MARCO mini answered 0.953, abstained 0.953;
RGB true 0.47, false 0.37, abstained 0.02. Floors sit a few points below. The extractive
answerer quotes verbatim, so coverage is ~1 by
construction; it still is measured, with the same verifier the LLM answerer uses. It has no notion
of which source is right: on RGB it quotes planted passages nearly as often as true ones, and the
test only holds the false answer below the true one, as measured.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from docket.config import Settings
from docket.evaluation.answers import (
    RGB_FILE,
    CounterfactualFigures,
    check_answerable,
    check_counterfactual,
    check_unanswerable,
    index_counterfactual,
    load_counterfactual,
)
from docket.evaluation.beir import BeirDataset
from docket.evaluation.indexing import EVAL_TENANT, IndexedCorpus
from docket.models import Principal
from docket.query import QueryService
from tests.eval import EVAL_MARKS

pytestmark = EVAL_MARKS

PRINCIPAL = Principal(subject="eval", tenant=EVAL_TENANT)


def query_service(settings: Settings, index: object) -> QueryService:
    """The ask path as ``get_query_service`` builds it, over ``index``."""
    from docket.answer.factory import build_answerers
    from docket.embedding.factory import get_embedder
    from docket.rerank.factory import get_reranker
    from docket.search.retrieval import retriever_for

    retriever = retriever_for(settings, index, get_embedder(settings))  # type: ignore[arg-type]
    return QueryService(
        settings, retriever, build_answerers(settings), reranker=get_reranker(settings)
    )


@pytest.fixture(scope="module")
def scifact_service(scifact_index: IndexedCorpus, eval_settings: Settings) -> QueryService:
    return query_service(eval_settings, scifact_index.index)


@pytest.fixture(scope="module")
def rgb_figures(
    shared_data: Path, eval_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CounterfactualFigures]:
    from docket.embedding.factory import get_embedder

    path = shared_data / RGB_FILE
    if not path.is_file():
        pytest.skip(f"RGB counterfactual split not found at {path}")
    records = load_counterfactual(path)
    index, passages = index_counterfactual(
        records,
        settings=eval_settings,
        embedder=get_embedder(eval_settings),
        directory=tmp_path_factory.mktemp("rgb") / "index",
    )
    try:
        yield check_counterfactual(query_service(eval_settings, index), records, passages=passages)
    finally:
        index.close()


def test_answers_to_scifact_claims_cite_chunks_that_support_them(
    scifact_service: QueryService, scifact_test: BeirDataset
) -> None:
    figures = check_answerable(scifact_service, PRINCIPAL, scifact_test)
    print(figures.model_dump())

    assert figures.questions == 300
    assert figures.citation_coverage >= 0.95
    assert figures.fully_supported >= 0.95
    assert figures.answered >= 0.57
    assert figures.cites_relevant >= 0.77


def test_scifact_claims_without_their_relevant_abstracts_are_mostly_not_found(
    scifact_service: QueryService, scifact_test: BeirDataset, scifact_index: IndexedCorpus
) -> None:
    documents = {chunk.document_id for chunk in scifact_index.chunks}
    figures = check_unanswerable(scifact_service, PRINCIPAL, scifact_test, documents)
    print(figures.model_dump())

    assert figures.questions == 300
    assert figures.abstained >= 0.68
    # the shared index is untouched: every document is still there
    assert scifact_index.index.matching_rows(
        scifact_service.search_filter(PRINCIPAL, None)
    ).size == (len(scifact_index.chunks))


def test_web_questions_are_answered_and_abstain_without_their_passages(
    msmarco_mini: tuple[BeirDataset, IndexedCorpus], eval_settings: Settings
) -> None:
    # Given MS MARCO mini's judged web questions over its 5,000 passages
    dataset, indexed = msmarco_mini
    service = query_service(eval_settings, indexed.index)
    documents = {chunk.document_id for chunk in indexed.chunks}
    # When they are asked over the whole corpus, then with every judged passage out of reach
    answerable = check_answerable(service, PRINCIPAL, dataset)
    unanswerable = check_unanswerable(service, PRINCIPAL, dataset, documents)
    print(answerable.model_dump(), unanswerable.model_dump())
    # Then most are answered from relevant passages, and most abstain without them
    assert answerable.questions == 43
    assert answerable.answered >= 0.80
    assert answerable.cites_relevant >= 0.95
    assert answerable.citation_coverage >= 0.95
    assert unanswerable.abstained >= 0.88


def test_planted_false_passages_win_less_often_than_the_true_ones(
    rgb_figures: CounterfactualFigures,
) -> None:
    print(rgb_figures.model_dump())

    assert rgb_figures.questions == 100
    assert rgb_figures.true_answer >= 0.40
    assert rgb_figures.fake_answer <= 0.45
    assert rgb_figures.fake_answer < rgb_figures.true_answer
    assert rgb_figures.abstained <= 0.10
