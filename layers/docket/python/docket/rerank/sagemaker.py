"""A cross-encoder on a SageMaker real-time endpoint, through ``sagemaker-runtime``
InvokeEndpoint; boto3 is imported on first use.

The container's request and response format is a codec. TeiRerankCodec speaks Hugging Face
Text Embeddings Inference's /rerank format, which TEI's SageMaker image serves on /invocations
for a reranker model. Another container joins by passing its own RerankCodec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, TypeAdapter

from docket.errors import RerankUnavailable
from docket.rerank.base import DEFAULT_MAX_CHARS, ServiceReranker

# TEI refuses larger requests (its --max-client-batch-size defaults to 32)
DEFAULT_MAX_BATCH_SIZE = 32


class RerankCodec(Protocol):
    """Turns (query, texts) into a request body and a response body into (index, score) pairs.

    ``decode`` returns indexes into the ``texts`` of the matching ``encode`` call and raises
    ValueError (pydantic's ValidationError is one) on a body it cannot read.
    """

    @property
    def content_type(self) -> str: ...

    @property
    def accept(self) -> str: ...

    def encode(self, query: str, texts: Sequence[str]) -> bytes: ...

    def decode(self, body: bytes) -> list[tuple[int, float]]: ...


class _TeiRank(BaseModel):
    index: int
    score: float


_TEI_RANKS = TypeAdapter(list[_TeiRank])


class TeiRerankCodec:
    """Text Embeddings Inference: ``{"query", "texts", "truncate"}`` in, ``[{"index", "score"}]``
    out (every text, best first).

    ``truncate`` makes TEI cut texts longer than the model's window instead of refusing the
    request; ``raw_scores=False`` keeps TEI's sigmoid scores in [0, 1].
    """

    content_type = "application/json"
    accept = "application/json"

    def __init__(self, truncate: bool = True, raw_scores: bool = False) -> None:
        self.truncate = truncate
        self.raw_scores = raw_scores

    def encode(self, query: str, texts: Sequence[str]) -> bytes:
        body = {
            "query": query,
            "texts": list(texts),
            "truncate": self.truncate,
            "raw_scores": self.raw_scores,
        }
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def decode(self, body: bytes) -> list[tuple[int, float]]:
        return [(rank.index, rank.score) for rank in _TEI_RANKS.validate_json(body)]


class SageMakerReranker(ServiceReranker):
    """Reranks with a cross-encoder behind a SageMaker endpoint.

    Candidates go in batches of ``max_batch_size`` (one call each, in turn); a cross-encoder
    scores each (query, text) pair on its own, so scores from different calls compare. The
    client defaults to docket.aws's cached ``sagemaker-runtime`` client.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        client: Any | None = None,
        region: str | None = None,
        codec: RerankCodec | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        target_variant: str | None = None,
    ) -> None:
        super().__init__(max_chars)
        if not endpoint_name:
            raise ValueError("endpoint_name is required")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.endpoint_name = endpoint_name
        self.codec: RerankCodec = codec or TeiRerankCodec()
        self.max_batch_size = max_batch_size
        self.target_variant = target_variant
        self._client = client
        self._region = region

    @property
    def name(self) -> str:
        return f"sagemaker:{self.endpoint_name}"

    @property
    def client(self) -> Any:
        if self._client is None:
            from docket import aws

            self._client = aws.client("sagemaker-runtime", region=self._region)
        return self._client

    def _score(self, query: str, documents: Sequence[str], top_n: int) -> list[tuple[int, float]]:
        scored: list[tuple[int, float]] = []
        for offset in range(0, len(documents), self.max_batch_size):
            batch = documents[offset : offset + self.max_batch_size]
            for index, score in self._score_batch(query, batch):
                scored.append((offset + index, score))
        return scored

    def _score_batch(self, query: str, texts: Sequence[str]) -> list[tuple[int, float]]:
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "ContentType": self.codec.content_type,
            "Accept": self.codec.accept,
            "Body": self.codec.encode(query, texts),
        }
        if self.target_variant:
            params["TargetVariant"] = self.target_variant
        try:
            response = self.client.invoke_endpoint(**params)
            body = response["Body"]
            payload = body.read() if hasattr(body, "read") else body
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise RerankUnavailable(
                f"sagemaker endpoint {self.endpoint_name} failed: "
                f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise RerankUnavailable(
                f"sagemaker endpoint {self.endpoint_name} failed: {exc}"
            ) from exc
        try:
            scored = self.codec.decode(payload)
        except ValueError as exc:
            raise RerankUnavailable(
                f"sagemaker endpoint {self.endpoint_name} returned an unreadable body: {exc}"
            ) from exc
        for index, _ in scored:
            if not 0 <= index < len(texts):
                raise RerankUnavailable(
                    f"sagemaker endpoint {self.endpoint_name} returned index {index} "
                    f"for {len(texts)} texts"
                )
        return scored
