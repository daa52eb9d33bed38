"""Answerability: named things, scale-free features, the logistic models, entity mismatch."""

from __future__ import annotations

import math

import pytest

from docket.answer import ExtractiveAnswerer
from docket.answer.answerability import (
    MISSING_NAME_FACTOR,
    MODELS,
    OFF_TOPIC_COSINE,
    OFF_TOPIC_FACTOR,
    TEXT_MODEL,
    LogisticModel,
    answerability,
    bm25_prominence,
    dense_signals,
    named_things,
    proper_nouns,
)
from docket.models import SearchHit
from tests.unit.answer.conftest import MakeHit, make_hit

UBER = (
    "Uber Technologies, Inc. annual report 2021. Revenue was $17.5 billion in 2021, up 57% "
    "year-over-year. Mobility revenue grew as trips recovered from the pandemic."
)
LYFT = (
    "Lyft, Inc. annual report 2021. Revenue was $3.2 billion in 2021, an increase of 36% "
    "compared to 2020. Active riders reached 18.7 million in the fourth quarter."
)
LYFT_RISK = (
    "Lyft competes with other ridesharing companies. Revenue per active rider increased in 2021 "
    "as demand returned."
)
UBER_NET = "Uber reported a net loss of $496 million in 2021, narrower than in 2020."
UBER_RISK = (
    "Our revenue depends on drivers and consumers using the platform. Uber faces competition in "
    "every market where it operates."
)


def _filings() -> list[SearchHit]:
    """Hybrid hits over two ride-hailing filings, as the query path returns them."""
    return [
        make_hit(UBER, source="uber.pdf", rank=1, bm25=9.1, bm25_rank=1, knn=0.62, knn_rank=2),
        make_hit(LYFT, source="lyft.pdf", rank=2, bm25=8.7, bm25_rank=2, knn=0.64, knn_rank=1),
        make_hit(
            LYFT_RISK,
            source="lyft.pdf",
            ordinal=3,
            rank=3,
            bm25=6.0,
            bm25_rank=3,
            knn=0.55,
            knn_rank=3,
        ),
        make_hit(
            UBER_NET,
            source="uber.pdf",
            ordinal=2,
            rank=4,
            bm25=5.2,
            bm25_rank=4,
            knn=0.50,
            knn_rank=5,
        ),
        make_hit(
            UBER_RISK,
            source="uber.pdf",
            ordinal=4,
            rank=5,
            bm25=4.9,
            bm25_rank=5,
            knn=0.52,
            knn_rank=4,
        ),
    ]


def test_a_question_naming_a_company_no_hit_mentions_is_not_found() -> None:
    # Given on-topic filings of Uber and Lyft that state 2021 revenue
    hits = _filings()
    answerer = ExtractiveAnswerer()
    # When asked about Tesla's revenue, and about Uber's
    tesla = answerer.answer("What was Tesla's revenue in 2021?", hits)
    uber = answerer.answer("What was Uber's revenue in 2021?", hits)
    # Then Tesla is not found (no hit names it), while Uber's revenue is quoted
    assert not tesla.found and tesla.citations == []
    assert answerer.assess("What was Tesla's revenue in 2021?", hits).missing_names == ["tesla"]
    assert uber.found
    assert "$17.5 billion" in uber.text
    assert uber.citations[0].source == "uber.pdf"


UBER_PEERS = (
    "Several companies, including Waymo, Tesla and Apple, are developing autonomous vehicle "
    "technologies, and we expect competition to grow."
)
UBER_HEADCOUNT = "As of December 31, 2021, we had approximately 29,300 employees globally."


def test_a_name_the_quote_only_mentions_in_passing_is_not_answered(hit: MakeHit) -> None:
    # Given Uber's filing (its name in the source, not in its sentences) that lists Tesla among
    # car makers and states Uber's own headcount and revenue
    hits = [
        hit(UBER_PEERS, source="uber_2021.pdf", title="uber_2021.pdf", rank=1),
        hit(UBER_HEADCOUNT, source="uber_2021.pdf", title="uber_2021.pdf", rank=2),
        hit("Revenue was $17.5 billion in 2021.", source="uber_2021.pdf", rank=3),
    ]
    answerer = ExtractiveAnswerer()
    # When asked about Tesla's revenue and headcount, and about Uber's
    tesla_revenue = answerer.assess("What was Tesla's revenue in 2021?", hits)
    tesla_staff = answerer.assess("How many employees did Tesla have in 2021?", hits)
    uber_staff = answerer.answer("How many employees did Uber Technologies have in 2021?", hits)
    # Then Tesla is named by a hit but the quote is not about it: a missing name both times
    assert tesla_revenue.missing_names == ["tesla"]
    assert tesla_staff.missing_names == ["tesla"]
    assert tesla_revenue.confidence < answerer.min_score
    # while "Uber Technologies" is the document's own name, linked through its source
    assert uber_staff.found and "29,300" in uber_staff.text


@pytest.mark.parametrize(
    ("question", "sentence", "chunk", "context", "unlinked"),
    [
        # the document names the company; the sentence holds the year and the thing asked
        ("What was Uber's revenue in 2021?", "revenue 2021", "", "uber", []),
        # the name in the sentence with another word of the question
        ("What was Tesla's revenue in 2021?", "tesla revenue 2021", "", "", []),
        # the name in the sentence, alone: said in passing
        ("What was Tesla's revenue?", "tesla autonomous cars", "", "uber", ["tesla"]),
        # the name nowhere in the chunk (the filer's own headcount, asked as Tesla's)
        ("How many employees did Tesla have?", "29,300 employees", "global", "uber", ["tesla"]),
        # the name in the chunk outside the quote: the quote answers who, the chunk names what
        ("Who won Wimbledon in 2021?", "barty won the final", "wimbledon", "", []),
        # a year the quote holds only in passing ("our auditor since 2015")
        ("How many employees did Lyft have in 2015?", "auditor 2015", "", "lyft", ["2015"]),
        # a year the chunk never says is left to the other signals
        ("How many employees did Lyft have in 2015?", "4,453 employees", "", "lyft", []),
        # months date a fact, they name nothing; a run of capitals is one name
        ("What did Uber Technologies report for December 31, 2021?", "report 2021", "", "uber", []),
        # acronyms and codes are not names here
        ("Does CCL19 bind CCR7?", "bind receptor", "", "", []),
    ],
)
def test_unlinked_names(
    question: str, sentence: str, chunk: str, context: str, unlinked: list[str]
) -> None:
    from docket.answer.answerability import unlinked_names
    from docket.answer.lexical import content_terms

    def terms(text: str) -> frozenset[str]:
        return frozenset(content_terms(text))

    chunk_terms = terms(f"{sentence} {chunk}")
    assert (
        unlinked_names(question, terms(question), terms(sentence), chunk_terms, terms(context))
        == unlinked
    )


def test_a_missing_name_scales_the_confidence_down() -> None:
    # Given the same features with and without a name the hits do not mention
    features = {"coverage": 0.8, "document_coverage": 1.0, "entity_coverage": 1.0}
    # When the probability is computed
    plain, missing = answerability(features, []), answerability(features, ["tesla"])
    # Then the missing name keeps only a fraction of it
    assert missing == pytest.approx(plain * MISSING_NAME_FACTOR)


@pytest.mark.parametrize(
    ("question", "names", "nouns"),
    [
        ("What was Tesla's revenue in 2021?", ["tesla", "2021"], ["tesla"]),
        ("Who acquired WhatsApp?", ["whatsapp"], []),
        ("CCL19 is a ligand for CCR7.", ["ccl19", "ccr7"], []),
        ("B3-Galectin raises resistance. Cytosolic proteins bind.", ["b3 galectin"], []),
        ("how long do refunds take", [], []),
    ],
)
def test_named_things_and_proper_nouns(question: str, names: list[str], nouns: list[str]) -> None:
    # Given / When / Then: numbers, inner capitals and mid-sentence capitals name things; only
    # capitalised words inside a sentence count as proper nouns
    assert named_things(question) == names
    assert proper_nouns(question) == nouns


def test_retrieval_features_do_not_depend_on_the_score_scale(hit: MakeHit) -> None:
    # Given the same hits with BM25 scores in two different units
    def hits(scale: float) -> list[SearchHit]:
        return [
            hit(text, source=f"d{i}", rank=i + 1, bm25=scale * (9.0 - i), bm25_rank=i + 1)
            for i, text in enumerate([UBER, LYFT, LYFT_RISK, UBER_NET, UBER_RISK])
        ]

    question = "What was Uber's revenue in 2021?"
    # When both are assessed
    small = ExtractiveAnswerer().assess(question, hits(1.0))
    large = ExtractiveAnswerer().assess(question, hits(37.0))
    # Then the features and the confidence are the same
    assert small.features == pytest.approx(large.features)
    assert small.confidence == pytest.approx(large.confidence)


def test_bm25_prominence_is_the_log_ratio_of_best_to_median(hit: MakeHit) -> None:
    # Given three scored hits
    hits = [hit(UBER, bm25=8.0), hit(LYFT, bm25=4.0), hit(UBER_NET, bm25=2.0)]
    # When / Then
    assert bm25_prominence(hits) == pytest.approx(math.log(2.0))
    assert bm25_prominence(hits[:2]) is None


def test_dense_slope_is_the_cosine_drop_per_log_rank(hit: MakeHit) -> None:
    # Given hits ranked 1 and 4 by k-NN
    hits = [hit(UBER, knn=0.8, knn_rank=1), hit(LYFT, knn=0.6, knn_rank=4)]
    # When / Then
    top, slope = dense_signals(hits)
    assert top == pytest.approx(0.8)
    assert slope == pytest.approx(0.2 / math.log(4))
    assert dense_signals(hits[:1]) == (pytest.approx(0.8), None)
    assert dense_signals([hit(UBER)]) == (None, None)


def test_a_hit_that_stands_out_is_more_answerable_than_a_flat_list(hit: MakeHit) -> None:
    # Given the same texts, once with the first hit far ahead in both retrievers, once flat
    texts = [UBER, LYFT, LYFT_RISK, UBER_NET, UBER_RISK]

    def hits(step: float) -> list[SearchHit]:
        return [
            hit(
                text,
                source=f"d{i}",
                rank=i + 1,
                bm25=10.0 - (step * 8 if i else 0) - 0.1 * i,
                bm25_rank=i + 1,
                knn=0.8 - (step * 0.3 if i else 0) - 0.01 * i,
                knn_rank=i + 1,
            )
            for i, text in enumerate(texts)
        ]

    question = "What was Uber's revenue in 2021?"
    # When both are assessed
    standing_out = ExtractiveAnswerer().assess(question, hits(0.5))
    flat = ExtractiveAnswerer().assess(question, hits(0.0))
    # Then the list whose best hit stands out is the more answerable one
    assert standing_out.confidence > flat.confidence


def test_the_first_model_whose_features_are_present_is_used() -> None:
    # Given text features only (no retriever scores)
    features: dict[str, float | None] = {
        "coverage": 0.5,
        "document_coverage": 0.7,
        "entity_coverage": 1.0,
        "bm25_prominence": None,
        "agreement": None,
        "dense_top": None,
        "dense_slope": None,
    }
    # When / Then: only the text model applies, and it is what answerability computes
    assert [m.applies_to(features) for m in MODELS] == [False, False, False, True]
    assert answerability(features, []) == pytest.approx(TEXT_MODEL.probability(features))


def test_logistic_model_is_a_sigmoid_of_the_weighted_sum() -> None:
    # Given / When / Then
    model = LogisticModel(intercept=-1.0, weights={"a": 2.0})
    assert model.probability({"a": 0.5}) == pytest.approx(0.5)
    assert model.probability({"a": 1e9}) == pytest.approx(1.0)
    assert not model.applies_to({"a": None})


def test_a_low_cosine_is_off_topic_only_when_the_words_are_missing_too() -> None:
    # Given a short question and a long handbook passage that answers it in so many words: the
    # embedding of the whole chunk is far from the question's (cosine 0.28, the local demo)
    question = "What happens when a file is password-protected?"
    answering = make_hit(
        "Uploads are read by the extract function. A file that cannot be read, such as a corrupt "
        "or password-protected PDF, ends with the status failed and a reason that says why. "
        "Large files are streamed from S3 and limits apply per tenant and per file.",
        bm25=7.5,
        knn=0.28,
        bm25_rank=1,
        knn_rank=1,
    )
    unrelated = make_hit(
        "The cafeteria opens at eight and serves breakfast until ten.",
        bm25=0.4,
        knn=0.27,
        bm25_rank=2,
        knn_rank=2,
    )
    answerer = ExtractiveAnswerer()
    # Then the off-topic rule leaves it alone: the quoted sentence holds most of the question's
    # words (the model's own confidence is kept, not scaled by OFF_TOPIC_FACTOR)
    on_topic = answerer.assess(question, [answering, unrelated])
    assert on_topic.features["dense_top"] < OFF_TOPIC_COSINE
    assert on_topic.confidence > OFF_TOPIC_FACTOR
    # And hits as far off in words as in cosine are scaled down and not quoted
    off_topic = answerer.assess(question, [unrelated])
    assert off_topic.confidence <= OFF_TOPIC_FACTOR
    assert not answerer.answer(question, [unrelated]).found
