"""Properties of the chunker over generated Markdown-like documents, with the real tokenizer."""

from __future__ import annotations

import sys
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from docket.chunking import Chunker
from docket.models import ExtractedDocument, Page

sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

WORDS = [
    "the", "cells", "were", "grown", "in", "culture", "for", "3.5", "days", "e.g.", "Fig.", "2",
    "et", "al.", "(p", "<", "0.05).", "naïve", "μm", "IL-6", "Dr.", "U.S.", "mg/kg", "x", "a",
    "inflammation", "immunohistochemistry", "細胞", "https://ex.org/a/b", "—", "“quoted”", "|",
    "#", "##", "-", "~~", "*", "1.", "A.", "self-renewal", "3", "100%", "5'-UTR",
]  # fmt: skip

word = st.sampled_from(WORDS)
ending = st.sampled_from([".", ".", "?", "!", ":", ""])


@st.composite
def sentence(draw) -> str:
    words = draw(st.lists(word, min_size=1, max_size=20))
    return " ".join([words[0].capitalize(), *words[1:]]) + draw(ending)


@st.composite
def block(draw) -> str:
    kind = draw(
        st.sampled_from(["paragraph", "paragraph", "wrapped", "heading", "list", "table", "code"])
    )
    if kind == "heading":
        return (
            "#" * draw(st.integers(1, 3))
            + " "
            + " ".join(draw(st.lists(word, min_size=1, max_size=5)))
        )
    if kind == "list":
        return "\n".join("- " + draw(sentence()) for _ in range(draw(st.integers(1, 5))))
    if kind == "table":
        rows = draw(st.lists(st.lists(word, min_size=2, max_size=4), min_size=1, max_size=8))
        return "\n".join(" | ".join(row) for row in rows)
    if kind == "code":
        lines = draw(st.lists(st.lists(word, min_size=1, max_size=6), min_size=1, max_size=12))
        indent = draw(st.sampled_from(["", "    ", "\t"]))
        return "```\n" + "\n".join(indent + " ".join(line) for line in lines) + "\n```"
    text = " ".join(draw(st.lists(sentence(), min_size=1, max_size=8)))
    if kind == "wrapped":  # hard-wrapped like PDF text
        width = draw(st.integers(20, 80))
        lines, line = [], ""
        for w in text.split(" "):
            if line and len(line) + len(w) > width:
                lines.append(line)
                line = w
            else:
                line = f"{line} {w}" if line else w
        text = "\n".join([*lines, line])
    return text


@st.composite
def document(draw) -> ExtractedDocument:
    text = "\n\n".join(draw(st.lists(block(), min_size=0, max_size=10)))
    lines = text.split("\n")
    cuts = sorted(set(draw(st.lists(st.integers(0, len(lines)), max_size=4))))
    pages, last = [], 0
    for cut in [*cuts, len(lines)]:
        pages.append("\n".join(lines[last:cut]))
        last = cut
    first = draw(st.integers(1, 50))
    return ExtractedDocument(
        format="md", pages=[Page(number=first + i, text=t) for i, t in enumerate(pages)]
    )


sizes = st.sampled_from([16, 24, 48, 96, 256])
overlaps = st.sampled_from([0, 4, 16, 32])


def covers_in_order(source: list[str], chunks: list[list[str]]) -> bool:
    """Each chunk is a run of the source's words; runs follow one another with overlap, no gaps."""

    @cache
    def place(i: int, start: int, end: int) -> bool:
        if i == len(chunks):
            return end == len(source)
        words = chunks[i]
        for s in range(start, end + 1):
            e = s + len(words)
            if e > end and source[s:e] == words and place(i + 1, s, e):
                return True
        return False

    return place(0, 0, 0)


@settings(max_examples=150, deadline=None)
@given(doc=document(), size=sizes, overlap=overlaps)
def test_every_word_is_in_a_chunk_in_order(wordpiece, doc, size, overlap):
    # Given any document
    # When chunked
    chunks = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc)

    # Then the chunks are consecutive runs of the document's words, covering all of them
    source = doc.text.split()
    assert covers_in_order(source, [c.text.split() for c in chunks])
    if overlap == 0:  # without overlap, exactly the document's visible characters, in order
        assert "".join("".join(c.text.split()) for c in chunks) == "".join(source)
    assert bool(chunks) == bool(source)


@settings(max_examples=150, deadline=None)
@given(doc=document(), size=sizes, overlap=overlaps)
def test_no_chunk_exceeds_the_size(wordpiece, doc, size, overlap):
    # Given any document
    # When chunked
    chunks = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc)

    # Then each chunk's exact token count is filled in and within the size; no chunk is empty
    assert all(wordpiece.count(c.text) == c.token_count <= size for c in chunks)
    assert all(c.text.strip() and c.text == c.text.rstrip() for c in chunks)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


@settings(max_examples=60, deadline=None)
@given(doc=document(), size=sizes, overlap=overlaps)
def test_same_document_same_chunks(wordpiece, doc, size, overlap):
    # Given any document
    # When it is chunked twice, by two chunkers
    first = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc)
    second = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc.model_copy(deep=True))

    # Then the chunks are identical
    assert first == second


@st.composite
def labelled_pages(draw) -> ExtractedDocument:
    """Pages whose every word names its page, in lines and paragraphs of random shape."""
    pages = []
    for number in range(1, draw(st.integers(1, 6)) + 1):
        lines = []
        for line_no in range(draw(st.integers(0, 6))):
            count = draw(st.integers(1, 14))
            words = [f"p{number}x{line_no}w{i}" for i in range(count)]
            lines.append(" ".join(words) + draw(st.sampled_from(["", ".", ". ", ""])))
            if draw(st.booleans()):
                lines.append("")
        pages.append(Page(number=number, text="\n".join(lines)))
    return ExtractedDocument(format="pdf", pages=pages)


@settings(max_examples=150, deadline=None)
@given(doc=labelled_pages(), size=sizes, overlap=overlaps)
def test_page_ranges_are_exactly_the_pages_of_the_chunk_text(wordpiece, doc, size, overlap):
    # Given pages whose words carry their page number
    # When chunked
    chunks = Chunker(wordpiece, chunk_size=size, overlap=overlap).chunk(doc)

    # Then each chunk's range is the first and last page its words come from
    for chunk in chunks:
        pages = [int(w[1:].split("x")[0]) for w in chunk.text.replace(".", "").split()]
        assert (chunk.page_start, chunk.page_end) == (min(pages), max(pages))


@st.composite
def sections_and_edit(draw) -> tuple[list[str], int, str]:
    count = draw(st.integers(2, 6))
    bodies = [
        "\n\n".join(
            draw(st.lists(block().filter(lambda b: not b.startswith("#")), min_size=1, max_size=5))
        )
        for _ in range(count)
    ]
    return (
        bodies,
        draw(st.integers(0, count - 1)),
        draw(block().filter(lambda b: not b.startswith("#"))),
    )


def _sectioned(bodies: list[str]) -> ExtractedDocument:
    text = "\n\n".join(f"# Part {i}\n\n{body}" for i, body in enumerate(bodies))
    return ExtractedDocument(format="md", pages=[Page(number=1, text=text)])


@settings(max_examples=80, deadline=None)
@given(case=sections_and_edit(), size=sizes, overlap=overlaps)
def test_editing_a_section_changes_no_other_sections_chunks(wordpiece, case, size, overlap):
    # Given a document of top-level sections
    bodies, edited, new_block = case
    chunker = Chunker(wordpiece, chunk_size=size, overlap=overlap)
    before = chunker.chunk(_sectioned(bodies))

    # When one section gains a block
    changed = list(bodies)
    changed[edited] = f"{new_block}\n\n{bodies[edited]}"
    after = chunker.chunk(_sectioned(changed))

    # Then the chunks of every other section are the same texts
    def texts(chunks, part: int) -> list[str]:
        return [c.text for c in chunks if (c.section or "").split(" > ")[0] == f"Part {part}"]

    for part in range(len(bodies)):
        if part != edited:
            assert texts(before, part) == texts(after, part)
