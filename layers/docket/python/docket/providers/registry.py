"""One adapter per provider name, built from settings: what routing and the factories call.

Each adapter is built with its SDK's retries off and ``provider_timeout_seconds`` as its timeout:
retries with jitter, fallback and the circuit breaker belong to the routing layer. Nothing is
imported from an SDK until the adapter makes its first call.

Default models when ``model`` is None:

- anthropic: ``claude-sonnet-5-5``
- openai: ``gpt-5.5`` (with ``openai_base_url`` set, name the served model: there is no default
  that every OpenAI-compatible server has)
- bedrock: ``global.anthropic.claude-sonnet-5-5`` (Converse, the global inference profile, called
  in ``region``)
- cohere: ``command-a-03-2025``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docket.errors import ConfigurationError
from docket.providers.anthropic import DEFAULT_ANTHROPIC_MODEL, AnthropicChat
from docket.providers.bedrock import DEFAULT_BEDROCK_MODEL, BedrockConverseChat
from docket.providers.cohere_chat import DEFAULT_COHERE_CHAT_MODEL, CohereChat
from docket.providers.openai import DEFAULT_OPENAI_MODEL, OpenAIChat

if TYPE_CHECKING:
    from docket.config import Settings
    from docket.providers.llm import ChatModel

DEFAULT_MODELS = {
    "anthropic": DEFAULT_ANTHROPIC_MODEL,
    "openai": DEFAULT_OPENAI_MODEL,
    "bedrock": DEFAULT_BEDROCK_MODEL,
    "cohere": DEFAULT_COHERE_CHAT_MODEL,
}
CHAT_PROVIDERS = tuple(DEFAULT_MODELS)
# an OpenAI-compatible server without authentication (vLLM's default) still needs some key:
# the SDK refuses to start without one
UNAUTHENTICATED_KEY = "unused"


def build_chat(provider: str, model: str | None, settings: Settings) -> ChatModel:
    """The chat adapter for ``provider`` (one of ``CHAT_PROVIDERS``), ``model`` or its default.

    Raises ``ConfigurationError`` for an unknown provider or a missing API key (Bedrock needs
    none: it signs with the function's IAM role).
    """
    timeout = settings.provider_timeout_seconds
    chosen = model or DEFAULT_MODELS.get(provider)
    if provider == "anthropic":
        return AnthropicChat(
            chosen or DEFAULT_ANTHROPIC_MODEL,
            api_key=_key(settings.anthropic_api_key, "anthropic", "DOCKET_ANTHROPIC_API_KEY"),
            timeout_s=timeout,
        )
    if provider == "openai":
        key = settings.openai_api_key
        if not key and settings.openai_base_url:
            key = UNAUTHENTICATED_KEY
        return OpenAIChat(
            chosen or DEFAULT_OPENAI_MODEL,
            api_key=_key(key, "openai", "DOCKET_OPENAI_API_KEY"),
            base_url=settings.openai_base_url,
            timeout_s=timeout,
        )
    if provider == "bedrock":
        return BedrockConverseChat(
            chosen or DEFAULT_BEDROCK_MODEL, region=settings.region, timeout_s=timeout
        )
    if provider == "cohere":
        return CohereChat(
            chosen or DEFAULT_COHERE_CHAT_MODEL,
            api_key=_key(settings.cohere_api_key, "cohere", "DOCKET_COHERE_API_KEY"),
            timeout_s=timeout,
        )
    raise ConfigurationError(
        f"unknown chat provider {provider!r}; expected one of {', '.join(CHAT_PROVIDERS)}"
    )


def _key(value: str | None, provider: str, variable: str) -> str:
    if not value:
        raise ConfigurationError(
            f"the {provider} chat model needs an API key ({variable}, or provider_secret_name)"
        )
    return value
