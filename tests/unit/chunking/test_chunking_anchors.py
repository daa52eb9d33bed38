"""Content-defined anchors: an edit inside a long section re-packs only the chunks around it."""

from __future__ import annotations

import json
import random
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from docket.chunking import Chunker
from docket.models import ExtractedDocument, Page

from .conftest import make_doc, sentences

COMMON_WORDS = """the of and to in a is that for it as with was on be by this are from at or an
which have not has but were their more its also these can been other than into only two
between after most such may over some when would all both through during however while
cells protein expression patients study results increased levels treatment mice response
analysis associated model data effect risk function disease clinical cancer gene growth
significant activity human role specific mechanism blood therapy cohort receptor signal
pathway tissue infection genetic observed reduced higher lower compared control samples
method approach evidence structure process system factor change early late long rate"""
VOCAB = COMMON_WORDS.split()

REWRITTEN = (
    "In a later revision this sentence was rewritten at some length to say more about the same"
    " thing"
)


def paragraph(rng: random.Random, label: int) -> str:
    """8 to 30 sentences of common words (about 100 to 500 tokens), named by ``label``."""
    out = []
    for index in range(rng.randint(8, 30)):
        words = [rng.choice(VOCAB) for _ in range(rng.randint(8, 22))]
        words[0] = words[0].capitalize()
        if index == 0:
            words.insert(1, f"p{label}")
        out.append(" ".join(words) + ".")
    return " ".join(out)


def paragraphs(count: int = 40, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [paragraph(rng, label) for label in range(count)]


def headless(blocks: list[str]) -> ExtractedDocument:
    return ExtractedDocument(format="txt", pages=[Page(number=1, text="\n\n".join(blocks))])


def rewrite(text: str) -> str:
    parts = text.split(". ")
    parts[1] = REWRITTEN
    return ". ".join(parts)


def edits_near_the_start(blocks: list[str], inserted: str, at: range) -> list[list[str]]:
    """Each paragraph in ``at`` rewritten, preceded by ``inserted``, and deleted."""
    out = []
    for i in at:
        out.append([*blocks[:i], rewrite(blocks[i]), *blocks[i + 1 :]])
        out.append([*blocks[:i], inserted, *blocks[i:]])
        out.append([*blocks[:i], *blocks[i + 1 :]])
    return out


def changed(chunker: Chunker, before: list[str], after: list[str]) -> int:
    """Chunks of ``after`` whose text (and so id) is not among the chunks of ``before``."""
    old = {c.text for c in chunker.chunk(headless(before))}
    return sum(c.text not in old for c in chunker.chunk(headless(after)))


# --- locality on documents without headings ------------------------------------------------------


def test_editing_a_paragraph_near_the_start_of_a_headless_document_changes_few_chunks(wordpiece):
    # Given a document of 40 long paragraphs and no headings (one section, over 50 chunks)
    blocks = paragraphs(seed=0)
    inserted = paragraph(random.Random(99), 999)
    anchored = Chunker(wordpiece)
    greedy = Chunker(wordpiece, anchor_spacing=0)
    assert len(anchored.chunk(headless(blocks))) >= 50

    # When one of its first paragraphs is rewritten, has a paragraph put before it, or is deleted
    edits = edits_near_the_start(blocks, inserted, range(3))
    with_anchors = [changed(anchored, blocks, edit) for edit in edits]
    without = [changed(greedy, blocks, edit) for edit in edits]

    # Then at most 3 chunks change for each edit, where packing from the start without anchors
    # changes most of the document's chunks for all but the smallest edits
    assert max(with_anchors) <= 3, with_anchors
    assert sorted(without)[len(without) // 2] >= 25, without


@pytest.mark.shared_data
def test_editing_an_abstract_near_the_start_of_a_headless_document_changes_few_chunks(
    shared_data, wordpiece
):
    # Given 40 SciFact abstracts as the paragraphs of one document without headings
    corpus = shared_data / "scifact" / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip(f"{corpus} not found")
    rows = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    blocks = [row["text"] for row in rows[120:160]]
    chunker = Chunker(wordpiece)
    assert len(chunker.chunk(headless(blocks))) >= 15

    # When the third abstract is rewritten, has another abstract put before it, or is deleted
    edits = edits_near_the_start(blocks, rows[1000]["text"], range(2, 3))

    with_anchors = [changed(chunker, blocks, edit) for edit in edits]
    without = [changed(Chunker(wordpiece, anchor_spacing=0), blocks, edit) for edit in edits]

    # Then at most 3 chunks change for each edit (without anchors, over 15 for each)
    assert max(with_anchors) <= 3, with_anchors
    assert min(without) > 15, without


def test_a_giant_paragraph_is_anchored_at_its_lines(wordpiece):
    # Given PDF-like text: one block of 300 short lines, each its own sentence, no blank lines
    rng = random.Random(5)
    lines = [
        " ".join(rng.choice(VOCAB) for _ in range(rng.randint(6, 14))).capitalize() + "."
        for _ in range(300)
    ]
    text = "\n".join(lines)
    chunker = Chunker(wordpiece)
    runs = chunker.chunk_runs(make_doc(text))

    # When a line near the start is rewritten
    edited = "\n".join([*lines[:5], REWRITTEN + ".", *lines[6:]])
    old = {c.text for run in runs for c in run}
    new = chunker.chunk(make_doc(edited))

    # Then the block was cut into several runs, and at most 3 chunks change
    assert len(runs) >= 3
    assert sum(c.text not in old for c in new) <= 3


# --- what anchors keep ---------------------------------------------------------------------------


def test_no_overlap_is_carried_across_an_anchor(words):
    # Given a long document whose every word is distinct, chunked with overlap
    blocks = [sentences(f"s{i}x", 3) for i in range(100)]
    chunker = Chunker(words, chunk_size=40, overlap=8)

    # When chunked into runs
    runs = chunker.chunk_runs(headless(blocks))

    # Then inside a run every chunk starts with the last words of the one before, but a run's
    # first chunk starts with words no earlier chunk holds
    assert len(runs) >= 3
    seen: set[str] = set()
    for run in runs:
        assert run[0].text.split()[0] not in seen
        for previous, following in pairwise(run):
            assert following.text.split()[0] in previous.text.split()
        seen.update(word for c in run for word in c.text.split())


def test_a_section_shorter_than_the_anchor_spacing_is_packed_as_before(words):
    # Given a document of 288 words: under three chunk sizes (the default spacing) of 128
    text = "\n\n".join(sentences(f"p{i}x", 4) for i in range(12))
    assert words.count(text) == 288

    # When chunked with and without anchors
    anchored = Chunker(words, chunk_size=128, overlap=16).chunk_runs(make_doc(text))
    greedy = Chunker(words, chunk_size=128, overlap=16, anchor_spacing=0).chunk(make_doc(text))

    # Then it is one run, chunked exactly as without anchors
    assert len(anchored) == 1
    assert anchored[0] == greedy


def test_chunks_are_the_runs_in_order(wordpiece):
    # Given a long document with headings and long sections
    blocks = paragraphs(count=30, seed=3)
    text = "\n\n".join(
        f"# Part {i}\n\n" + "\n\n".join(blocks[i * 10 : (i + 1) * 10]) for i in range(3)
    )

    # When chunked, and chunked into runs
    chunker = Chunker(wordpiece)
    chunks = chunker.chunk(make_doc(text))
    runs = chunker.chunk_runs(make_doc(text))

    # Then the chunks are the runs' chunks, in order, numbered from 0, and every section is
    # several runs
    assert [c for run in runs for c in run] == chunks
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    starts = [run[0].section for run in runs]
    assert all(starts.count(f"Part {i}") >= 2 for i in range(3)), starts


def test_an_anchor_never_separates_a_heading_from_its_text(words):
    # Given long sections, each subsection heading followed by its text
    body = "\n\n".join(
        f"## Sub {i}\n\n" + "\n\n".join(sentences(f"b{i}x{j}", 3) for j in range(4))
        for i in range(30)
    )
    text = f"# Top\n\n{sentences('intro', 3)}\n\n{body}"

    # When chunked at 40 words, so that anchors fire
    chunker = Chunker(words, chunk_size=40, overlap=8)
    runs = chunker.chunk_runs(make_doc(text))

    # Then no chunk ends with a heading
    assert len(runs) > 3
    assert not any(c.text.splitlines()[-1].startswith("#") for run in runs for c in run)


def test_runs_after_an_anchor_do_not_depend_on_the_text_before_it(words):
    # Given a long document, and the same document with its first half replaced
    blocks = [sentences(f"b{i}x", 2) for i in range(200)]
    other = [sentences(f"o{i}x", 2) for i in range(100)]
    chunker = Chunker(words, chunk_size=40, overlap=8)

    # When both are chunked into runs
    def shared_half(doc_blocks: list[str]) -> list[list[str]]:
        runs = chunker.chunk_runs(headless(doc_blocks))
        texts = [[c.text for c in run] for run in runs]
        return [
            run for run in texts if run[0].startswith("B") and int(run[0][1:].split("X")[0]) >= 100
        ]

    original, replaced = shared_half(blocks), shared_half(other + blocks[100:])

    # Then from the second anchor in the shared half on (the first one's firing depends on the
    # gap before it), the runs are the same
    assert len(original) >= 3
    assert replaced[len(replaced) - len(original) + 1 :] == original[1:]


# --- properties ----------------------------------------------------------------------------------

word = st.sampled_from(VOCAB)


@st.composite
def sentence(draw) -> str:
    words = draw(st.lists(word, min_size=3, max_size=12))
    return " ".join([words[0].capitalize(), *words[1:]]) + draw(st.sampled_from([".", "?", "."]))


@st.composite
def block(draw) -> str:
    """A paragraph, hard-wrapped paragraph, list, table or code block: never a heading."""
    kind = draw(st.sampled_from(["paragraph", "paragraph", "wrapped", "list", "table", "code"]))
    if kind == "list":
        return "\n".join("- " + draw(sentence()) for _ in range(draw(st.integers(1, 4))))
    if kind == "table":
        rows = draw(st.lists(st.lists(word, min_size=2, max_size=4), min_size=1, max_size=5))
        return "\n".join(" | ".join(row) for row in rows)
    if kind == "code":
        lines = draw(st.lists(st.lists(word, min_size=1, max_size=5), min_size=1, max_size=6))
        return "```\n" + "\n".join("    " + " ".join(line) for line in lines) + "\n```"
    text = " ".join(draw(st.lists(sentence(), min_size=1, max_size=4)))
    if kind == "wrapped":
        words = text.split(" ")
        return "\n".join(" ".join(words[i : i + 7]) for i in range(0, len(words), 7))
    return text


@st.composite
def headless_edit(draw) -> tuple[list[str], list[str]]:
    """Blocks of a document without headings, and the same blocks after one block's edit."""
    blocks = draw(st.lists(block(), min_size=10, max_size=40))
    at = draw(st.integers(0, len(blocks) - 1))
    kind = draw(st.sampled_from(["replace", "insert", "delete"]))
    if kind == "delete":
        return blocks, [*blocks[:at], *blocks[at + 1 :]]
    new = draw(block())
    return blocks, [*blocks[:at], new, *blocks[at + (kind == "replace") :]]


def _differing_runs(before: list[list[str]], after: list[list[str]]) -> tuple[int, int]:
    """Runs of ``before`` and of ``after`` left once their common first and last runs go."""
    prefix = 0
    while prefix < min(len(before), len(after)) and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(before), len(after)) - prefix and before[-1 - suffix] == after[-1 - suffix]
    ):
        suffix += 1
    return len(before) - prefix - suffix, len(after) - prefix - suffix


sizes = st.sampled_from([32, 64, 128, 256])
overlaps = st.sampled_from([0, 8, 32])


@settings(max_examples=150, deadline=None)
@given(case=headless_edit(), size=sizes, overlap=overlaps)
def test_an_edit_to_one_block_changes_only_the_runs_around_it(wordpiece, case, size, overlap):
    # Given a document without headings, whose blocks are each under the anchor spacing
    before, after = case
    chunker = Chunker(wordpiece, chunk_size=size, overlap=overlap)
    assume(all(wordpiece.count(b) < chunker.anchor_tokens for b in {*before, *after}))

    # When one block is replaced, inserted or deleted
    old = [[c.text for c in run] for run in chunker.chunk_runs(headless(before))]
    new = [[c.text for c in run] for run in chunker.chunk_runs(headless(after))]

    # Then the runs before and after the edit keep their chunks: only the run the edit falls in
    # and the runs it can split off or merge with (at most four, of either version) differ
    assert max(_differing_runs(old, new)) <= 4


@settings(max_examples=100, deadline=None)
@given(blocks=st.lists(block(), min_size=5, max_size=40), size=sizes, overlap=overlaps)
def test_runs_are_never_small(wordpiece, blocks, size, overlap):
    # Given any document without headings
    chunker = Chunker(wordpiece, chunk_size=size, overlap=overlap)

    # When chunked into runs
    runs = chunker.chunk_runs(headless(blocks))

    # Then when anchors cut it, every run holds at least a chunk size of text
    if len(runs) > 1:
        assert all(sum(c.token_count for c in run) >= size for run in runs)
