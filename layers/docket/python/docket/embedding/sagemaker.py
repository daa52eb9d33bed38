"""An embedding model on a SageMaker real-time endpoint, through ``sagemaker-runtime``
InvokeEndpoint; boto3 is imported on first use.

The body is Hugging Face Text Embeddings Inference's /embed format, which TEI's SageMaker image
serves on /invocations: ``{"inputs": [...], "normalize": true, "truncate": true}`` in, a list of
vectors out (``{"embeddings": [...]}`` is accepted too, as some containers wrap them).
``truncate`` makes TEI cut long texts to the model's window instead of refusing the request; the
batch size must not exceed the container's ``--max-client-batch-size`` (TEI's default: 32).
"""

from __future__ import annotations

import json
from typing import Any

from docket.embedding.hosted import HostedEmbedder, InputType, model_dimension
from docket.errors import EmbeddingUnavailable

DEFAULT_MAX_BATCH_SIZE = 32


class SageMakerEmbedder(HostedEmbedder):
    """Embeds with the model behind ``endpoint_name``; ``model`` names it (what the index stores,
    so two endpoints serving one model share indexes), by default the endpoint's name."""

    provider = "sagemaker"

    def __init__(
        self,
        endpoint_name: str,
        *,
        model: str | None = None,
        dimensions: int | None = None,
        client: Any | None = None,
        region: str | None = None,
        batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        target_variant: str | None = None,
    ) -> None:
        if not endpoint_name:
            raise ValueError("endpoint_name is required")
        name = model or endpoint_name
        super().__init__(name, model_dimension(name, dimensions), batch_size=batch_size)
        self.endpoint_name = endpoint_name
        self.target_variant = target_variant
        self._client = client
        self._region = region

    @property
    def client(self) -> Any:
        if self._client is None:
            from docket import aws

            self._client = aws.client("sagemaker-runtime", region=self._region)
        return self._client

    def request_body(self, texts: list[str]) -> dict[str, Any]:
        """TEI embeds queries and documents alike (a model that wants a query instruction
        needs it in the text)."""
        return {"inputs": texts, "normalize": True, "truncate": True}

    def _embed_batch(self, texts: list[str], input_type: InputType) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        params: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "ContentType": "application/json",
            "Accept": "application/json",
            "Body": json.dumps(self.request_body(texts), ensure_ascii=False).encode(),
        }
        if self.target_variant:
            params["TargetVariant"] = self.target_variant
        try:
            response = self.client.invoke_endpoint(**params)
            body = response["Body"]
            payload = json.loads(body.read() if hasattr(body, "read") else body)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise EmbeddingUnavailable(
                f"sagemaker endpoint {self.endpoint_name} failed: "
                f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise EmbeddingUnavailable(
                f"sagemaker endpoint {self.endpoint_name} failed: {exc}"
            ) from exc
        except ValueError as exc:
            raise EmbeddingUnavailable(
                f"sagemaker endpoint {self.endpoint_name} returned no JSON"
            ) from exc
        if isinstance(payload, dict):
            payload = payload.get("embeddings")
        if not isinstance(payload, list):
            raise EmbeddingUnavailable(
                f"sagemaker endpoint {self.endpoint_name} returned no list of vectors"
            )
        return payload
