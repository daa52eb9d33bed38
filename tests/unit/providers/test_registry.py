"""build_chat: one adapter per provider from settings, and the provider error types."""

from __future__ import annotations

import subprocess
import sys

import pytest

from docket.config import Settings
from docket.errors import (
    ConfigurationError,
    ProviderError,
    ProviderRejected,
    ProviderThrottled,
    ProviderUnavailable,
    provider_error_for_status,
)
from docket.providers.anthropic import AnthropicChat
from docket.providers.bedrock import BedrockConverseChat
from docket.providers.cohere_chat import CohereChat
from docket.providers.llm import ChatModel
from docket.providers.openai import OpenAIChat
from docket.providers.registry import DEFAULT_MODELS, build_chat

KEYS = {"anthropic_api_key": "a-key", "openai_api_key": "o-key", "cohere_api_key": "c-key"}


@pytest.mark.parametrize(
    ("provider", "adapter"),
    [
        ("anthropic", AnthropicChat),
        ("openai", OpenAIChat),
        ("bedrock", BedrockConverseChat),
        ("cohere", CohereChat),
    ],
)
def test_each_provider_gets_its_adapter_with_the_default_or_given_model(provider, adapter):
    settings = Settings(**KEYS, provider_timeout_seconds=12)
    default = build_chat(provider, None, settings)
    assert isinstance(default, adapter) and isinstance(default, ChatModel)
    assert default.name == f"{provider}:{DEFAULT_MODELS[provider]}"
    assert build_chat(provider, "my-model", settings).name == f"{provider}:my-model"


def test_adapters_get_the_timeout_no_sdk_retries_and_the_region():
    settings = Settings(**KEYS, provider_timeout_seconds=12, region="eu-central-1")
    anthropic = build_chat("anthropic", None, settings)
    assert isinstance(anthropic, AnthropicChat)
    assert anthropic.client.max_retries == 0 and anthropic.client.timeout == 12
    bedrock = build_chat("bedrock", None, settings)
    assert isinstance(bedrock, BedrockConverseChat)
    assert bedrock.client.meta.region_name == "eu-central-1"


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("anthropic", "DOCKET_ANTHROPIC_API_KEY"),
        ("openai", "DOCKET_OPENAI_API_KEY"),
        ("cohere", "DOCKET_COHERE_API_KEY"),
    ],
)
def test_a_missing_key_is_a_configuration_error(provider: str, variable: str):
    with pytest.raises(ConfigurationError, match=variable):
        build_chat(provider, None, Settings(**dict.fromkeys(KEYS), openai_base_url=None))


def test_bedrock_needs_no_key_and_a_compatible_server_may_have_none():
    settings = Settings(openai_base_url="http://vllm:8000/v1", openai_api_key=None)
    assert build_chat("bedrock", None, settings).name.startswith("bedrock:")
    chat = build_chat("openai", "meta-llama/Llama-3.3-70B-Instruct", settings)
    assert isinstance(chat, OpenAIChat)
    assert str(chat.client.base_url) == "http://vllm:8000/v1/"


def test_an_unknown_provider_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown chat provider 'fake'"):
        build_chat("fake", None, Settings(**KEYS))


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, ProviderThrottled, True),
        (500, ProviderUnavailable, True),
        (529, ProviderUnavailable, True),
        (408, ProviderUnavailable, True),
        (None, ProviderUnavailable, True),
        (400, ProviderRejected, False),
        (401, ProviderRejected, False),
        (404, ProviderRejected, False),
    ],
)
def test_statuses_map_onto_the_provider_error_types(status, error, retryable):
    exc = provider_error_for_status(status, "boom")
    assert type(exc) is error and isinstance(exc, ProviderError)
    assert exc.status == status and exc.retryable is retryable
    assert exc.permanent is (not retryable)
    assert exc.to_dict() == {"code": error.code, "message": "boom"}


def test_importing_the_adapters_imports_no_sdk():
    # a fresh interpreter: the SDKs load on an adapter's first call, never at import time
    code = (
        "import sys, docket.providers.registry; "
        "print(sorted(m for m in ('anthropic', 'openai', 'cohere', 'boto3', 'httpx2') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
