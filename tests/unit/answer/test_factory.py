"""Choosing the answerer from settings: extractive or LLM, strict citations per tenant."""

from __future__ import annotations

import pytest

from docket.answer import ExtractiveAnswerer
from docket.answer.factory import TenantAnswerers, answerer_for, build_answerers
from docket.answer.generative import GenerativeAnswerer
from docket.config import Settings
from docket.errors import ConfigurationError
from docket.providers import ScriptedChatModel
from tests.unit.answer.abstracts import VITAMIN_D
from tests.unit.answer.conftest import make_hit


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('["acme", "globex"]', {"acme", "globex"}),
        ("acme, globex ,", {"acme", "globex"}),
        ("acme", {"acme"}),
        ("", set()),
    ],
)
def test_strict_citation_tenants_read_json_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: set[str]
) -> None:
    # Given the tenant list in the environment, in either form
    monkeypatch.setenv("DOCKET_STRICT_CITATION_TENANTS", raw)
    # When settings load / Then the same set comes out
    assert Settings().strict_citation_tenants == frozenset(expected)


def test_answer_settings_default_to_the_offline_extractive_answerer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ANSWERER", "LLM_PROVIDER", "STRICT_CITATION_TENANTS", "ANSWER_MAX_SOURCES"):
        monkeypatch.delenv(f"DOCKET_{name}", raising=False)
    settings = Settings()
    assert settings.answerer == "extractive" and settings.llm_provider == "none"
    assert settings.strict_citation_tenants == frozenset() and settings.answer_max_sources == 8
    answerers = build_answerers(settings)
    assert isinstance(answerers.default, ExtractiveAnswerer)
    assert answerer_for(answerers, "acme") is answerers.default


def test_llm_answerer_is_strict_only_for_listed_tenants() -> None:
    # Given the LLM answerer with one strict tenant
    settings = Settings(
        answerer="llm",
        llm_provider="fake",
        strict_citation_tenants=frozenset({"strictco"}),
        answer_max_sources=5,
    )
    answerers = build_answerers(settings)
    # When the query path asks per tenant
    strict, relaxed = answerer_for(answerers, "strictco"), answerer_for(answerers, "acme")
    # Then the listed tenant gets strict citations, others the default
    assert isinstance(strict, GenerativeAnswerer) and strict.strict
    assert isinstance(relaxed, GenerativeAnswerer) and not relaxed.strict
    assert strict.max_sources == relaxed.max_sources == 5
    assert strict.min_score == settings.min_answer_score
    # And a plain answerer (a test's fake) is used for every tenant
    plain = ExtractiveAnswerer()
    assert answerer_for(plain, "strictco") is plain


def test_the_fake_provider_answers_offline_through_the_llm_path() -> None:
    # Given answerer=llm with the fake provider (what the local cloud can run)
    answerers = build_answerers(Settings(answerer="llm", llm_provider="fake"))
    hits = [make_hit(VITAMIN_D, source="vitd.pdf", bm25=14.0, bm25_rank=1)]
    # When asked
    answer = answerers.answer("Did vitamin D3 supplementation reduce the risk of fracture?", hits)
    # Then the answer is verified and says which model answered
    assert answer.found and answer.verified
    assert answer.answerer == "llm:fake-extractive-echo"
    assert answer.citations[0].quote in VITAMIN_D


def test_llm_without_a_provider_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DOCKET_LLM_PROVIDER"):
        build_answerers(Settings(answerer="llm"))


def test_an_injected_model_overrides_the_provider() -> None:
    model = ScriptedChatModel(["x"])
    answerers = build_answerers(Settings(answerer="llm"), model=model)
    assert isinstance(answerers, TenantAnswerers)
    assert isinstance(answerers.default, GenerativeAnswerer) and answerers.default.model is model
