"""Amazon Titan Text Embeddings on Bedrock through ``bedrock-runtime`` InvokeModel; boto3 is
imported on first use.

Titan embeds one text per call, so a batch is sent as parallel calls (``concurrency`` at a time,
on the client's connection pool) and the vectors are put back in the caller's order. v2 is asked
for ``normalize: true`` and its ``dimensions`` (1024, 512 or 256); v1 takes neither. Texts are
cut to Titan's 50,000-character input limit rather than refused. The body shapes follow the
Bedrock model parameters page for Titan Embeddings; the tests check them with botocore's Stubber.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from docket.embedding.hosted import HostedEmbedder, InputType, model_dimension
from docket.errors import ConfigurationError, EmbeddingUnavailable

DEFAULT_TITAN_MODEL = "amazon.titan-embed-text-v2:0"
TITAN_V2_DIMENSIONS = (256, 512, 1024)
MAX_INPUT_CHARS = 50_000


class BedrockTitanEmbedder(HostedEmbedder):
    """Embeds with a Titan text embedding model; ``batch_size`` texts are in flight per round."""

    provider = "bedrock"

    def __init__(
        self,
        model: str = DEFAULT_TITAN_MODEL,
        *,
        dimensions: int | None = None,
        client: Any | None = None,
        region: str | None = None,
        concurrency: int = 8,
        batch_size: int = 32,
    ) -> None:
        self.v1 = model.startswith("amazon.titan-embed-text-v1")
        if self.v1 and dimensions not in (None, 1536):
            raise ConfigurationError("Titan v1 embeddings have 1536 dimensions only")
        if not self.v1 and dimensions is not None and dimensions not in TITAN_V2_DIMENSIONS:
            raise ConfigurationError(
                f"Titan v2 embeddings have {TITAN_V2_DIMENSIONS} dimensions, not {dimensions}"
            )
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        super().__init__(model, model_dimension(model, dimensions), batch_size=batch_size)
        self.concurrency = concurrency
        self._client = client
        self._region = region
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            from docket import aws

            self._client = aws.client("bedrock-runtime", region=self._region)
        return self._client

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"inputText": text[:MAX_INPUT_CHARS]}
        if not self.v1:
            body["dimensions"] = self.model.dimension
            body["normalize"] = True
        return body

    def _embed_batch(self, texts: list[str], input_type: InputType) -> Any:
        if len(texts) == 1 or self.concurrency == 1:
            return [self._embed_one(text) for text in texts]
        return list(self._executor().map(self._embed_one, texts))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="titan-embed"
                )
            return self._pool

    def _embed_one(self, text: str) -> list[float]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.invoke_model(
                modelId=self.model_id,
                body=json.dumps(self.request_body(text)),
                contentType="application/json",
                accept="application/json",
            )
            body = response["body"]
            payload = json.loads(body.read() if hasattr(body, "read") else body)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EmbeddingUnavailable(
                f"bedrock {self.model_id} failed: {error.get('Code', 'ClientError')}: "
                f"{error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise EmbeddingUnavailable(f"bedrock {self.model_id} failed: {exc}") from exc
        except ValueError as exc:
            raise EmbeddingUnavailable(f"bedrock {self.model_id} returned no JSON") from exc
        embedding = payload.get("embedding") if isinstance(payload, dict) else None
        if not isinstance(embedding, list):
            raise EmbeddingUnavailable(f"bedrock {self.model_id} returned no embedding")
        return embedding
