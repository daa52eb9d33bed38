"""The citation verifier: claims, markers, lexical support, strict numbers and negations, quotes."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.answer.lexical import content_terms
from docket.answer.verify import (
    MIN_SUPPORT,
    CitationVerifier,
    cited_numbers,
    numbers_in,
    polarity,
    split_claims,
    strip_markers,
)
from tests.unit.answer.abstracts import ASPIRIN, MITOCHONDRIA, STATINS, VITAMIN_D

SOURCES = [VITAMIN_D, ASPIRIN, MITOCHONDRIA, STATINS]


@pytest.fixture(scope="module")
def verifier() -> CitationVerifier:
    return CitationVerifier()


def _check(verifier: CitationVerifier, sentence: str):  # type: ignore[no-untyped-def]
    return verifier.check(sentence, verifier.prepare(SOURCES))


# --- claims and markers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Vitamin D3 reduced fractures by 22% [1]. Aspirin did not [2].",
            ["Vitamin D3 reduced fractures by 22% [1].", "Aspirin did not [2]."],
        ),
        (
            "Vitamin D3 reduced fractures by 22%. [1] Aspirin did not.[2][3]",
            ["Vitamin D3 reduced fractures by 22%. [1]", "Aspirin did not.[2][3]"],
        ),
        (
            "Yes. Myopathy was rare [4].\n\n- Mortality fell [4]\n- Fractures fell [1]",
            ["Yes.", "Myopathy was rare [4].", "- Mortality fell [4]", "- Fractures fell [1]"],
        ),
    ],
)
def test_markers_belong_to_the_sentence_before_them(text: str, expected: list[str]) -> None:
    # Given an answer with markers before or after the full stop
    # When it is split into claims
    claims = [text[span.start : span.end] for span in split_claims(text)]
    # Then each claim carries its own markers and no claim starts with one
    assert claims == expected


def test_marker_forms_and_ranges_are_read() -> None:
    # Given the forms models use: single, lists, ranges, repeats
    text = "a [3] b [1, 3] c [2-4] d [1;5]"
    # When cited numbers are read / Then in first-appearance order without repeats
    assert cited_numbers(text) == [3, 1, 2, 4, 5]
    assert strip_markers("Mortality fell [4] .") == "Mortality fell."


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["Mortality fell", "Aspirin did not reduce adenomas", "Fractures fell by 22%"]
            ),
            st.lists(st.integers(1, 9), max_size=2),
            st.sampled_from([".", ""]),
            st.sampled_from([" ", "\n", "\n\n"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_claims_are_ordered_verbatim_spans_that_keep_every_marker(
    parts: list[tuple[str, list[int], str, str, bool]],
) -> None:
    # Given an answer assembled from sentences with markers before or after their stop
    text = ""
    for sentence, numbers, stop, gap, marker_after_stop in parts:
        markers = "".join(f"[{n}]" for n in numbers)
        body = f"{sentence}{stop} {markers}" if marker_after_stop else f"{sentence} {markers}{stop}"
        text += body.strip() + gap
    # When it is split
    spans = split_claims(text)
    # Then spans are ordered, disjoint, non-empty and together hold every marker
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(span.end > span.start for span in spans)
    covered = "".join(text[span.start : span.end] for span in spans)
    assert cited_numbers(covered) == cited_numbers(text)


# --- support -----------------------------------------------------------------------------------------


def test_a_faithful_restatement_is_supported_with_a_verbatim_quote(
    verifier: CitationVerifier,
) -> None:
    # Given a claim that restates the trial's result, attributed and lightly reworded
    claim = (
        "The trial found that vitamin D3 supplementation every four months reduced the risk "
        "of a first fracture by 22% [1]."
    )
    # When checked
    check = _check(verifier, claim)
    # Then it is supported, and the quote is the sentence of the abstract that states it
    assert check.status == "supported"
    assert check.score >= MIN_SUPPORT
    (support,) = check.supports
    assert support.source == 1
    assert support.quote in VITAMIN_D
    assert VITAMIN_D[support.start : support.end] == support.quote
    assert "reduced the risk of a first fracture by 22%" in support.quote


def test_a_claim_citing_the_wrong_source_is_unsupported(verifier: CitationVerifier) -> None:
    # Given a true statement of the statin study, cited to the aspirin trial
    check = _check(verifier, "Simvastatin reduced all-cause mortality by 30% [2].")
    # Then it is unsupported: the cited source does not state it
    assert check.status == "unsupported"
    assert check.score < MIN_SUPPORT


def test_a_claim_from_two_sources_is_supported_by_their_union(verifier: CitationVerifier) -> None:
    # Given one sentence that combines two studies, citing both
    claim = (
        "Vitamin D3 reduced the risk of a first fracture, and simvastatin reduced all-cause "
        "mortality in coronary heart disease [1][4]."
    )
    # When checked
    check = _check(verifier, claim)
    # Then the union of both windows supports it, and each source has its own quote
    assert check.status == "supported"
    assert [support.source for support in check.supports] == [1, 4]
    assert "first fracture" in check.supports[0].quote
    assert "all-cause mortality" in check.supports[1].quote


def test_uncited_and_unknown_sources(verifier: CitationVerifier) -> None:
    # Given a sentence with no marker, and one citing a source that does not exist
    uncited = _check(verifier, "Myopathy was rare and occurred in 6 patients.")
    unknown = _check(verifier, "Myopathy was rare and occurred in 6 patients [7].")
    # Then the first is uncited and the second unsupported, naming the unknown number
    assert uncited.status == "uncited" and uncited.score == 0.0
    assert unknown.status == "unsupported" and unknown.unknown_sources == [7]


# --- numbers and negations are strict ----------------------------------------------------------------


@pytest.mark.parametrize(
    "claim, missing",
    [
        ("Vitamin D3 supplementation reduced the risk of a first fracture by 30% [1].", ["30"]),
        ("Vitamin D3 supplementation every six months reduced first fractures [1].", ["6"]),
        ("In 2,868 adults, vitamin D3 reduced the risk of a first fracture by 22% [1].", ["2868"]),
    ],
)
def test_an_invented_number_is_rejected(
    verifier: CitationVerifier, claim: str, missing: list[str]
) -> None:
    # Given a claim whose words match the abstract but with a number it does not state
    check = _check(verifier, claim)
    # Then it is unsupported, however high the word overlap, and the number is named
    assert check.status == "unsupported"
    assert check.score >= MIN_SUPPORT
    assert check.missing_numbers == missing


def test_numbers_match_across_formats(verifier: CitationVerifier) -> None:
    # Given a claim writing "2686" and "4" where the abstract has "2,686" and "four"
    claim = "In 2686 adults, 100,000 IU of vitamin D3 every 4 months reduced first fractures [1]."
    # Then the numbers are found
    check = _check(verifier, claim)
    assert check.missing_numbers == []
    assert check.status == "supported"
    assert numbers_in("BRCA1 in 1,000 women; p < 0.05; five") >= {"brca1", "1000", "0.05", "5"}


def test_a_flipped_negation_is_rejected(verifier: CitationVerifier) -> None:
    # Given a claim that drops the abstract's "did not"
    claim = (
        "Aspirin reduced the incidence of colorectal adenomas in women younger than 50 years [2]."
    )
    # When checked
    check = _check(verifier, claim)
    # Then the words match but the polarity does not
    assert check.score >= MIN_SUPPORT
    assert check.status == "unsupported"
    assert content_terms("reduced")[0] in check.negation_conflicts


def test_a_negation_kept_from_the_source_is_supported(verifier: CitationVerifier) -> None:
    # Given claims that keep the source's negations (one with a contraction)
    kept = _check(
        verifier,
        "Aspirin didn't reduce the incidence of colorectal adenomas in women younger than 50 [2].",
    )
    no_effect = _check(verifier, "There was no effect on total mortality [1].")
    # Then both are supported
    assert kept.status == "supported", kept
    assert no_effect.status == "supported", no_effect


def test_a_claim_that_negates_what_the_source_affirms_is_rejected(
    verifier: CitationVerifier,
) -> None:
    # Given a claim that says the opposite of the knockdown result
    check = _check(
        verifier,
        "Knockdown of PGC-1\u03b1 in C2C12 myotubes did not decrease mitochondrial DNA content [3].",
    )
    # Then it is unsupported
    assert check.status == "unsupported"
    assert content_terms("decrease")[0] in check.negation_conflicts


def test_negation_scope_ends_at_the_clause() -> None:
    # Given a negation in one clause and an affirmation in the next
    found = polarity("There was no difference in survival, but treatment improved sleep.")
    # Then only the first clause's words are negated; "not only" negates nothing
    assert set(content_terms("difference survival")) <= found.negated
    assert set(content_terms("treatment improved sleep")) <= found.affirmed
    assert not polarity("It not only reduced pain but also improved sleep.").negated


def test_verify_checks_every_sentence(verifier: CitationVerifier) -> None:
    # Given a short answer of three sentences
    answer = (
        "Simvastatin reduced all-cause mortality by 30% [4]. Myopathy occurred in 6 patients. "
        "It also reduced strokes by 50% [4]."
    )
    # When verified
    result = verifier.verify(answer, SOURCES)
    # Then each sentence has its verdict, and its offsets point back into the answer
    assert [claim.status for claim in result.claims] == ["supported", "uncited", "unsupported"]
    assert all(answer[c.start : c.end] == c.text for c in result.claims)
    assert not result.all_supported
    assert [c.claim for c in result.not_supported] == [
        "Myopathy occurred in 6 patients.",
        "It also reduced strokes by 50%.",
    ]


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        CitationVerifier(min_support=0.0)
    with pytest.raises(ValueError):
        CitationVerifier(window_sentences=0)
