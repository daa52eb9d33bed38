"""Contextual chunk headers: the document title and section path in front of a chunk's text.

A chunk cut from the middle of a document often never names its subject ("The drug reduced
mortality by 12%"); prefixing where it comes from gives both retrievers that context at no model
cost. The embedded input is ``"{title}\\n{section}\\n\\n{text}"`` (missing parts left out); BM25
gets the same header as its own ``title`` field (see search/embedded.py), so a title match is
scored like OpenSearch's ``multi_match`` over title and body. The measured gain is in
docs/retrieval.md.

With ``contextual_chunks="llm"`` a chunk also carries ``context``, one sentence an LLM wrote to
situate it in its document (see ``contextualize``); it joins the header as its last line, so both
retrievers see ``"{title}\\n{section}\\n{context}"``. It is not part of the chunk id: a changed
context changes ``embedding_input``, which is what decides re-embedding.
"""

from __future__ import annotations

from docket.models import ChunkRecord


def contextual_header(title: str | None, section: str | None, context: str | None = None) -> str:
    parts: list[str] = []
    for part in (title, section, context):
        part = " ".join((part or "").split())
        if part and part not in parts:
            parts.append(part)
    return "\n".join(parts)


def embedding_input(chunk: ChunkRecord, *, headers: bool = True) -> str:
    """The text the embedding model sees for ``chunk``."""
    if not headers:
        return chunk.text
    header = contextual_header(chunk.title, chunk.section, chunk.context)
    return f"{header}\n\n{chunk.text}" if header else chunk.text
