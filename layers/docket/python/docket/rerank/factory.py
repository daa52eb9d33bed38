"""Chooses the reranker from settings; one instance per process and configuration."""

from __future__ import annotations

import threading
from collections.abc import Hashable

from docket.config import Settings, get_settings
from docket.errors import ConfigurationError
from docket.rerank.port import Reranker

_lock = threading.Lock()
_rerankers: dict[Hashable, Reranker] = {}


def get_reranker(settings: Settings | None = None) -> Reranker | None:
    """The reranker for ``settings.rerank_provider``, or None for "none" (keep the fused order).

    Building one imports no SDK and calls no service: that happens on the first ``rerank``.
    Later calls with the same configuration get the same instance (and its connection pool).
    A provider without what it needs raises ConfigurationError.
    """
    settings = settings or get_settings()
    if settings.rerank_provider == "none":
        return None
    key = (
        settings.rerank_provider,
        settings.rerank_model,
        settings.rerank_endpoint,
        settings.rerank_max_chars,
        settings.cohere_api_key,
        settings.region,
    )
    with _lock:
        reranker = _rerankers.get(key)
        if reranker is None:
            reranker = _build(settings)
            _rerankers[key] = reranker
        return reranker


def _build(settings: Settings) -> Reranker:
    provider = settings.rerank_provider
    if provider == "cohere":
        from docket.providers.secrets import provider_keys
        from docket.rerank.cohere import DEFAULT_COHERE_MODEL, CohereReranker

        # on AWS from the provider secret (never an environment variable), locally from settings
        api_key = provider_keys(settings).get("cohere_api_key")
        if not api_key:
            raise ConfigurationError(
                "rerank_provider=cohere needs an API key: set DOCKET_COHERE_API_KEY, or "
                "cohere_api_key in the provider secret (DOCKET_PROVIDER_SECRET_NAME)"
            )
        return CohereReranker(
            api_key=api_key,
            model=settings.rerank_model or DEFAULT_COHERE_MODEL,
            max_chars=settings.rerank_max_chars,
        )
    if provider == "bedrock":
        from docket.rerank.bedrock import BedrockReranker, arn_region, bedrock_model_arn

        if not settings.rerank_model:
            raise ConfigurationError(
                "rerank_provider=bedrock needs a reranking model: set DOCKET_RERANK_MODEL to its "
                "ARN (arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0) or model id"
            )
        model_arn = bedrock_model_arn(settings.rerank_model, settings.region)
        return BedrockReranker(
            model_arn,
            region=arn_region(model_arn) or settings.region,
            max_chars=settings.rerank_max_chars,
        )
    if provider == "sagemaker":
        from docket.rerank.sagemaker import SageMakerReranker

        if not settings.rerank_endpoint:
            raise ConfigurationError(
                "rerank_provider=sagemaker needs an endpoint: set DOCKET_RERANK_ENDPOINT"
            )
        return SageMakerReranker(
            settings.rerank_endpoint,
            region=settings.region,
            max_chars=settings.rerank_max_chars,
        )
    raise ConfigurationError(f"unknown rerank provider {provider!r}")


def reset_rerankers() -> None:
    """Forget the cached rerankers (tests, or after changing settings)."""
    with _lock:
        _rerankers.clear()
