"""The chunker: structure-first cut points, a hard size bound, overlap, pages, locality."""

from __future__ import annotations

from itertools import pairwise

import pytest

from docket.chunking import Chunker
from docket.models import chunk_id_for

from .conftest import CharCounter, LineCostCounter, make_doc, sentence_list, sentences

# --- structure: sections, paragraphs, sentences, words ---------------------------------------


def test_each_top_level_section_is_chunked_on_its_own(words):
    # Given a preamble and two small top-level sections that would fit in one chunk together
    text = "A preamble line.\n\n# Alpha\n\nAlpha text one. Alpha text two.\n\n# Beta\n\nBeta text."

    # When chunked
    chunks = Chunker(words, chunk_size=100, overlap=0).chunk(make_doc(text))

    # Then no chunk spans two of them, and each keeps its heading line first
    assert [c.text for c in chunks] == [
        "A preamble line.",
        "# Alpha\n\nAlpha text one. Alpha text two.",
        "# Beta\n\nBeta text.",
    ]
    assert [c.section for c in chunks] == [None, "Alpha", "Beta"]


def test_top_level_is_the_shallowest_heading_level_present(words):
    # Given a document whose headings are all "##" (the extractor's h2)
    text = "## One\n\nFirst.\n\n## Two\n\nSecond.\n\n### Two point one\n\nThird."

    # When chunked
    chunks = Chunker(words, chunk_size=100, overlap=0).chunk(make_doc(text))

    # Then the "##" sections are the top level, and the "###" subsection packs with its parent
    assert [c.section for c in chunks] == ["One", "Two"]
    assert chunks[1].text == "## Two\n\nSecond.\n\n### Two point one\n\nThird."


def test_subsections_pack_together_and_a_chunk_reports_where_it_starts(words):
    # Given a section with two subsections, each 14 words, and an intro of 14 words
    text = (
        f"# Intro\n\n{sentences('i', 2)}\n\n"
        f"## Methods\n\n{sentences('m', 2)}\n\n"
        f"## Results\n\n{sentences('r', 2)}"
    )

    # When chunked at 30 words
    chunks = Chunker(words, chunk_size=30, overlap=0).chunk(make_doc(text))

    # Then intro and Methods share a chunk, and Results starts the next with its own path
    assert [c.section for c in chunks] == ["Intro", "Intro > Results"]
    assert chunks[0].text.startswith("# Intro\n\n") and "## Methods\n\n" in chunks[0].text
    assert chunks[1].text.startswith("## Results\n\n")


def test_a_heading_never_ends_a_chunk(words):
    # Given a subsection too big for the chunk the intro started
    text = f"# Intro\n\n{sentences('i', 2)}\n\n## Methods\n\n{sentences('m', 5)}"

    # When chunked at 20 words
    chunks = Chunker(words, chunk_size=20, overlap=8).chunk(make_doc(text))

    # Then the Methods heading opens the next chunk instead of closing the first
    assert chunks[0].text == f"# Intro\n\n{sentences('i', 2)}"
    assert chunks[1].text.startswith("## Methods\n\nM0 ")
    assert chunks[1].section == "Intro > Methods"
    assert not any(c.text.splitlines()[-1].startswith("#") for c in chunks)


def test_paragraph_breaks_are_preferred_cut_points(words):
    # Given three paragraphs of 12 words
    paragraphs = [sentences(label, 2) for label in ("a", "b", "c")]

    # When chunked at 20 words (two paragraphs do not fit)
    chunks = Chunker(words, chunk_size=20, overlap=0).chunk(make_doc("\n\n".join(paragraphs)))

    # Then each chunk is one whole paragraph
    assert [c.text for c in chunks] == paragraphs


def test_a_short_paragraph_is_topped_up_rather_than_left_alone(words):
    # Given a 6-word paragraph followed by an 18-word one
    text = f"{sentences('a', 1)}\n\n{sentences('b', 3)}"

    # When chunked at 20 words
    chunks = Chunker(words, chunk_size=20, overlap=0).chunk(make_doc(text))

    # Then the first chunk is filled with the next paragraph's first sentences
    assert [c.text for c in chunks] == [
        f"{sentences('a', 1)}\n\n{sentences('b', 2)}",
        sentence_list("b", 3)[2],
    ]


def test_a_long_paragraph_is_cut_between_sentences(words):
    # Given one paragraph of ten 6-word sentences
    text = sentences("s", 10)

    # When chunked at 20 words
    chunks = Chunker(words, chunk_size=20, overlap=0).chunk(make_doc(text))

    # Then every chunk is three whole sentences (the last one what is left)
    expected = sentence_list("s", 10)
    assert [c.text for c in chunks] == [" ".join(expected[i : i + 3]) for i in range(0, 10, 3)]


def test_a_sentence_longer_than_a_chunk_is_cut_between_words(words):
    # Given a single 50-word sentence
    text = " ".join(f"w{i}" for i in range(50)) + "."

    # When chunked at 20 words
    chunks = Chunker(words, chunk_size=20, overlap=0).chunk(make_doc(text))

    # Then it is cut at words into 20, 20 and 10
    assert [c.token_count for c in chunks] == [20, 20, 10]
    assert " ".join(c.text for c in chunks) == text


def test_list_items_are_lines_and_wrapped_lines_are_rejoined(words):
    # Given a list whose item wraps, key-value lines, and prose wrapped like PDF text
    text = (
        "- the first item is long enough that it wraps onto\n  a second line\n- second item\n\n"
        "Name: Alice\nRole: Admin\n\n"
        "This sentence has been wrapped by the page layout of the PDF at an\n"
        "arbitrary point in the middle. The next sentence follows."
    )

    # When chunked
    (chunk,) = Chunker(words, chunk_size=100, overlap=0).chunk(make_doc(text))

    # Then list items and short lines keep their own lines; wrapped prose is one line again
    assert chunk.text == (
        "- the first item is long enough that it wraps onto a second line\n- second item\n\n"
        "Name: Alice\nRole: Admin\n\n"
        "This sentence has been wrapped by the page layout of the PDF at an arbitrary point in "
        "the middle. The next sentence follows."
    )


def test_whitespace_is_normalised_inside_chunks(words):
    # Given text with runs of spaces, tabs, non-breaking spaces and blank lines
    text = "  Alpha   beta\t\tgamma.  Delta\u00a0epsilon.\r\n\n\n\n  Zeta eta.   \n"

    # When chunked
    (chunk,) = Chunker(words, chunk_size=100, overlap=0).chunk(make_doc(text))

    # Then single spaces within lines, one blank line between paragraphs, nothing at the ends
    assert chunk.text == "Alpha beta gamma. Delta epsilon.\n\nZeta eta."


# --- overlap -------------------------------------------------------------------------------------


def _shared_words(previous: str, following: str) -> list[str]:
    """The longest run of words that ends ``previous`` and starts ``following``."""
    a, b = previous.split(), following.split()
    for size in range(min(len(a), len(b)), 0, -1):
        if a[-size:] == b[:size]:
            return b[:size]
    return []


def test_overlap_repeats_whole_trailing_sentences(words):
    # Given a paragraph of ten 6-word sentences
    text = sentences("s", 10)

    # When chunked at 30 words with a 12-word overlap
    chunks = Chunker(words, chunk_size=30, overlap=12).chunk(make_doc(text))

    # Then each chunk starts with the last two whole sentences of the one before
    assert len(chunks) == 3
    for previous, following in pairwise(chunks):
        shared = _shared_words(previous.text, following.text)
        assert len(shared) == 12
        assert shared[0].startswith("S") and shared[-1].endswith(".")
    assert all(c.token_count <= 30 for c in chunks)


def test_a_last_sentence_longer_than_the_overlap_is_shared_by_its_last_words(words):
    # Given 20-word sentences and an 8-word overlap (one sentence is far more than "about" 8)
    text = sentences("s", 6, words=20)

    # When chunked at 50 words
    chunks = Chunker(words, chunk_size=50, overlap=8).chunk(make_doc(text))

    # Then the next chunk starts with the previous chunk's last eight words
    for previous, following in pairwise(chunks):
        assert len(_shared_words(previous.text, following.text)) == 8
    assert all(c.token_count <= 50 for c in chunks)


def test_overlap_never_crosses_a_heading_code_or_a_section(words):
    # Given subsections, a code block and two top-level sections
    code = "```\n" + "code line here\n" * 3 + "```"
    text = (
        f"# A\n\n{sentences('a', 3)}\n\n## A2\n\n{sentences('b', 3)}\n\n"
        f"{code}\n\n{sentences('c', 3)}\n\n# B\n\n{sentences('d', 3)}"
    )

    # When chunked so that each block needs its own chunk
    chunks = Chunker(words, chunk_size=20, overlap=8).chunk(make_doc(text))

    # Then chunks that start with a heading, or follow code, repeat nothing
    for previous, following in pairwise(chunks):
        if following.text.startswith("#") or previous.text.endswith("```"):
            assert not _shared_words(previous.text, following.text)
    assert [c.text.split()[0] for c in chunks].count("#") == 2


# --- pages ---------------------------------------------------------------------------------------


def test_a_chunk_spans_a_page_break_and_reports_both_pages(words):
    # Given a sentence that starts at the foot of page 3 and ends at the top of page 4
    page3 = "The first sentence is on page three only. The second sentence starts on page three and"
    page4 = "ends on page four after the break. The third sentence is entirely on page four here."
    doc = make_doc(page3, page4, first_page=3)

    # When chunked so that the third sentence needs a new chunk
    plain = Chunker(words, chunk_size=25, overlap=0).chunk(doc)
    overlapping = Chunker(words, chunk_size=25, overlap=16).chunk(doc)

    # Then the first chunk covers pages 3-4, the second only page 4 (or 3-4 with its overlap)
    assert [(c.page_start, c.page_end) for c in plain] == [(3, 4), (4, 4)]
    assert plain[0].text.endswith("on page three and ends on page four after the break.")
    assert [(c.page_start, c.page_end) for c in overlapping] == [(3, 4), (3, 4)]


def test_empty_pages_do_not_shift_page_numbers(words):
    # Given a document whose page 2 is blank
    doc = make_doc(sentences("a", 3), "   ", sentences("c", 3))

    # When chunked one paragraph per chunk
    chunks = Chunker(words, chunk_size=20, overlap=0).chunk(doc)

    # Then the chunks are on pages 1 and 3
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 1), (3, 3)]


# --- code and tables -----------------------------------------------------------------------------


CODE = "```python\n# a comment, not a heading\ndef f(x):\n\n    return x\n```"


def test_a_code_block_that_fits_stays_whole(words):
    # Given prose then a 10-word code block that does not fit in what the prose left
    text = f"{sentences('a', 2)}\n\n{CODE}\n\n{sentences('b', 1)}"

    # When chunked at 20 words
    chunks = Chunker(words, chunk_size=20, overlap=4).chunk(make_doc(text))

    # Then the code block is in one chunk, verbatim (indentation and blank line kept)
    holding = [c for c in chunks if "def f(x)" in c.text]
    assert len(holding) == 1 and CODE in holding[0].text
    assert all(c.section is None for c in chunks)  # "# a comment" is code, not a heading


def test_a_code_block_larger_than_a_chunk_is_split_on_lines(words):
    # Given a 40-line code block of 4 words a line
    lines = [f"    value_{i} = compute ( {i} )" for i in range(40)]
    text = "```\n" + "\n".join(lines) + "\n```"

    # When chunked at 30 words
    chunks = Chunker(words, chunk_size=30, overlap=0).chunk(make_doc(text))

    # Then every chunk line is a whole original line, indentation kept, and all lines appear
    seen = [line for c in chunks for line in c.text.split("\n")]
    assert seen == ["```", *lines, "```"]
    assert len(chunks) > 1 and all(c.token_count <= 30 for c in chunks)


def test_an_unclosed_fence_is_text_and_does_not_swallow_later_sections(words):
    # Given a stray ``` line (no closing fence) in the first of two sections
    text = "# One\n\n``` stray marker line\nMore text.\n\n# Two\n\nSecond section."

    # When chunked
    chunks = Chunker(words, chunk_size=100, overlap=0).chunk(make_doc(text))

    # Then the second heading still starts its own section
    assert [c.section for c in chunks] == ["One", "Two"]
    assert "``` stray marker line" in chunks[0].text


def test_table_rows_are_never_split(words):
    # Given a 12-row table after a paragraph
    rows = [f"| r{i} | alpha | beta | {i} |" for i in range(12)]
    text = sentences("a", 2) + "\n\n" + "\n".join(rows)

    # When chunked at 30 tokens (9 a row)
    chunks = Chunker(words, chunk_size=30, overlap=8).chunk(make_doc(text))

    # Then every line of a table chunk is a whole row, and every row appears once
    table_lines = [line for c in chunks for line in c.text.split("\n") if "|" in line]
    assert table_lines == rows
    assert all(c.token_count <= 30 for c in chunks)


def test_a_table_that_fits_starts_a_fresh_chunk_rather_than_splitting(words):
    # Given a paragraph then a 3-row table that does not fit in what is left
    rows = [f"| r{i} | alpha | beta | {i} |" for i in range(3)]
    text = sentences("a", 2) + "\n\n" + "\n".join(rows)

    # When chunked at 30 words
    chunks = Chunker(words, chunk_size=30, overlap=0).chunk(make_doc(text))

    # Then the whole table is the second chunk
    assert [c.text for c in chunks] == [sentences("a", 2), "\n".join(rows)]


# --- the size bound ------------------------------------------------------------------------------

MIXED = """Preamble about the document, e.g. its scope (see Fig. 2).

# Introduction

{long}

## Background

- item one explains https://example.com/a/very/long/path/{path}
- item two

| name | value | unit |
| --- | --- | --- |
{rows}

```python
{code}
```

# Results

{long}

{giant}
"""


def mixed_document() -> str:
    long = " ".join(
        f"Sentence {i} reports that the treatment reduced inflammation by {i}.5% (p < 0.05)."
        for i in range(80)
    )
    return MIXED.format(
        long=long,
        path="/".join(f"segment{i}" for i in range(120)),
        rows="\n".join(f"| row{i} | {i * 3.14:.2f} | mg/kg |" for i in range(60)),
        code="\n".join(f"    result_{i} = model.predict(batch[{i}])" for i in range(80)),
        giant="x" * 5000 + "/" + "/".join("ab" for _ in range(600)),
    )


@pytest.mark.parametrize(("size", "overlap"), [(256, 32), (128, 16), (64, 32), (32, 0)])
def test_no_chunk_exceeds_the_size_with_the_real_tokenizer(wordpiece, size, overlap):
    # Given a document with long prose, a URL, a table, code and a giant token
    doc = make_doc(mixed_document())

    # When chunked
    chunks = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc)

    # Then every chunk is within the size, its count is exact, and ordinals run 0..n-1
    assert chunks
    assert all(wordpiece.count(c.text) == c.token_count <= size for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert all(c.text.strip() for c in chunks)


def test_a_giant_word_is_cut_into_pieces_that_fit(wordpiece):
    # Given a URL of hundreds of tokens with no whitespace
    url = "https://example.org/" + "/".join(f"part{i}" for i in range(400))

    # When chunked at 64 tokens
    chunks = Chunker(wordpiece, chunk_size=64, overlap=16).chunk(make_doc(url))

    # Then the pieces fit and, joined, are the URL again
    assert len(chunks) > 5
    assert all(c.token_count <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == url


def test_a_giant_word_is_cut_whatever_the_counter():
    # Given a 1,000-character word and a counter that charges a token per character
    word = "".join(chr(ord("a") + i % 26) for i in range(1000))

    # When chunked at 100 tokens
    chunks = Chunker(CharCounter(), chunk_size=100, overlap=0).chunk(make_doc(f"Start {word} end"))

    # Then no chunk is over 100 characters and nothing is lost
    assert all(c.token_count <= 100 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == f"Start{word}end"


def test_the_bound_holds_for_a_counter_that_does_not_add_up():
    # Given a counter that charges for line breaks (so 5 rows cost more than their sum)
    counter = LineCostCounter()
    rows = "\n".join(f"| r{i} |" for i in range(30))

    # When chunked at 10 tokens
    chunks = Chunker(counter, chunk_size=10, overlap=0).chunk(make_doc(rows))

    # Then each chunk, counted as stored, is within the size
    assert all(counter.count(c.text) == c.token_count <= 10 for c in chunks)
    assert [line for c in chunks for line in c.text.split("\n")] == rows.split("\n")


# --- locality and determinism --------------------------------------------------------------------


def sectioned(edited: int | None = None, marker: str = "#") -> str:
    parts = []
    for s in range(6):
        body = "\n\n".join(
            " ".join(
                f"Section {s} paragraph {p} sentence {k} discusses finding {s * 100 + p * 10 + k}."
                for k in range(6)
            )
            for p in range(5)
        )
        if s == edited:
            body = body.replace(
                "paragraph 2 sentence 3", "paragraph 2 sentence 3, heavily revised,"
            )
        parts.append(f"{marker} Section {s}\n\n{body}")
    return "\n\n".join(parts)


def _by_section(chunks) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for chunk in chunks:
        out.setdefault((chunk.section or "").split(" > ")[0], []).append(chunk.text)
    return out


@pytest.mark.parametrize("marker", ["#", "##"])
def test_editing_one_section_leaves_every_other_sections_chunks_identical(wordpiece, marker):
    # Given a six-section document, each section several chunks long
    chunker = Chunker(wordpiece, chunk_size=128, overlap=32)
    before = chunker.chunk(make_doc(sectioned(marker=marker)))

    # When one paragraph of section 3 is edited and the document chunked again
    after = chunker.chunk(make_doc(sectioned(edited=3, marker=marker)))

    # Then only section 3's chunks differ: every other chunk keeps its text, so its id
    old, new = _by_section(before), _by_section(after)
    assert all(len(texts) > 2 for texts in old.values())
    assert old.keys() == new.keys()
    for section in old:
        if section == "Section 3":
            assert old[section] != new[section]
        else:
            assert old[section] == new[section]
    doc_id = "doc_" + "0" * 24
    unchanged = {chunk_id_for(doc_id, c.text) for c in before} & {
        chunk_id_for(doc_id, c.text) for c in after
    }
    assert len(unchanged) >= len(before) - len(old["Section 3"])


def test_same_input_same_chunks(wordpiece):
    # Given the same document, chunked twice by two chunkers
    doc = make_doc(mixed_document(), sectioned())

    # When chunked
    first = Chunker(wordpiece).chunk(doc)
    second = Chunker(wordpiece).chunk(doc.model_copy(deep=True))

    # Then the chunks are identical
    assert first == second


# --- edges and arguments -------------------------------------------------------------------------


@pytest.mark.parametrize("pages", [[], [""], ["   \n\t "], ["\n\n", " ", "\u00a0"]])
def test_empty_or_blank_documents_give_no_chunks(words, pages):
    # Given a document with no visible text
    doc = make_doc(*pages)

    # When chunked
    # Then there are no chunks
    assert Chunker(words).chunk(doc) == []


def test_arguments_are_checked_and_overlap_is_capped(words):
    # Given bad sizes, and an overlap larger than half a chunk
    # When a chunker is built
    # Then bad sizes are refused and the overlap is capped at half the chunk
    with pytest.raises(ValueError):
        Chunker(words, chunk_size=0)
    with pytest.raises(ValueError):
        Chunker(words, overlap=-1)
    assert Chunker(words, chunk_size=32, overlap=128).overlap == 16


# --- short documents stay whole ---------------------------------------------------------------


def test_a_document_within_the_whole_document_size_is_one_chunk(words):
    # Given a two-page document of 2 sections, 64 words in all, and chunks of 25 words
    text = f"# A\n\n{sentences('a', 3)}\n\n# B\n\n{sentences('b', 3)}"
    doc = make_doc(text, sentences("c", 4))
    chunker = Chunker(words, chunk_size=25, overlap=5, whole_document=64)

    # When chunked
    chunks = chunker.chunk(doc)

    # Then it is one chunk holding all of it, over both pages, counted as stored
    assert len(chunks) == 1
    (chunk,) = chunks
    assert chunk.text.split() == f"{text}\n{sentences('c', 4)}".split()
    assert (chunk.page_start, chunk.page_end) == (1, 2)
    assert chunk.token_count == words.count(chunk.text) == 64


def test_a_document_over_the_whole_document_size_is_cut_as_usual(words):
    # Given the same kind of document one word over the whole-document size
    doc = make_doc(sentences("a", 10) + " extra")  # 61 words
    whole = Chunker(words, chunk_size=25, overlap=5, whole_document=60).chunk(doc)
    usual = Chunker(words, chunk_size=25, overlap=5).chunk(doc)

    # Then it is chunked exactly as without the rule, every chunk within the chunk size
    assert [c.text for c in whole] == [c.text for c in usual]
    assert len(whole) > 1
    assert all(c.token_count <= 25 for c in whole)


def test_a_whole_document_size_below_the_chunk_size_changes_nothing(words):
    doc = make_doc(sentences("a", 10))
    assert [c.text for c in Chunker(words, chunk_size=25, whole_document=20).chunk(doc)] == [
        c.text for c in Chunker(words, chunk_size=25).chunk(doc)
    ]


def test_the_whole_document_bound_holds_for_a_counter_that_does_not_add_up():
    # Given a counter that charges for line breaks: 30 rows of 3 words are 90 as leaves, 119 stored
    counter = LineCostCounter()
    rows = "\n".join(f"| r{i} |" for i in range(30))

    # When the whole-document size lies between the two
    chunks = Chunker(counter, chunk_size=40, overlap=0, whole_document=100).chunk(make_doc(rows))

    # Then the document is not kept whole (it is over, counted as stored): usual chunks
    assert len(chunks) > 1
    assert all(counter.count(c.text) == c.token_count <= 40 for c in chunks)


def test_a_negative_whole_document_size_is_refused(words):
    with pytest.raises(ValueError, match="whole_document"):
        Chunker(words, whole_document=-1)


def test_the_settings_choose_the_whole_document_size(monkeypatch):
    from docket.chunking import chunker_for
    from docket.config import Settings

    chunker = chunker_for(Settings(chunk_size_tokens=128, chunk_whole_document_tokens=300))
    assert (chunker.chunk_size, chunker.whole_document) == (128, 300)


def test_a_huge_unbroken_string_is_cut_by_characters_too(wordpiece):
    # Given 500 KB without a space (WordPiece reads any word over 100 characters as one [UNK])
    blob = "x" * 300_000 + "é" * 100_000 + "東" * 100_000
    doc = make_doc(f"Intro line.\n\n{blob}\n\nLast line.")

    # When chunked
    chunks = Chunker(wordpiece, chunk_size=256, overlap=32).chunk(doc)

    # Then no chunk is over 256 x 16 characters (a DynamoDB item holds 400 KB), nothing is lost
    assert max(len(c.text) for c in chunks) <= 256 * 16
    assert max(len(c.text.encode()) for c in chunks) < 64 * 1024
    assert "".join(c.text for c in chunks).count("東") >= 100_000
    assert all(c.token_count <= 256 for c in chunks)
