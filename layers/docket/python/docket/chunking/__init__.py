"""Chunking: extracted documents → token-bounded, structure-aligned chunk drafts.

``chunker_for(settings).chunk(doc)``: see ``chunker`` for how boundaries are chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docket.chunking.chunker import Chunker
from docket.chunking.tokens import (
    HeuristicTokenCounter,
    TokenCounter,
    WordPieceTokenCounter,
    get_token_counter,
)

if TYPE_CHECKING:
    from docket.config import Settings


def chunker_for(settings: Settings) -> Chunker:
    """The chunker the ingest path uses under ``settings`` (evaluation builds the same one)."""
    return Chunker(
        get_token_counter(settings.tokenizer_path),
        chunk_size=settings.chunk_size_tokens,
        overlap=settings.chunk_overlap_tokens,
        whole_document=settings.chunk_whole_document_tokens,
    )


__all__ = [
    "Chunker",
    "HeuristicTokenCounter",
    "TokenCounter",
    "WordPieceTokenCounter",
    "chunker_for",
    "get_token_counter",
]
