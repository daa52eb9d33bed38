"""Token-aware, structure-first chunking of an extracted document.

How it works:

1. The pages are joined with line breaks (a page break is a line break: PDF paragraphs run across
   pages) and parsed into a tree of preferred cut points (see ``structure``): top-level sections,
   subsections, blocks, lines, sentences.
2. Every leaf is counted in one tokenizer batch. A leaf over ``chunk_size`` is split into words,
   and a word still over it (a URL, a base64 blob) into the longest prefixes that the counter
   itself puts within the size (galloping, then binary search), so every leaf fits alone.
3. Each top-level section is cut into runs at content-defined anchors (below), and each run is
   packed on its own: walking the tree, an item that fits in the current chunk joins it; one that
   fits in an empty chunk starts the next chunk (if the current one is at least half full, or it
   is code or a table, which stay whole when they fit); anything else is opened up and its
   children are placed the same way. So the strongest available boundary wins, small neighbours
   are packed greedily, and a heading never ends a chunk.
4. A chunk that continues a run starts with the trailing sentences of the one before it, up to
   ``overlap`` tokens (a single sentence may take up to half as much again; a longer one is cut
   at words). Overlap never crosses a heading, code, a table or an anchor.
5. Every finished chunk is counted again as the exact text it will be stored as; the count is its
   ``token_count``, and a chunk over the limit (only possible with a counter that is not additive
   over whitespace) is halved until it fits. With the WordPiece counter packing is already exact;
   the recount is what guarantees the bound for any counter: halving ends at single leaves, and
   every leaf was counted alone within the size (for any counter that charges a single character
   at most ``chunk_size`` tokens).

Locality: a top-level section's chunks depend only on that section's text, so editing one section
leaves every other section's chunk texts, and so their chunk ids, unchanged. Inside a section,
greedy packing from its start would let an early edit shift every later boundary (a document
without headings, as most PDFs and text files are, is one section), so sections are cut further
at anchors, the way content-defined chunking (rsync, FastCDC) cuts a byte stream:

- Candidates are items that are not the first of their parent and do not follow a heading:
  blocks (paragraphs, lists, tables, code, subsections) and, inside an item of ``anchor_spacing``
  chunk sizes or more, its lines, sentences or words. Such an item is a candidate when the hash
  of its text, as a fraction in [0, 1), is below its tokens / (``anchor_spacing`` *
  ``chunk_size``): about one candidate per ``anchor_spacing`` chunk sizes of text, however the
  text is divided, and an item that long always is one.
- A candidate fires, forcing a chunk boundary in front of it, when at least ``ANCHOR_MIN_GAP``
  chunk sizes of text lie between it and the previous candidate (or the section start) and
  between it and the section end, so no run is small. A section shorter than ``anchor_spacing``
  chunk sizes has no anchors.

Whether an item is a candidate depends only on its own text, and whether it fires only on the
text back to the previous candidate (and, for the last one, on the text to the section end). A
run's chunks depend only on the run's text, and no overlap is carried into a run. So an edit
re-packs only the run it falls in and the runs whose anchors it can make or unmake (the edited
block's own, the next candidate's, and, near the section end, the last one's); every other chunk
keeps its text, and so its id. At the default settings a run is about five chunks, and greedy
packing inside a run often resynchronises before the run ends.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence

from docket.chunking.structure import (
    WORD_SEP,
    Item,
    Kind,
    Leaf,
    Node,
    iter_leaves,
    parse_sections,
)
from docket.chunking.tokens import TokenCounter
from docket.models import ChunkDraft, ExtractedDocument, Page

PAGE_SEP = "\n"
SECTION_SEP = " > "
MIN_FILL = 0.5  # a chunk at least this full may end early to keep the next block whole
# A token is charged for at least every this many characters, whatever the tokenizer says: a
# WordPiece tokenizer reads any word over 100 characters as one [UNK], so a 500 KB unbroken string
# would otherwise be "one token" and one chunk, past DynamoDB's 400 KB item limit. Prose averages
# 4-5 characters a token, so the bound never bites there; it caps a chunk at chunk_size * 16
# characters (64 KB of UTF-8 at the default size, at most).
MAX_CHARS_PER_TOKEN = 16
OVERLAP_SLACK = 0.5  # one trailing sentence may exceed the overlap by this fraction
ANCHOR_SPACING = 3.0  # chunk sizes of text between candidate anchors, on average
ANCHOR_MIN_GAP = 1.0  # chunk sizes of text an anchor needs before it (and to the section end)

_WORD = re.compile(r"\S+")


class Chunker:
    """Splits an extracted document into chunks of at most ``chunk_size`` tokens of ``counter``.

    ``overlap`` tokens of trailing sentences are repeated at the start of the next chunk of the
    same run (capped at half a chunk). ``anchor_spacing`` is the mean distance between candidate
    anchors in chunk sizes (0: no anchors; see the module docstring). Deterministic: the same
    document gives the same chunks.
    """

    def __init__(
        self,
        counter: TokenCounter,
        chunk_size: int = 256,
        overlap: int = 32,
        anchor_spacing: float = ANCHOR_SPACING,
        whole_document: int = 0,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        if overlap < 0:
            raise ValueError(f"overlap must not be negative, got {overlap}")
        if anchor_spacing < 0:
            raise ValueError(f"anchor_spacing must not be negative, got {anchor_spacing}")
        if whole_document < 0:
            raise ValueError(f"whole_document must not be negative, got {whole_document}")
        self.counter: TokenCounter = _CharBounded(counter)
        # A document of at most this many tokens stays one chunk (0: off; see chunk_runs).
        self.whole_document = whole_document
        self.chunk_size = chunk_size
        # Overlap beyond half a chunk would leave too little room for new text.
        self.overlap = min(overlap, chunk_size // 2)
        # Content-defined anchors: about one candidate per ``anchor_tokens`` (0: no anchors).
        self.anchor_tokens = anchor_spacing * chunk_size
        self.anchor_min_gap = ANCHOR_MIN_GAP * chunk_size

    def chunk(self, doc: ExtractedDocument) -> list[ChunkDraft]:
        return [draft for run in self.chunk_runs(doc) for draft in run]

    def chunk_runs(self, doc: ExtractedDocument) -> list[list[ChunkDraft]]:
        """The chunks of ``doc``, grouped into runs that were packed independently of each other.

        A run starts at a top-level section or at a content-defined anchor, and its chunks depend
        only on its own text. ``chunk`` is these runs concatenated.
        """
        text, page_offsets, page_numbers = _join_pages(doc.pages)
        sections = parse_sections(text)
        if not sections:
            return []
        sections = self._count(text, sections)
        whole = self._whole(sections)
        if whole is not None:
            return self._drafts([[whole]], page_offsets, page_numbers, limit=self.whole_document)
        packed: list[list[list[Leaf]]] = []
        for section in sections:
            for run in _split_at(section, self._anchors(section)):
                packed.append(_Packer(self, text).pack(run))
        return self._drafts(packed, page_offsets, page_numbers)

    def _whole(self, sections: list[Item]) -> list[Leaf] | None:
        """All of a short document's leaves, when it is to stay one chunk, else None.

        A document of at most ``whole_document`` tokens (an abstract, a ticket, an FAQ entry) is
        one retrievable unit: BM25 scores all of its words together, and the embedding model
        reads its first ``max_seq_length`` tokens, as it reads any passage. Cutting it would split
        its evidence over two chunks and embed its title twice. Counted as rendered, so the bound
        holds for any counter.
        """
        if self.whole_document <= self.chunk_size:
            return None
        if sum(section.tokens for section in sections) > self.whole_document:
            return None
        leaves = [leaf for section in sections for leaf in iter_leaves(section)]
        if self.counter.count(render(leaves)) > self.whole_document:
            return None
        return leaves

    # -- anchors -----------------------------------------------------------------------------

    def _anchors(self, section: Item) -> set[int]:
        """Ids of the items of ``section`` that fire as anchors (see the module docstring)."""
        if self.anchor_tokens <= 0 or isinstance(section, Leaf):
            return set()
        if section.tokens < self.anchor_tokens:
            return set()
        candidates: list[tuple[int, Item]] = []
        self._candidates(section, 0, candidates)
        fired: set[int] = set()
        previous = 0
        for offset, item in candidates:
            if (
                offset - previous >= self.anchor_min_gap
                and section.tokens - offset >= self.anchor_min_gap
            ):
                fired.add(id(item))
            previous = offset
        return fired

    def _candidates(self, node: Node, offset: int, out: list[tuple[int, Item]]) -> None:
        """Candidates in ``node`` as (tokens before them in the section, item), in order."""
        for index, child in enumerate(node.children):
            if (
                index
                and _last_leaf(node.children[index - 1]).kind is not Kind.HEADING
                and (
                    child.tokens >= self.anchor_tokens
                    or _hash_fraction(child) * self.anchor_tokens < child.tokens
                )
            ):
                out.append((offset, child))
            if isinstance(child, Node) and child.tokens >= self.anchor_tokens:
                self._candidates(child, offset, out)
            offset += child.tokens

    # -- counting ----------------------------------------------------------------------------

    def _count(self, text: str, sections: list[Item]) -> list[Item]:
        leaves = [leaf for section in sections for leaf in iter_leaves(section)]
        for leaf, tokens in zip(
            leaves, self.counter.count_batch([leaf.text for leaf in leaves]), strict=True
        ):
            leaf.tokens = tokens
        oversized = [leaf for leaf in leaves if leaf.tokens > self.chunk_size]
        if oversized:
            words = {id(leaf): self.split_words(text, leaf) for leaf in oversized}
            sections = [_replace_leaves(s, words) for s in sections]
        for section in sections:
            _sum_tokens(section)
        return sections

    def split_words(self, text: str, leaf: Leaf) -> Node:
        """The leaf as a node of counted words, each cut further if it alone is over the limit."""
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text, leaf.start, leaf.end)]
        words = [
            Leaf(text[a:b], a, b, leaf.sep if i == 0 else WORD_SEP, leaf.kind, leaf.path)
            for i, (a, b) in enumerate(spans)
        ]
        for word, tokens in zip(
            words, self.counter.count_batch([w.text for w in words]), strict=True
        ):
            word.tokens = tokens
        children: list[Item] = [
            self._split_chars(w) if w.tokens > self.chunk_size else w for w in words
        ]
        node = Node(children)
        _sum_tokens(node)
        return node

    def _split_chars(self, word: Leaf) -> Node:
        """Longest prefixes the counter accepts, so the bound holds whatever the counter.

        Galloping then binary search keeps the work near-linear in the word's length. A single
        character always makes a piece (a tokenizer gives one character at most a token or two).
        """
        pieces: list[Item] = []
        text = word.text
        begin = 0
        while begin < len(text):
            good, bad = begin + 1, None
            step = max(self.chunk_size, 1)
            while bad is None:
                probe = min(begin + step, len(text))
                if self.counter.count(text[begin:probe]) <= self.chunk_size:
                    good = probe
                    if probe == len(text):
                        break
                    step *= 2
                else:
                    bad = probe
            if bad is not None:
                while bad - good > 1:
                    mid = (good + bad) // 2
                    if self.counter.count(text[begin:mid]) <= self.chunk_size:
                        good = mid
                    else:
                        bad = mid
            piece = text[begin:good]
            start = word.start + begin
            leaf = Leaf(
                piece,
                start,
                start + len(piece),
                word.sep if begin == 0 else "",
                word.kind,
                word.path,
            )
            leaf.tokens = self.counter.count(piece)
            pieces.append(leaf)
            begin = good
        return Node(pieces)

    # -- output ------------------------------------------------------------------------------

    def _drafts(
        self,
        packed: list[list[list[Leaf]]],
        page_offsets: list[int],
        page_numbers: list[int],
        *,
        limit: int = 0,
    ) -> list[list[ChunkDraft]]:
        runs: list[list[ChunkDraft]] = []
        ordinal = 0
        for chunks in packed:
            run: list[ChunkDraft] = []
            for leaves, text, tokens in self._enforce_bound(chunks, limit or self.chunk_size):
                first, last = leaves[0], leaves[-1]
                run.append(
                    ChunkDraft(
                        text=text,
                        ordinal=ordinal,
                        page_start=_page_at(first.start, page_offsets, page_numbers),
                        page_end=_page_at(
                            max(last.end - 1, first.start), page_offsets, page_numbers
                        ),
                        section=SECTION_SEP.join(first.path) or None,
                        token_count=self._exact(text, tokens),
                    )
                )
                ordinal += 1
            if run:
                runs.append(run)
        return runs

    def _exact(self, text: str, bounded: int) -> int:
        """The tokenizer's own count of a finished chunk (``bounded`` unless the character
        bound set it, as for a long unbroken string)."""
        if bounded > -(-len(text) // MAX_CHARS_PER_TOKEN):
            return bounded
        counter = self.counter
        return counter.inner.count(text) if isinstance(counter, _CharBounded) else bounded

    def _enforce_bound(
        self, packed: list[list[Leaf]], limit: int
    ) -> list[tuple[list[Leaf], str, int]]:
        """Count each chunk as stored; halve one that a non-additive counter puts over ``limit``."""
        texts = [render(leaves) for leaves in packed]
        counted = zip(packed, texts, self.counter.count_batch(texts), strict=True)
        done: list[tuple[list[Leaf], str, int]] = []
        for leaves, text, tokens in counted:
            done.extend(self._within_bound(leaves, text, tokens, limit))
        return [chunk for chunk in done if chunk[1].strip()]

    def _within_bound(
        self, leaves: list[Leaf], text: str, tokens: int, limit: int
    ) -> list[tuple[list[Leaf], str, int]]:
        if tokens <= limit or len(leaves) == 1:  # one leaf was counted alone: it fits
            return [(leaves, text, tokens)]
        out: list[tuple[list[Leaf], str, int]] = []
        for half in (leaves[: len(leaves) // 2], leaves[len(leaves) // 2 :]):
            half_text = render(half)
            out.extend(self._within_bound(half, half_text, self.counter.count(half_text), limit))
        return out


class _CharBounded:
    """``counter``, charging at least one token per ``MAX_CHARS_PER_TOKEN`` characters."""

    def __init__(self, counter: TokenCounter) -> None:
        self.inner = counter

    def count(self, text: str) -> int:
        return max(self.inner.count(text), -(-len(text) // MAX_CHARS_PER_TOKEN))

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        counts = self.inner.count_batch(texts)
        return [
            max(n, -(-len(t) // MAX_CHARS_PER_TOKEN)) for n, t in zip(counts, texts, strict=True)
        ]


def render(leaves: Sequence[Leaf]) -> str:
    parts = [leaves[0].text]
    for leaf in leaves[1:]:
        parts.append(leaf.sep)
        parts.append(leaf.text)
    return "".join(parts)


class _Packer:
    """Greedy packing of one run (a section, or the part of one between anchors) into chunks."""

    def __init__(self, chunker: Chunker, text: str) -> None:
        self.size = chunker.chunk_size
        self.overlap = chunker.overlap
        self.min_fill = int(self.size * MIN_FILL)
        self.chunker = chunker
        self.text = text
        self.chunks: list[list[Leaf]] = []
        self.current: list[Leaf] = []
        self.tokens = 0  # all of current
        self.body = 0  # current without overlap and headings
        self.overlap_count = 0  # leading leaves of current repeated from the previous chunk
        self.pending: list[Leaf] = []  # overlap for the next chunk, added when it starts

    def pack(self, section: Item) -> list[list[Leaf]]:
        self.place(section)
        self.flush(final=True)
        return self.chunks

    def place(self, item: Item) -> None:
        tokens = item.tokens
        if self.current:
            if tokens <= self.size - self.tokens:
                self.append(iter_leaves(item))
                return
            whole = isinstance(item, Leaf) or item.keep_whole or self.body >= self.min_fill
            if tokens <= self.size and whole:
                self.flush()
                self.place(item)
                return
        elif tokens <= self.size:
            self.start(iter_leaves(item), tokens)
            return
        assert isinstance(item, Node), "leaves are split until they fit"
        for child in item.children:
            self.place(child)

    def start(self, leaves: list[Leaf], tokens: int) -> None:
        overlap = self.pending if leaves[0].kind is not Kind.HEADING else []
        self.pending = []
        spare = self.size - tokens
        while overlap and sum(leaf.tokens for leaf in overlap) > spare:
            overlap = overlap[1:]  # overlap is best effort: drop its oldest text first
        self.current = [*overlap]
        self.overlap_count = len(overlap)
        self.tokens = sum(leaf.tokens for leaf in overlap)
        self.body = 0
        self.append(leaves)

    def append(self, leaves: list[Leaf]) -> None:
        self.current.extend(leaves)
        for leaf in leaves:
            self.tokens += leaf.tokens
            if leaf.kind is not Kind.HEADING:
                self.body += leaf.tokens

    def flush(self, final: bool = False) -> None:
        if not self.current:
            return
        emit = self.current
        carry: list[Leaf] = []
        if not final:
            # Headings at the end of a chunk move to the next one, which their section starts.
            cut = len(emit)
            while cut > self.overlap_count and emit[cut - 1].kind is Kind.HEADING:
                cut -= 1
            if any(leaf.kind is not Kind.HEADING for leaf in emit[self.overlap_count : cut]):
                emit, carry = emit[:cut], emit[cut:]
        self.chunks.append(emit)
        self.pending = [] if (final or carry) else self.overlap_after(emit)
        self.current = carry
        self.tokens = sum(leaf.tokens for leaf in carry)
        self.body = 0
        self.overlap_count = 0

    def overlap_after(self, chunk: list[Leaf]) -> list[Leaf]:
        """Trailing sentences of ``chunk`` worth about ``overlap`` tokens (else its last words)."""
        if self.overlap <= 0 or chunk[-1].kind is not Kind.PROSE:
            return []
        taken: list[Leaf] = []
        total = 0
        for leaf in reversed(chunk):
            if leaf.kind is not Kind.PROSE or total + leaf.tokens > self.overlap:
                break
            taken.append(leaf)
            total += leaf.tokens
        if taken:
            return taken[::-1]
        last = chunk[-1]
        if last.tokens <= self.overlap * (1 + OVERLAP_SLACK):
            return [last]
        words = iter_leaves(self.chunker.split_words(self.text, last))
        for word in reversed(words):
            if total + word.tokens > self.overlap:
                break
            taken.append(word)
            total += word.tokens
        return taken[::-1]


def _join_pages(pages: Sequence[Page]) -> tuple[str, list[int], list[int]]:
    offsets: list[int] = []
    numbers: list[int] = []
    parts: list[str] = []
    position = 0
    for page in pages:
        offsets.append(position)
        numbers.append(page.number)
        parts.append(page.text)
        position += len(page.text) + len(PAGE_SEP)
    return PAGE_SEP.join(parts), offsets, numbers


def _page_at(offset: int, page_offsets: list[int], page_numbers: list[int]) -> int:
    return page_numbers[max(bisect.bisect_right(page_offsets, offset) - 1, 0)]


def _sum_tokens(item: Item) -> int:
    if isinstance(item, Leaf):
        return item.tokens
    item.tokens = sum(_sum_tokens(child) for child in item.children)
    return item.tokens


def _replace_leaves(item: Item, replacements: dict[int, Node]) -> Item:
    if isinstance(item, Leaf):
        return replacements.get(id(item), item)
    item.children = [_replace_leaves(child, replacements) for child in item.children]
    return item


def _last_leaf(item: Item) -> Leaf:
    while isinstance(item, Node):
        item = item.children[-1]
    return item


def _hash_fraction(item: Item) -> float:
    """The item's text hashed to a number in [0, 1): the same text, the same number."""
    text = item.text if isinstance(item, Leaf) else render(iter_leaves(item))
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _split_at(item: Item, anchors: set[int]) -> list[Item]:
    """``item`` cut in front of each anchor into consecutive pieces of the same tree shape."""
    if isinstance(item, Leaf) or not anchors:
        return [item]
    groups: list[list[Item]] = [[]]
    for child in item.children:
        if id(child) in anchors and groups[-1]:
            groups.append([])
        pieces = _split_at(child, anchors)
        groups[-1].append(pieces[0])
        groups.extend([piece] for piece in pieces[1:])
    if len(groups) == 1 and all(a is b for a, b in zip(groups[0], item.children, strict=True)):
        return [item]  # no anchor inside
    out: list[Item] = []
    for group in groups:
        node = Node(group, keep_whole=item.keep_whole)
        node.tokens = sum(child.tokens for child in group)
        out.append(node)
    return out
