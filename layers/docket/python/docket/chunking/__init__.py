"""Chunking: extracted documents → token-bounded, structure-aligned chunk drafts.

``Chunker(get_token_counter()).chunk(doc)``: see ``chunker`` for how boundaries are chosen.
"""

from docket.chunking.chunker import Chunker
from docket.chunking.tokens import (
    HeuristicTokenCounter,
    TokenCounter,
    WordPieceTokenCounter,
    get_token_counter,
)

__all__ = [
    "Chunker",
    "HeuristicTokenCounter",
    "TokenCounter",
    "WordPieceTokenCounter",
    "get_token_counter",
]
