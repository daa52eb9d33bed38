"""The reranking port: a cross-encoder service reorders the fused candidates by relevance.

Cohere (rerank/cohere.py), Amazon Bedrock (rerank/bedrock.py) and a SageMaker endpoint
(rerank/sagemaker.py) implement it. None of them is imported here, so the Lambda layer imports
this module without boto3 or the cohere SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from docket.errors import RerankUnavailable
from docket.models import SearchHit

RERANK_RETRIEVER = "rerank"


@runtime_checkable
class Reranker(Protocol):
    @property
    def name(self) -> str:
        """Provider and model, e.g. "cohere:rerank-v3.5"; goes into logs and evaluation runs."""
        ...

    def rerank(self, query: str, hits: Sequence[SearchHit], top_n: int) -> list[SearchHit]:
        """The best ``top_n`` of ``hits`` by the service's relevance score, best first.

        Returns new ``retriever="rerank"`` hits (``rank`` 1-based, ``score`` the service's
        score) that keep the incoming ``ranks``/``scores`` and add ``"rerank"`` to both. Empty
        ``hits`` give [] without calling the service; a service failure raises RerankUnavailable.
        """
        ...


class WarningLogger(Protocol):
    """What rerank_or_fallback needs of a logger: Powertools' Logger and logging.Logger both fit."""

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> Any: ...


def rerank_or_fallback(
    reranker: Reranker | None,
    query: str,
    hits: Sequence[SearchHit],
    top_n: int,
    logger: WarningLogger,
) -> tuple[list[SearchHit], bool]:
    """Reranked hits and True, or the first ``top_n`` fused hits and False.

    A reranker improves an answer but is never required for one: when the service fails
    (RerankUnavailable) the query keeps the fused order and a warning says why. Any other
    exception is a bug and propagates. ``reranker=None`` (reranking switched off) falls back
    silently.
    """
    if reranker is None or not hits:
        return list(hits[:top_n]), False
    try:
        return reranker.rerank(query, hits, top_n), True
    except RerankUnavailable as exc:
        logger.warning(
            "rerank failed: keeping the fused order",
            extra={
                "reranker": reranker.name,
                "error_code": exc.code,
                "reason": exc.message,
                "candidates": len(hits),
            },
        )
        return list(hits[:top_n]), False
