"""The authorizer: JWTs (local secret, or the provider's published keys) and API keys in, the
caller's claims out, and ``Unauthorized`` (API Gateway's 401) for anything else."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from docket.access import factory
from docket.access.keys import CreateKeyRequest
from docket.api.authorizer import Denied, authorize
from docket.auth import issue_token, principal_from_event
from docket.config import Settings, get_settings, reset_settings

ADMIN_GROUPS = ["admins", "hr"]


def event(authorization: str | None) -> dict[str, Any]:
    headers = {"authorization": authorization} if authorization is not None else {}
    return {"version": "2.0", "type": "REQUEST", "headers": headers, "requestContext": {}}


def as_request(context: dict[str, Any]) -> dict[str, Any]:
    return {"requestContext": {"authorizer": {"lambda": context}}}


@pytest.fixture(autouse=True)
def _local(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DOCKET_AUTH_MODE", "local")
    reset_settings()
    yield
    reset_settings()


def test_a_local_token_becomes_the_callers_claims() -> None:
    token = issue_token(get_settings(), subject="ann", tenant="acme", groups=["hr"])
    out = authorize(event(f"Bearer {token}"))
    assert out["isAuthorized"] is True
    caller = principal_from_event(as_request(out["context"]))
    assert (caller.subject, caller.tenant, caller.groups) == ("ann", "acme", frozenset({"hr"}))
    assert caller.key_id is None and "query" in caller.scopes


def test_an_api_key_becomes_its_tenant_groups_and_scopes() -> None:
    from docket.models import Principal

    admin = Principal(subject="ann", tenant="acme", groups=frozenset(ADMIN_GROUPS))
    created = factory.keys().create(
        admin, CreateKeyRequest(name="svc", scopes=["query"], groups=["hr"])
    )
    out = authorize(event(f"Bearer {created.key}"))
    caller = principal_from_event(as_request(out["context"]))
    assert caller.tenant == "acme" and caller.groups == frozenset({"hr"})
    assert caller.scopes == frozenset({"query"}) and caller.key_id == created.record.key_id
    assert all(isinstance(v, str) for v in out["context"].values())  # simple-response context
    factory.keys().revoke(admin, created.record.key_id)
    with pytest.raises(Denied):
        authorize(event(f"Bearer {created.key}"))


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer dk_" + "0" * 20 + "_x"],
)
def test_anything_else_is_unauthorized_with_apigateways_message(header: str | None) -> None:
    with pytest.raises(Denied) as denied:
        authorize(event(header))
    assert str(denied.value) == "Unauthorized"  # the message API Gateway answers 401 for


def test_a_token_signed_with_another_secret_is_refused() -> None:
    forged = issue_token(
        Settings(dev_token_secret="y" * 40), subject="eve", tenant="acme", groups=["admins"]
    )
    with pytest.raises(Denied):
        authorize(event(f"Bearer {forged}"))


def test_on_aws_a_providers_token_is_checked_against_its_published_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing.public_key()))
    published = {"keys": [{**jwk, "kid": "k1"}]}
    fetched: list[str] = []

    def fetch(client: Any) -> Any:  # unit tests stay offline: the provider's answer, as JSON
        fetched.append(client.uri)
        return json.loads(json.dumps(published))

    monkeypatch.setattr(jwt.PyJWKClient, "fetch_data", fetch)
    monkeypatch.setenv("DOCKET_AUTH_MODE", "jwt_authorizer")
    monkeypatch.setenv("DOCKET_TOKEN_ISSUER", "https://issuer.example.com/")
    monkeypatch.setenv("DOCKET_TOKEN_AUDIENCE", "docket,other")
    monkeypatch.setenv("DOCKET_TOKEN_JWKS_URL", "https://issuer.example.com/jwks.json")
    reset_settings()
    now = int(time.time())
    claims = {
        "iss": "https://issuer.example.com/",
        "aud": "docket",
        "sub": "ann",
        "exp": now + 300,
        "tenant": "acme",
        "groups": ["hr"],
        "scope": "query",
    }
    good = jwt.encode(claims, signing, algorithm="RS256", headers={"kid": "k1"})
    caller = principal_from_event(as_request(authorize(event(f"Bearer {good}"))["context"]))
    assert (caller.tenant, caller.groups, caller.scopes) == (
        "acme",
        frozenset({"hr"}),
        frozenset({"query"}),
    )
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        jwt.encode(claims, other, algorithm="RS256", headers={"kid": "k1"}),  # wrong key
        jwt.encode({**claims, "aud": "nope"}, signing, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode({**claims, "exp": now - 10}, signing, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode(
            {**claims, "iss": "https://x/"}, signing, algorithm="RS256", headers={"kid": "k1"}
        ),
        # the local cloud's development token means nothing on AWS
        issue_token(Settings(), subject="eve", tenant="acme", groups=["admins"]),
    ):
        with pytest.raises(Denied):
            authorize(event(f"Bearer {bad}"))
    assert set(fetched) == {"https://issuer.example.com/jwks.json"}
