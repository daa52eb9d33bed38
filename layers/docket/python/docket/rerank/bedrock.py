"""Amazon Bedrock reranking models (Amazon Rerank, Cohere Rerank on Bedrock) through the
``bedrock-agent-runtime`` Rerank API; boto3 is imported on first use.

Request and response shapes follow botocore's service model (bedrock-agent-runtime 2023-07-26),
which the tests' Stubber validates against: at most 1000 sources per call, and at most 32,000
characters per query or document.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from docket.errors import RerankUnavailable
from docket.rerank.base import DEFAULT_MAX_CHARS, ServiceReranker

MAX_SOURCES_PER_CALL = 1000  # RerankSourcesList max
MAX_TEXT_CHARS = 32_000  # RerankTextDocumentTextString max (queries and documents)


def bedrock_model_arn(model: str, region: str) -> str:
    """A model ARN as given, or a model id (``amazon.rerank-v1:0``) as its foundation-model ARN."""
    if model.startswith("arn:"):
        return model
    return f"arn:aws:bedrock:{region}::foundation-model/{model}"


def arn_region(arn: str) -> str | None:
    """The region field of an ARN (``arn:partition:service:region:account:resource``)."""
    fields = arn.split(":")
    if len(fields) < 6 or fields[0] != "arn":
        return None
    return fields[3] or None


class BedrockReranker(ServiceReranker):
    """Reranks with a Bedrock reranking model.

    More than 1000 candidates go in batches of ``batch_size``: a reranking model scores each
    (query, document) pair on its own, so scores from different calls for one query compare.
    Pages (``nextToken``) are followed. The client defaults to docket.aws's cached client in the
    model ARN's region (rerank models live in a few regions only).
    """

    def __init__(
        self,
        model_arn: str,
        *,
        client: Any | None = None,
        region: str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        batch_size: int = MAX_SOURCES_PER_CALL,
    ) -> None:
        super().__init__(max_chars)
        if not model_arn:
            raise ValueError("model_arn is required")
        if max_chars > MAX_TEXT_CHARS:
            raise ValueError(f"max_chars must be <= {MAX_TEXT_CHARS} for Bedrock, got {max_chars}")
        if not 1 <= batch_size <= MAX_SOURCES_PER_CALL:
            raise ValueError(f"batch_size must be in 1..{MAX_SOURCES_PER_CALL}, got {batch_size}")
        self.model_arn = model_arn
        self.batch_size = batch_size
        self._client = client
        self._region = region or arn_region(model_arn)

    @property
    def name(self) -> str:
        return f"bedrock:{self.model_arn.rsplit('/', 1)[-1]}"

    @property
    def client(self) -> Any:
        if self._client is None:
            from docket import aws

            self._client = aws.client("bedrock-agent-runtime", region=self._region)
        return self._client

    def _score(self, query: str, documents: Sequence[str], top_n: int) -> list[tuple[int, float]]:
        scored: list[tuple[int, float]] = []
        for offset in range(0, len(documents), self.batch_size):
            batch = documents[offset : offset + self.batch_size]
            for index, score in self._score_batch(query, batch, min(top_n, len(batch))):
                scored.append((offset + index, score))
        return scored

    def _score_batch(
        self, query: str, documents: Sequence[str], top_n: int
    ) -> list[tuple[int, float]]:
        from botocore.exceptions import BotoCoreError, ClientError

        request: dict[str, Any] = {
            "queries": [{"type": "TEXT", "textQuery": {"text": query[:MAX_TEXT_CHARS]}}],
            "sources": [
                {
                    "type": "INLINE",
                    "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": text}},
                }
                for text in documents
            ],
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {
                    "numberOfResults": top_n,
                    "modelConfiguration": {"modelArn": self.model_arn},
                },
            },
        }
        scored: list[tuple[int, float]] = []
        seen_tokens: set[str] = set()
        token: str | None = None
        while True:
            params = {**request, "nextToken": token} if token else request
            try:
                response = self.client.rerank(**params)
            except ClientError as exc:
                error = exc.response.get("Error", {})
                raise RerankUnavailable(
                    f"bedrock rerank failed: {error.get('Code', 'ClientError')}: "
                    f"{error.get('Message', '')}"
                ) from exc
            except BotoCoreError as exc:
                raise RerankUnavailable(f"bedrock rerank failed: {exc}") from exc
            for result in response.get("results", []):
                index, score = int(result["index"]), float(result["relevanceScore"])
                if not 0 <= index < len(documents):
                    raise RerankUnavailable(
                        f"bedrock rerank returned index {index} for {len(documents)} documents"
                    )
                scored.append((index, score))
            token = response.get("nextToken")
            if not token or token in seen_tokens:
                return scored
            seen_tokens.add(token)
