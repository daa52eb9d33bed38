"""The sentence splitter: the cut points the chunker prefers inside a paragraph."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.chunking.sentences import sentence_spans, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "The cells grew. They divided twice! Did they die? No.",
            ["The cells grew.", "They divided twice!", "Did they die?", "No."],
            id="terminal-punctuation",
        ),
        pytest.param(
            "Several drugs, e.g. aspirin, were used. Others were not.",
            ["Several drugs, e.g. aspirin, were used.", "Others were not."],
            id="e.g.-lowercase-next",
        ),
        pytest.param(
            "Use a marker, e.g. GFP. Then image it.",
            ["Use a marker, e.g. GFP.", "Then image it."],
            id="e.g.-before-capital",
        ),
        pytest.param(
            "See Fig. 2 for details. It shows growth.",
            ["See Fig. 2 for details.", "It shows growth."],
            id="fig-number",
        ),
        pytest.param(
            "Smith et al. (2010) found it. We agree.",
            ["Smith et al. (2010) found it.", "We agree."],
            id="et-al",
        ),
        pytest.param(
            "The dose was 3.5 mg. The effect was 0.25 units.",
            ["The dose was 3.5 mg.", "The effect was 0.25 units."],
            id="decimals",
        ),
        pytest.param(
            "J. R. Smith wrote it in the U.S. Army. He left.",
            ["J. R. Smith wrote it in the U.S. Army.", "He left."],
            id="initials-and-dotted",
        ),
        pytest.param(
            'He said "stop." Then he left. (This was odd.) The end.',
            ['He said "stop."', "Then he left.", "(This was odd.)", "The end."],
            id="quotes-and-brackets",
        ),
        pytest.param(
            "See No. 5 in the list. I said no. Then it ended.",
            ["See No. 5 in the list.", "I said no.", "Then it ended."],
            id="number-abbreviation-only-before-digits",
        ),
        pytest.param(
            "Incubate for 30 min. Then wash. Results improved 5.2 vs. 3.1 in 2010. Done.",
            [
                "Incubate for 30 min.",
                "Then wash.",
                "Results improved 5.2 vs. 3.1 in 2010.",
                "Done.",
            ],
            id="units-end-sentences-vs-does-not",
        ),
        pytest.param(
            "第一句。第二句\uff01第三句\uff1f",
            ["第一句。", "第二句\uff01", "第三句\uff1f"],
            id="cjk",
        ),
        pytest.param("no terminal punctuation here", ["no terminal punctuation here"], id="one"),
        pytest.param("   ", [], id="blank"),
    ],
)
def test_sentences_are_split_at_real_boundaries_only(text, expected):
    # Given a text with abbreviations, decimals, initials and quotes
    # When it is split into sentences
    # Then each cut is a real sentence end
    assert split_sentences(text) == expected


def test_spans_are_offsets_into_the_given_range():
    # Given a paragraph inside a larger text
    text = "xx One two. Three four. yy"

    # When the sentences of the middle part are found
    spans = sentence_spans(text, 3, 23)

    # Then the spans point into the original text, stripped of whitespace
    assert [text[a:b] for a, b in spans] == ["One two.", "Three four."]
    assert spans[0][0] == 3


@given(st.text(alphabet=st.sampled_from(list('ab .!?\n\t"()3eg')), max_size=200))
def test_sentences_cover_all_visible_text_in_order(text):
    # Given any text
    # When it is split into sentences
    parts = split_sentences(text)

    # Then no visible character is lost, added or moved, and no sentence is empty
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())
    assert all(p.strip() == p and p for p in parts)
