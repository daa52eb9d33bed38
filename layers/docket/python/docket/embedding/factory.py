"""Chooses the embedding provider from settings; one instance per process and configuration."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from docket.config import Settings, get_settings
from docket.embedding.port import Embedder
from docket.errors import ConfigurationError

_lock = threading.Lock()
_embedders: dict[Hashable, Embedder] = {}


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The embedder for ``settings.embedding_provider``: "onnx" (the local model), "hash" (a
    test fake), or a hosted model: "openai", "cohere", "bedrock" (Titan), "sagemaker".

    The ONNX model is exported on first use (see ensure_exported) and loaded once; later calls
    with the same configuration get the same instance. The lock is held while the model loads,
    so concurrent first callers wait rather than export twice.
    """
    settings = settings or get_settings()
    key = (
        settings.embedding_provider,
        settings.embedding_model,
        settings.embedding_precision,
        str(settings.model_dir),
        settings.embedding_batch_size,
        settings.embedding_batch_tokens,
        settings.embedding_threads,
        settings.embedding_dimensions,
        settings.embedding_endpoint,
        settings.openai_base_url,
        settings.region,
    )
    with _lock:
        embedder = _embedders.get(key)
        if embedder is None:
            embedder = _build(settings)
            _embedders[key] = embedder
        return embedder


def _build(settings: Settings) -> Embedder:
    if settings.embedding_provider == "hash":
        from docket.embedding.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.embedding_provider == "onnx":
        from docket.embedding.onnx import OnnxEmbedder

        return OnnxEmbedder.from_settings(settings)
    return _build_hosted(settings)


def _hosted_model(settings: Settings, default: str) -> str:
    """``settings.embedding_model``, unless it is still the local model's default name, which
    means no hosted model was chosen: then the provider's ``default``."""
    if settings.embedding_model == Settings.model_fields["embedding_model"].default:
        return default
    return settings.embedding_model


def _build_hosted(settings: Settings) -> Embedder:
    """The hosted embedders; they import their SDK on first use, and read API keys through
    ``provider_keys`` (Secrets Manager on AWS)."""
    provider = settings.embedding_provider
    if provider == "openai":
        from docket.embedding.openai import DEFAULT_OPENAI_EMBEDDING_MODEL, OpenAIEmbedder
        from docket.providers.secrets import provider_keys

        return OpenAIEmbedder(
            # an OpenAI-compatible server serves whatever model is named, the local one included
            settings.embedding_model
            if settings.openai_base_url
            else _hosted_model(settings, DEFAULT_OPENAI_EMBEDDING_MODEL),
            api_key=provider_keys(settings).get("openai_api_key"),
            base_url=settings.openai_base_url,
            dimensions=settings.embedding_dimensions,
            timeout_s=settings.provider_timeout_seconds,
        )
    if provider == "cohere":
        from docket.embedding.cohere import DEFAULT_COHERE_EMBEDDING_MODEL, CohereEmbedder
        from docket.providers.secrets import provider_keys

        return CohereEmbedder(
            _hosted_model(settings, DEFAULT_COHERE_EMBEDDING_MODEL),
            api_key=provider_keys(settings).get("cohere_api_key"),
            dimensions=settings.embedding_dimensions,
            timeout_s=settings.provider_timeout_seconds,
        )
    if provider == "bedrock":
        from docket.embedding.bedrock import DEFAULT_TITAN_MODEL, BedrockTitanEmbedder

        return BedrockTitanEmbedder(
            _hosted_model(settings, DEFAULT_TITAN_MODEL),
            dimensions=settings.embedding_dimensions,
            region=settings.region,
        )
    if provider == "sagemaker":
        from docket.embedding.sagemaker import SageMakerEmbedder

        if not settings.embedding_endpoint:
            raise ConfigurationError(
                "embedding_provider=sagemaker needs an endpoint: set DOCKET_EMBEDDING_ENDPOINT"
            )
        return SageMakerEmbedder(
            settings.embedding_endpoint,
            model=settings.embedding_model,
            dimensions=settings.embedding_dimensions,
            region=settings.region,
            batch_size=settings.embedding_batch_size,
        )
    raise ValueError(f"unknown embedding provider {settings.embedding_provider!r}")


def reset_embedders() -> None:
    """Forget the cached embedders (tests, or after changing settings)."""
    with _lock:
        _embedders.clear()
