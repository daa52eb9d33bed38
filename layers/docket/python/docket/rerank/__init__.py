"""Reranking: a cross-encoder service reorders the fused candidates (Cohere, Bedrock, SageMaker).

The port and its helpers are exported here and import no SDK; the adapters
(docket.rerank.cohere, .bedrock, .sagemaker) import theirs on first use and are chosen by
docket.rerank.factory.get_reranker.
"""

from docket.rerank.base import DEFAULT_MAX_CHARS, ServiceReranker, document_text, ranked_hits
from docket.rerank.port import RERANK_RETRIEVER, Reranker, WarningLogger, rerank_or_fallback

__all__ = [
    "DEFAULT_MAX_CHARS",
    "RERANK_RETRIEVER",
    "Reranker",
    "ServiceReranker",
    "WarningLogger",
    "document_text",
    "ranked_hits",
    "rerank_or_fallback",
]
