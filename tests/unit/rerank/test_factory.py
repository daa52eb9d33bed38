"""Choosing the reranker from settings."""

from __future__ import annotations

import pytest

from docket.config import Settings
from docket.errors import ConfigurationError
from docket.rerank import Reranker
from docket.rerank.bedrock import BedrockReranker
from docket.rerank.cohere import CohereReranker
from docket.rerank.factory import get_reranker, reset_rerankers
from docket.rerank.sagemaker import SageMakerReranker, TeiRerankCodec


def settings(**values: object) -> Settings:
    """Settings with every rerank field explicit, so DOCKET_* variables on the machine don't leak in."""
    base: dict[str, object] = {
        "rerank_provider": "none",
        "rerank_model": None,
        "rerank_endpoint": None,
        "cohere_api_key": None,
        "region": "us-east-1",
    }
    return Settings(**{**base, **values})  # type: ignore[arg-type]


def test_none_means_no_reranker():
    assert get_reranker(settings()) is None


def test_the_defaults_switch_reranking_off():
    fields = Settings.model_fields
    assert fields["rerank_provider"].default == "none"
    assert fields["rerank_top_n_candidates"].default == 50


def test_cohere_with_a_key_and_the_default_model():
    reranker = get_reranker(
        settings(rerank_provider="cohere", cohere_api_key="k", rerank_max_chars=900)
    )
    assert isinstance(reranker, CohereReranker)
    assert isinstance(reranker, Reranker)
    assert reranker.name == "cohere:rerank-v3.5"
    assert reranker.max_chars == 900
    # And nothing is built until the first rerank
    assert reranker._client is None


def test_cohere_with_a_named_model():
    reranker = get_reranker(
        settings(
            rerank_provider="cohere", cohere_api_key="k", rerank_model="rerank-multilingual-v3.0"
        )
    )
    assert reranker is not None and reranker.name == "cohere:rerank-multilingual-v3.0"


def test_bedrock_with_an_arn_calls_the_arns_region():
    arn = "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0"
    reranker = get_reranker(
        settings(rerank_provider="bedrock", rerank_model=arn, region="eu-west-1")
    )
    assert isinstance(reranker, BedrockReranker)
    assert reranker.model_arn == arn
    assert reranker._region == "us-west-2"
    assert reranker.name == "bedrock:cohere.rerank-v3-5:0"
    assert reranker._client is None


def test_bedrock_with_a_model_id_uses_the_configured_region():
    reranker = get_reranker(
        settings(
            rerank_provider="bedrock", rerank_model="amazon.rerank-v1:0", region="ca-central-1"
        )
    )
    assert isinstance(reranker, BedrockReranker)
    assert reranker.model_arn == "arn:aws:bedrock:ca-central-1::foundation-model/amazon.rerank-v1:0"
    assert reranker._region == "ca-central-1"


def test_sagemaker_with_an_endpoint():
    reranker = get_reranker(
        settings(rerank_provider="sagemaker", rerank_endpoint="docket-reranker", region="eu-west-1")
    )
    assert isinstance(reranker, SageMakerReranker)
    assert reranker.name == "sagemaker:docket-reranker"
    assert isinstance(reranker.codec, TeiRerankCodec)
    assert reranker._region == "eu-west-1"


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"rerank_provider": "cohere"}, "DOCKET_COHERE_API_KEY"),
        ({"rerank_provider": "cohere", "cohere_api_key": ""}, "DOCKET_COHERE_API_KEY"),
        ({"rerank_provider": "bedrock"}, "DOCKET_RERANK_MODEL"),
        ({"rerank_provider": "sagemaker"}, "DOCKET_RERANK_ENDPOINT"),
        (
            {"rerank_provider": "sagemaker", "rerank_model": "bge-reranker"},
            "DOCKET_RERANK_ENDPOINT",
        ),
    ],
)
def test_a_provider_without_what_it_needs_is_a_configuration_error(values, names):
    with pytest.raises(ConfigurationError, match=names) as caught:
        get_reranker(settings(**values))
    assert caught.value.permanent is True
    assert caught.value.code == "configuration_error"


def test_an_unknown_provider_is_refused_when_settings_load():
    with pytest.raises(ValueError, match="rerank_provider"):
        settings(rerank_provider="openai")


def test_settings_come_from_docket_variables(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCKET_RERANK_PROVIDER", "sagemaker")
    monkeypatch.setenv("DOCKET_RERANK_ENDPOINT", "from-env")
    monkeypatch.setenv("DOCKET_RERANK_TOP_N_CANDIDATES", "25")
    loaded = Settings()
    assert (loaded.rerank_provider, loaded.rerank_endpoint) == ("sagemaker", "from-env")
    assert loaded.rerank_top_n_candidates == 25


def test_one_instance_per_configuration():
    cohere = settings(rerank_provider="cohere", cohere_api_key="k")
    first = get_reranker(cohere)
    assert get_reranker(settings(rerank_provider="cohere", cohere_api_key="k")) is first
    assert get_reranker(settings(rerank_provider="cohere", cohere_api_key="other")) is not first
    reset_rerankers()
    assert get_reranker(cohere) is not first


def test_cohere_on_aws_takes_its_key_from_the_provider_secret(monkeypatch) -> None:
    """No API key in a Lambda's environment: the provider secret holds it."""
    from docket.providers import secrets

    monkeypatch.setattr(secrets, "_read_secret", lambda name: {"cohere_api_key": "from-secret"})
    reranker = get_reranker(settings(rerank_provider="cohere", provider_secret_name="docket/keys"))
    assert isinstance(reranker, CohereReranker)
    assert reranker._api_key == "from-secret"
