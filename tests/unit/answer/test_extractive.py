"""The extractive answerer: verbatim quotes, citations, abstention, streaming, determinism."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docket.answer import (
    AnswerDelta,
    AnswerDone,
    Answerer,
    ExtractiveAnswerer,
    answerability,
    collect,
    lexical,
)
from docket.models import NOT_FOUND_TEXT, Answer, ChunkRecord, SearchHit
from tests.unit.answer.conftest import MakeHit, make_hit

REFUNDS = (
    "Our refund policy is simple. Customers may return unused items within 30 days of delivery "
    "for a full refund. Refunds are issued to the original payment method within 5 business "
    "days. Gift cards are not refundable."
)
SHIPPING = (
    "Standard shipping takes 3 to 5 business days. Express shipping is available for an extra "
    "fee. We ship to most countries in Europe."
)
LEAVE = (
    "Full-time employees accrue 20 days of paid time off per year. Unused days carry over to "
    "the next year, up to a maximum of 5 days."
)
PASTA = "Boil the pasta in salted water for nine minutes. Drain it and toss it with olive oil."

MARKER = re.compile(r"\[(\d+)\]")


def _sentences_with_numbers(answer: Answer) -> list[tuple[str, int]]:
    """Split "s1 [1] s2 [2]" back into (sentence, number) pairs."""
    parts = MARKER.split(answer.text)
    return [(parts[i].strip(), int(parts[i + 1])) for i in range(0, len(parts) - 1, 2)]


def _folded(text: str) -> str:
    return " ".join(text.split())


def test_extractive_answerer_satisfies_the_answerer_port() -> None:
    # Given / When / Then: the offline answerer is usable wherever the port is expected
    assert isinstance(ExtractiveAnswerer(), Answerer)


def test_found_on_a_clearly_relevant_hit(hit: MakeHit) -> None:
    # Given a question whose answer is one sentence of the top hit
    hits = [
        hit(REFUNDS, source="refunds.md", rank=1),
        hit(SHIPPING, source="shipping.md", rank=2),
        hit(LEAVE, source="leave.md", rank=3),
    ]
    # When the answerer answers
    answer = ExtractiveAnswerer().answer("How many days do customers have to return items?", hits)
    # Then it quotes that sentence, cited to the refunds chunk
    assert answer.found
    assert answer.answerer == "extractive"
    assert answer.text.startswith(
        "Customers may return unused items within 30 days of delivery for a full refund. [1]"
    )
    assert answer.citations[0].source == "refunds.md"
    assert 0.0 < answer.confidence <= 1.0


def test_quotes_are_verbatim_substrings_of_their_chunks(hit: MakeHit) -> None:
    # Given chunks whose sentences are broken across lines and padded with spaces
    messy = (
        "Refunds are issued to the\noriginal payment method   within 5 business days.\n\n"
        "Gift cards are\nnot refundable."
    )
    hits = [hit(messy, source="refunds.md"), hit(SHIPPING, source="shipping.md", rank=2)]
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=0.0).answer(
        "How are refunds issued to the payment method?", hits
    )
    # Then every quote appears exactly in its chunk, and each answer sentence is in its quote
    chunks = {h.chunk.chunk_id: h.chunk.text for h in hits}
    assert answer.found and answer.citations
    for citation in answer.citations:
        assert citation.quote in chunks[citation.chunk_id]
        assert citation.quote == citation.quote.strip()
    by_number = {c.number: c for c in answer.citations}
    for sentence, number in _sentences_with_numbers(answer):
        assert sentence in _folded(by_number[number].quote)
    assert "\n" not in answer.text


def test_citations_are_numbered_by_first_appearance(hit: MakeHit) -> None:
    # Given a question that two different chunks each answer in part
    hits = [
        hit(SHIPPING, source="shipping.md", rank=1),
        hit(REFUNDS, source="refunds.md", rank=2),
    ]
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=0.0).answer(
        "How many business days do shipping and refunds take?", hits
    )
    # Then the numbers run 1..n in the order they first appear in the text
    numbers = [int(n) for n in MARKER.findall(answer.text)]
    first_seen = list(dict.fromkeys(numbers))
    assert first_seen == list(range(1, len(answer.citations) + 1))
    assert [c.number for c in answer.citations] == first_seen
    assert {c.source for c in answer.citations} == {"shipping.md", "refunds.md"}


def test_same_chunk_cited_twice_gets_one_number(hit: MakeHit) -> None:
    # Given one chunk with two sentences that both answer the question
    text = (
        "Customers may return unused items within 30 days. The weather was pleasant. "
        "Returned items must be unused and in their original packaging."
    )
    hits = [hit(text, source="refunds.md"), hit(PASTA, source="pasta.md", rank=2)]
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=0.0).answer("Can customers return unused items?", hits)
    # Then both sentences cite [1], there is one citation, and its quote spans both sentences
    pairs = _sentences_with_numbers(answer)
    assert [number for _, number in pairs] == [1, 1]
    assert len(answer.citations) == 1
    quote = answer.citations[0].quote
    assert quote.startswith("Customers may return") and quote.endswith("original packaging.")
    assert quote in text


def test_a_sentence_repeated_by_overlapping_chunks_is_quoted_once(hit: MakeHit) -> None:
    # Given two adjacent chunks of one document that overlap on the answering sentence
    shared = "Customers may return unused items within 30 days of delivery."
    first = f"Our refund policy is simple. {shared}"
    second = f"{shared} Gift cards are not refundable."
    hits = [
        hit(first, source="refunds.md", ordinal=0, rank=1),
        hit(second, source="refunds.md", ordinal=1, rank=2),
    ]
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=0.0).answer("Can customers return unused items?", hits)
    # Then the shared sentence appears once
    assert answer.text.count(shared) == 1


def test_page_ranges_come_from_the_chunk(hit: MakeHit) -> None:
    # Given a chunk that spans pages 4 to 5 of a PDF
    hits = [hit(LEAVE, source="handbook.pdf", title="Handbook", page_start=4, page_end=5)]
    # When the answerer cites it
    answer = ExtractiveAnswerer(min_score=0.0).answer("How many days of paid time off?", hits)
    # Then the citation carries the chunk's pages, ids, source and title
    (citation,) = answer.citations
    chunk = hits[0].chunk
    assert (citation.page_start, citation.page_end) == (4, 5)
    assert (citation.document_id, citation.chunk_id) == (chunk.document_id, chunk.chunk_id)
    assert (citation.source, citation.title) == ("handbook.pdf", "Handbook")


def test_not_found_on_empty_hits() -> None:
    # Given no hits at all
    # When the answerer answers
    answer = ExtractiveAnswerer().answer("How many days of paid time off?", [])
    # Then it says so, with no citations and zero confidence
    assert answer == Answer(found=False, text=NOT_FOUND_TEXT, confidence=0.0)


def test_not_found_on_irrelevant_hits(hit: MakeHit) -> None:
    # Given hits that share no content word with the question
    hits = [hit(PASTA, source="pasta.md"), hit(SHIPPING, source="shipping.md", rank=2)]
    # When the answerer answers
    answer = ExtractiveAnswerer().answer("What is the parental leave allowance?", hits)
    # Then it abstains
    assert not answer.found
    assert answer.text == NOT_FOUND_TEXT
    assert answer.citations == []
    assert answer.confidence < ExtractiveAnswerer().min_score


def test_not_found_on_irrelevant_hits_with_low_dense_scores(hit: MakeHit) -> None:
    # Given hybrid hits whose best cosine is low and which no retriever agrees on
    hits = [
        hit(PASTA, source="pasta.md", knn=0.12, knn_rank=1, bm25=1.1, bm25_rank=2),
        hit(SHIPPING, source="shipping.md", rank=2, bm25=1.5, bm25_rank=1),
    ]
    # When the answerer answers
    answer = ExtractiveAnswerer().answer("What is the parental leave allowance?", hits)
    # Then it abstains
    assert not answer.found


def test_a_sentence_that_asks_the_question_is_not_the_answer(hit: MakeHit) -> None:
    # Given a FAQ chunk that repeats the question before answering it
    text = (
        "What is the refund policy? Our refund policy allows returns of unused items within "
        "30 days of delivery."
    )
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=0.0).answer("What is the refund policy?", [hit(text)])
    # Then it quotes the answer, not the question
    assert answer.text.startswith("Our refund policy allows returns")


def test_min_score_is_the_abstention_threshold(hit: MakeHit) -> None:
    # Given a relevant hit and its confidence
    hits = [hit(REFUNDS)]
    question = "How many days do customers have to return items?"
    confidence = ExtractiveAnswerer().assess(question, hits).confidence
    # When the threshold sits just above or at the confidence
    above = ExtractiveAnswerer(min_score=confidence + 1e-6).answer(question, hits)
    at = ExtractiveAnswerer(min_score=confidence).answer(question, hits)
    # Then it abstains above and answers at the threshold
    assert not above.found
    assert at.found


def test_streaming_yields_the_same_sentences_then_the_citations(hit: MakeHit) -> None:
    # Given hits that answer the question from two chunks
    hits = [hit(SHIPPING, source="shipping.md"), hit(REFUNDS, source="refunds.md", rank=2)]
    question = "How many business days do shipping and refunds take?"
    answerer = ExtractiveAnswerer(min_score=0.0)
    # When the answer is streamed
    events = list(answerer.stream(question, hits))
    # Then sentence deltas come first, one done event last, carrying the same answer
    deltas = [event for event in events[:-1] if isinstance(event, AnswerDelta)]
    done = events[-1]
    assert len(deltas) == len(events) - 1
    assert isinstance(done, AnswerDone)
    assert done.answer == answerer.answer(question, hits)
    assert "".join(delta.text for delta in deltas) == done.answer.text
    assert [delta.text.strip() for delta in deltas] == [
        f"{sentence} [{number}]" for sentence, number in _sentences_with_numbers(done.answer)
    ]
    assert all(delta.unit == "sentence" for delta in deltas)
    assert {n for delta in deltas for n in delta.citations} == {
        c.number for c in done.answer.citations
    }
    assert collect(events) == done.answer


def test_streaming_not_found_still_ends_with_done() -> None:
    # Given no hits
    # When the answer is streamed
    events = list(ExtractiveAnswerer().stream("anything?", []))
    # Then the text delta says not found and the done event carries found=False
    delta, done = events
    assert isinstance(delta, AnswerDelta) and delta.text == NOT_FOUND_TEXT
    assert isinstance(done, AnswerDone) and not done.answer.found


def test_answers_are_deterministic(hit: MakeHit) -> None:
    # Given the same question and hits
    hits = [hit(REFUNDS, source="refunds.md"), hit(SHIPPING, source="shipping.md", rank=2)]
    question = "How long do refunds take to be issued?"
    first = ExtractiveAnswerer().answer(question, hits)
    # When answered again by a fresh answerer with cold caches
    lexical.stem.cache_clear()
    lexical._TERM_CACHE.clear()
    second = ExtractiveAnswerer().answer(question, hits)
    # Then the answers are identical, down to the confidence
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()


def test_max_sentences_caps_the_answer(hit: MakeHit) -> None:
    # Given many sentences that all match the question
    text = (
        "The refund rule applies to orders of shoes bought in summer. "
        "A second refund rule applies to orders paid with gift cards. "
        "Another refund rule applies to orders shipped abroad by courier. "
        "One more refund rule applies to orders placed by business customers."
    )
    # When the answerer may quote at most two
    answer = ExtractiveAnswerer(min_score=0.0, max_sentences=2).answer(
        "Which refund rule applies to orders?", [hit(text)]
    )
    # Then it quotes two
    assert len(MARKER.findall(answer.text)) == 2


def test_invalid_settings_are_rejected() -> None:
    # Given / When / Then
    with pytest.raises(ValueError):
        ExtractiveAnswerer(max_sentences=0)
    with pytest.raises(ValueError):
        ExtractiveAnswerer(dense_low=0.5, dense_high=0.5)


# --- confidence ------------------------------------------------------------------------------


def test_confidence_works_on_lexical_signals_alone(hit: MakeHit) -> None:
    # Given BM25-only hits from six documents (no k-NN scores or ranks)
    texts = [REFUNDS, SHIPPING, LEAVE, PASTA, "Office hours are nine to five.", "Parking is free."]
    hits = [
        hit(text, source=f"doc{i}.md", rank=i + 1, bm25=12.0 - 2 * i, bm25_rank=i + 1)
        for i, text in enumerate(texts)
    ]
    # When the answerer assesses them
    assessment = ExtractiveAnswerer().assess("How many days to return items for a refund?", hits)
    # Then the dense signals are absent and the lexical model gives the confidence
    assert assessment.dense is None and assessment.agreement is None
    assert assessment.margin is not None
    assert assessment.margin == pytest.approx((12.0 - 2.0) / 12.0)
    assert assessment.lexical == pytest.approx((assessment.coverage * assessment.margin) ** 0.5)
    assert assessment.features["dense_top"] is None
    assert assessment.features["bm25_prominence"] is not None
    assert assessment.confidence == pytest.approx(
        answerability.LEXICAL_MODEL.probability(assessment.features)
    )
    assert assessment.confidence >= ExtractiveAnswerer().min_score


def test_unfused_hits_still_give_a_margin(hit: MakeHit) -> None:
    # Given raw BM25 hits straight from the index (score on the hit, no per-retriever maps)
    texts = [REFUNDS, SHIPPING, LEAVE, PASTA, "Parking is free."]
    hits = [
        SearchHit(chunk=hit(t, source=f"d{i}").chunk, score=10.0 - i, retriever="bm25", rank=i + 1)
        for i, t in enumerate(texts)
    ]
    # When assessed
    assessment = ExtractiveAnswerer().assess("How many days to return items?", hits)
    # Then the margin comes from the hits' own scores
    assert assessment.margin == pytest.approx((10.0 - 6.0) / 10.0)


def test_dense_similarity_and_retriever_agreement_raise_confidence(hit: MakeHit) -> None:
    # Given the same chunks, once with the refunds chunk first in both retrievers and far ahead
    # in cosine, once first by BM25 only, with the k-NN retriever preferring the others
    question = "How many days do customers have to return items?"
    texts = [REFUNDS, SHIPPING, LEAVE, PASTA, "Parking is free."]
    agreeing = [
        hit(
            t,
            source=f"d{i}",
            rank=i + 1,
            bm25=9.0 - i,
            bm25_rank=i + 1,
            knn=0.85 - 0.1 * i,
            knn_rank=i + 1,
        )
        for i, t in enumerate(texts)
    ]
    disagreeing = [
        hit(
            t,
            source=f"d{i}",
            rank=i + 1,
            bm25=9.0 - i,
            bm25_rank=i + 1,
            knn=0.3 + 0.01 * i,
            knn_rank=5 - i,
        )
        for i, t in enumerate(texts)
    ]
    answerer = ExtractiveAnswerer()
    # When both are assessed
    both, one = answerer.assess(question, agreeing), answerer.assess(question, disagreeing)
    # Then agreement and a high, standing-out cosine raise the confidence
    assert both.agreement == 1.0 and one.agreement is not None and one.agreement < 1.0
    assert both.confidence > one.confidence
    assert 0.0 <= one.confidence <= both.confidence <= 1.0


def test_a_low_cosine_lowers_confidence(hit: MakeHit) -> None:
    # Given a lexically matching chunk that the dense retriever finds unrelated
    question = "How many days do customers have to return items?"
    low = [hit(REFUNDS, knn=0.1, knn_rank=1)]
    # When assessed
    assessment = ExtractiveAnswerer().assess(question, low)
    # Then the dense signal is zero and the off-topic cosine pulls the confidence down
    assert assessment.dense == 0.0
    assert assessment.confidence < assessment.lexical


def test_agreement_is_zero_when_no_chunk_is_found_by_both(hit: MakeHit) -> None:
    # Given hybrid hits where each chunk comes from only one retriever
    hits = [
        hit(REFUNDS, source="a.md", bm25=5.0, bm25_rank=1),
        hit(SHIPPING, source="b.md", rank=2, knn=0.5, knn_rank=1),
    ]
    # When assessed
    assessment = ExtractiveAnswerer().assess("How many days to return items?", hits)
    # Then agreement is 0 (both retrievers ran, but disagree)
    assert assessment.agreement == 0.0


# --- properties ------------------------------------------------------------------------------

WORDS = [
    "refund", "refunds", "return", "returned", "item", "items", "days", "policy", "shipping",
    "express", "customer", "customers", "payment", "method", "gift", "card", "europe", "fee",
    "leave", "employee", "the", "a", "of", "within", "is", "are", "not", "2021", "30", "U.S.",
    "e.g.", "Dr.", "why?", "yes!",
]  # fmt: skip

sentence_strategy = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(
    lambda words: " ".join([words[0].capitalize(), *words[1:]]) + "."
)
chunk_strategy = st.lists(sentence_strategy, min_size=1, max_size=6).flatmap(
    lambda sentences: st.sampled_from([" ", "\n", "  ", "\n\n"]).map(
        lambda sep: sep.join(sentences)
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(chunk_strategy, min_size=0, max_size=6),
    question=st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
    min_score=st.sampled_from([0.0, 0.2, 0.4, 0.8]),
    max_sentences=st.integers(min_value=1, max_value=4),
)
def test_every_marker_has_a_citation_and_every_citation_a_marker(
    chunks: list[str], question: str, min_score: float, max_sentences: int
) -> None:
    # Given arbitrary ranked hits over a small vocabulary (same-document hits included)
    hits = [
        make_hit(text, source=f"doc{i % 3}.md", ordinal=i, rank=i + 1)
        for i, text in enumerate(chunks)
    ]
    # When the answerer answers
    answer = ExtractiveAnswerer(min_score=min_score, max_sentences=max_sentences).answer(
        question, hits
    )
    # Then markers and citations match one to one, numbered 1..n, quotes verbatim
    assert 0.0 <= answer.confidence <= 1.0
    if not answer.found:
        assert answer.text == NOT_FOUND_TEXT and answer.citations == []
        return
    referenced = {int(n) for n in MARKER.findall(answer.text)}
    numbers = [c.number for c in answer.citations]
    assert referenced == set(numbers)
    assert numbers == list(range(1, len(numbers) + 1))
    assert len({c.chunk_id for c in answer.citations}) == len(numbers)
    assert len(MARKER.findall(answer.text)) <= max_sentences
    texts = {h.chunk.chunk_id: h.chunk.text for h in hits}
    by_number = {c.number: c for c in answer.citations}
    for citation in answer.citations:
        assert citation.quote and citation.quote in texts[citation.chunk_id]
    for sentence, number in _sentences_with_numbers(answer):
        assert sentence in _folded(by_number[number].quote)


def test_table_of_contents_lines_are_never_quoted() -> None:
    from docket.answer.extractive import ExtractiveAnswerer
    from docket.models import ChunkRecord, SearchHit

    # Given a chunk that starts with a table of contents naming the topic, then the real answer
    text = (
        "2.2.1 Reinforcement Learning Algorithm . . . . . . . . . . . 5 "
        "2.2.2 Reward Modeling . . . . . . . . . . 6\n\n"
        "We adopt Group Relative Policy Optimization (GRPO) as the reinforcement learning algorithm."
    )
    chunk = ChunkRecord(
        tenant="acme",
        document_id="doc_" + "0" * 24,
        chunk_id="chk_1",
        ordinal=0,
        text=text,
        page_start=1,
        page_end=1,
        source="paper.pdf",
    )
    answer = ExtractiveAnswerer(min_score=0.0).answer(
        "Which reinforcement learning algorithm is used?",
        [SearchHit(chunk=chunk, score=1.0, retriever="bm25", rank=1)],
    )
    # Then the answer quotes the sentence with content, not the dot-leader line
    assert "GRPO" in answer.text
    assert ". . ." not in answer.text


def test_a_sources_own_reference_numbers_never_read_as_citations():
    # Given a sentence carrying the source's bibliography marker "[14]"
    chunk = ChunkRecord(
        tenant="t",
        document_id="doc_" + "0" * 24,
        chunk_id="c1",
        ordinal=0,
        text="Heart failure incidence fell by 10% in women since 1979 [14]. Men were unchanged.",
        page_start=1,
        page_end=1,
        source="s.txt",
    )
    hit = SearchHit(chunk=chunk, score=1.0, retriever="hybrid", rank=1)
    answer = ExtractiveAnswerer(min_score=0.0).answer("did heart failure fall in women", [hit])
    # Then the answer text holds only our markers, and the quote stays verbatim
    assert answer.found
    assert "[14]" not in answer.text and answer.text.endswith("[1]")
    assert "[14]" in answer.citations[0].quote


def test_a_how_many_question_quotes_the_count_not_a_heading(hit: MakeHit) -> None:
    # Given the best-ranked chunk holds a statement heading that shares the question's words
    # ("Lyft", "ended ... 2021") and a sentence about employees without a count, and a lower
    # chunk states the count (the Lyft 10-K, pages 78 and 12)
    heading = hit(
        "Lyft, Inc.\nConsolidated Statements of Operations\n(in thousands, except for per share "
        "data) Year Ended December 31,\n\nGiven continued uncertainty, we have given many "
        "employees the option to work from home.",
        rank=1,
    )
    count = hit(
        "Human Capital\nAs of December 31, 2021, we had 4,453 employees in approximately 119 "
        "offices and additional locations.",
        rank=2,
    )
    # When asked how many employees Lyft had
    answer = ExtractiveAnswerer(min_score=0.0).answer(
        "How many employees did Lyft have at the end of 2021?", [heading, count]
    )
    # Then the count leads the answer: "many" is not a content word, a count of the thing asked
    # about is the strongest hint, and a heading (no sentence end, not a table row) states nothing
    first = answer.text.split(" [1]")[0]
    assert "we had 4,453 employees" in first and "Consolidated Statements" not in first


def test_counts_of_the_thing_asked_about() -> None:
    from docket.answer.lexical import content_terms, counts_asked_thing

    asked = frozenset(content_terms("How many employees did Uber have?"))
    assert counts_asked_thing("we had 4,453 employees in 119 offices", asked)
    assert counts_asked_thing("approximately 29,300 global employees", asked)
    # a year, a price or a count of something else is not the count asked for
    assert not counts_asked_thing("Year Ended December 31, 2021 employees", asked)
    assert not counts_asked_thing("$4,453 employees", asked)
    assert not counts_asked_thing("we have 12 offices and many employees", asked)
