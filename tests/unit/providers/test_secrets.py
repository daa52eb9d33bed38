"""Provider keys from a Secrets Manager secret (moto) through Powertools parameters, cached."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from botocore.stub import Stubber
from moto import mock_aws

from docket.config import Settings
from docket.errors import ConfigurationError, ProviderUnavailable
from docket.providers.secrets import SECRET_MAX_AGE_S, clear_cache, provider_keys

SECRET = "docket/providers"


class CountingSecrets:
    """A Secrets Manager client (moto) that counts GetSecretValue calls, installed as
    Powertools' default secrets provider."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.client = boto3.client("secretsmanager", region_name="us-east-1")
        self.calls = 0
        self.client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._count)
        monkeypatch.setitem(
            parameters.base.DEFAULT_PROVIDERS,
            "secrets",
            parameters.SecretsProvider(boto3_client=self.client),
        )

    def _count(self, **_: Any) -> None:
        self.calls += 1

    def put(self, value: str) -> None:
        self.client.create_secret(Name=SECRET, SecretString=value)


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingSecrets]:
    clear_cache()
    with mock_aws():
        yield CountingSecrets(monkeypatch)
    clear_cache()


def test_keys_come_from_the_secret_and_are_cached(secrets: CountingSecrets) -> None:
    # Given the secret with two keys, and a third key only in settings
    secrets.put(json.dumps({"openai_api_key": "sk-secret", "anthropic_api_key": "ant-secret"}))
    settings = Settings(
        provider_secret_name=SECRET, openai_api_key="sk-env", cohere_api_key="co-env"
    )
    # When the keys are read twice
    first = provider_keys(settings)
    second = provider_keys(settings)
    # Then the secret's keys win, settings fill the gaps, and Secrets Manager was called once
    assert (
        first
        == second
        == {
            "openai_api_key": "sk-secret",
            "anthropic_api_key": "ant-secret",
            "cohere_api_key": "co-env",
        }
    )
    assert secrets.calls == 1
    assert SECRET_MAX_AGE_S == 300


def test_without_a_secret_name_the_settings_keys_are_used(secrets: CountingSecrets) -> None:
    keys = provider_keys(Settings(anthropic_api_key="ant-env", openai_api_key=""))
    assert keys == {"anthropic_api_key": "ant-env"}
    assert secrets.calls == 0


def test_a_missing_secret_is_a_configuration_error(secrets: CountingSecrets) -> None:
    with pytest.raises(ConfigurationError, match="ResourceNotFoundException"):
        provider_keys(Settings(provider_secret_name=SECRET))


@pytest.mark.parametrize("value", ["not json", '["a list"]', '{"openai_api_key": 42}'])
def test_a_secret_that_is_not_an_object_of_strings_is_a_configuration_error(
    secrets: CountingSecrets, value: str
) -> None:
    secrets.put(value)
    with pytest.raises(ConfigurationError, match=SECRET):
        provider_keys(Settings(provider_secret_name=SECRET))


def test_a_transient_secrets_manager_failure_is_retryable(secrets: CountingSecrets) -> None:
    # Given Secrets Manager failing with a 500
    with Stubber(secrets.client) as stubber:
        stubber.add_client_error(
            "get_secret_value", service_error_code="InternalServiceError", http_status_code=500
        )
        # When the keys are read / Then the failure is transient, not a configuration error
        with pytest.raises(ProviderUnavailable, match="InternalServiceError") as raised:
            provider_keys(Settings(provider_secret_name=SECRET))
    assert raised.value.retryable
