"""Tokens, claims and object keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.auth import issue_token, principal_from_claims, verify_token
from docket.config import Settings
from docket.errors import InvalidRequest, Unauthorized
from docket.ingest.keys import normalise_source, object_key, parse_key
from docket.models import document_id_for

SETTINGS = Settings(dev_token_secret="unit-test-secret-that-is-long-enough-32b")


def test_token_round_trip_carries_tenant_and_groups() -> None:
    token = issue_token(SETTINGS, subject="alice", tenant="acme", groups=["hr", "hr", "legal"])
    principal = principal_from_claims(verify_token(SETTINGS, token))
    assert principal.tenant == "acme" and principal.groups == frozenset({"hr", "legal"})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # bad signature
        lambda t: issue_token(Settings(dev_token_secret="x" * 40), subject="a", tenant="acme"),
        lambda t: issue_token(SETTINGS, subject="a", tenant="acme", ttl_seconds=-10),  # expired
        lambda t: "not-a-jwt",
    ],
)
def test_bad_tokens_are_unauthorized(mutate) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(SETTINGS, subject="alice", tenant="acme")
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, mutate(token))


def test_claims_without_tenant_are_unauthorized() -> None:
    with pytest.raises(Unauthorized):
        principal_from_claims({"sub": "x"})
    with pytest.raises(Unauthorized):
        principal_from_claims({"sub": "x", "tenant": "Not A Tenant"})


def test_keys_round_trip() -> None:
    key = object_key("acme", "reports/q3.pdf")
    assert key == "tenants/acme/reports/q3.pdf"
    assert parse_key(key) == ("acme", "reports/q3.pdf", document_id_for("acme", "reports/q3.pdf"))
    assert parse_key("tenants%2Facme%2Fa+b.txt", url_encoded=True)[1] == "a b.txt"


@pytest.mark.parametrize("bad", ["", "/", "..", "a/../b", "a\x00b"])
def test_bad_sources_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        normalise_source(bad)


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
def test_document_ids_never_collide_across_tenants(source: str, other: str) -> None:
    # Invariant: a document id names exactly one (tenant, source)
    assert document_id_for("acme", source) != document_id_for("globex", source)
    if source != other:
        assert document_id_for("acme", source) != document_id_for("acme", other)
