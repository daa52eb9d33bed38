"""What every service reranker does the same way: the text it sends and the hits it returns.

An adapter subclasses ServiceReranker and implements ``_score`` (one service call, or several
in batches); the argument checks, the contextual document text and the reordering live here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from docket.errors import RerankUnavailable
from docket.models import ChunkRecord, SearchHit
from docket.rerank.port import RERANK_RETRIEVER

DEFAULT_MAX_CHARS = 4000


def document_text(chunk: ChunkRecord, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The text sent for a chunk: "Title\\nSection\\n\\ntext", cut to ``max_chars``.

    A cross-encoder sees only what it is sent. A chunk from the middle of a document often lacks
    the words a question uses for its subject, and the document title and section name carry
    them. Missing (or repeated) header parts are left out; no header leaves the bare text.
    """
    parts: list[str] = []
    for part in (chunk.title, chunk.section):
        cleaned = (part or "").strip()
        if cleaned and cleaned not in parts:
            parts.append(cleaned)
    text = "\n".join(parts) + "\n\n" + chunk.text if parts else chunk.text
    return text[:max_chars]


def ranked_hits(
    hits: Sequence[SearchHit], scored: Iterable[tuple[int, float]], top_n: int
) -> list[SearchHit]:
    """New ``retriever="rerank"`` hits for the best ``top_n`` (index into ``hits``, score) pairs.

    Equal scores keep the incoming (fused) order. Each hit keeps the incoming ``ranks`` and
    ``scores``, adds the incoming hit's own rank and score under its retriever name (so the fused
    position stays visible) and the rerank rank and score under ``"rerank"``. An index out of
    range, an index named twice or a score that is not finite means the service answered
    something else than was asked: RerankUnavailable.
    """
    seen: dict[int, float] = {}
    for index, score in scored:
        if not 0 <= index < len(hits):
            raise RerankUnavailable(f"reranker returned index {index} for {len(hits)} documents")
        if index in seen:
            raise RerankUnavailable(f"reranker returned index {index} twice")
        if not math.isfinite(score):
            raise RerankUnavailable(f"reranker returned score {score} for index {index}")
        seen[index] = float(score)
    order = sorted(seen.items(), key=lambda item: (-item[1], item[0]))[:top_n]
    out: list[SearchHit] = []
    for position, (index, score) in enumerate(order, start=1):
        hit = hits[index]
        ranks = dict(hit.ranks)
        scores = dict(hit.scores)
        if hit.rank > 0 and hit.retriever != RERANK_RETRIEVER:
            ranks.setdefault(hit.retriever, hit.rank)
            scores.setdefault(hit.retriever, hit.score)
        ranks[RERANK_RETRIEVER] = position
        scores[RERANK_RETRIEVER] = score
        out.append(
            SearchHit(
                chunk=hit.chunk,
                score=score,
                retriever=RERANK_RETRIEVER,
                rank=position,
                ranks=dict(sorted(ranks.items())),
                scores=dict(sorted(scores.items())),
            )
        )
    return out


class ServiceReranker(ABC):
    """A Reranker backed by a remote scoring service (implements the Reranker protocol)."""

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.max_chars = max_chars

    @property
    @abstractmethod
    def name(self) -> str: ...

    def rerank(self, query: str, hits: Sequence[SearchHit], top_n: int) -> list[SearchHit]:
        if top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {top_n}")
        if not hits:
            return []
        if not query.strip():
            raise ValueError("cannot rerank for a blank query")
        documents = [document_text(hit.chunk, self.max_chars) for hit in hits]
        scored = self._score(query, documents, min(top_n, len(documents)))
        return ranked_hits(hits, scored, top_n)

    @abstractmethod
    def _score(self, query: str, documents: Sequence[str], top_n: int) -> list[tuple[int, float]]:
        """(index into ``documents``, relevance score) pairs covering at least the best ``top_n``.

        Wraps every service or transport failure in RerankUnavailable.
        """
