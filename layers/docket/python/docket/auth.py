"""Bearer tokens and the caller's principal.

The authorizer function (docket.api.authorizer) verifies the bearer token, a JWT or an API key
(docket.access.keys), and passes the caller's claims in ``requestContext.authorizer.lambda``; on
AWS the HTTP API calls it, locally the gateway does. JWTs are checked against the identity
provider's keys on AWS and against the local cloud's own secret (HS256) locally. Either way,
tenant, groups and scopes come only from verified claims, never from a request body.
"""

from __future__ import annotations

import time
from typing import Any

from docket.config import Settings
from docket.errors import Forbidden, Unauthorized
from docket.models import Principal

TENANT_CLAIM = "tenant"
GROUPS_CLAIM = "groups"


def issue_token(
    settings: Settings,
    *,
    subject: str,
    tenant: str,
    groups: list[str] | None = None,
    scopes: list[str] | None = None,
    ttl_seconds: int = 12 * 3600,
) -> str:
    import jwt

    now = int(time.time())
    claims = {
        "iss": settings.token_issuer,
        "aud": settings.token_audience,
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        TENANT_CLAIM: tenant,
        GROUPS_CLAIM: sorted(set(groups or [])),
        "scope": " ".join(scopes or ["documents:write", "query", "tasks", "approvals"]),
    }
    return jwt.encode(claims, settings.dev_token_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str) -> dict[str, Any]:
    """Verify signature, expiry, issuer and audience; return the claims (local gateway only)."""
    import jwt

    try:
        return jwt.decode(
            token,
            settings.dev_token_secret,
            algorithms=["HS256"],
            audience=settings.token_audience,
            issuer=settings.token_issuer,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc


_jwks_clients: dict[str, Any] = {}


def verify_provider_token(settings: Settings, token: str) -> dict[str, Any]:
    """Verify a JWT from the identity provider (on AWS): signature against the provider's
    published keys (``token_jwks_url``, else its OpenID discovery document), expiry, issuer,
    audience; return the claims."""
    import jwt

    try:
        client = _jwks_client(settings)
        key = client.get_signing_key_from_jwt(token)
        audience = [a for a in settings.token_audience.split(",") if a]
        return jwt.decode(
            token,
            key.key,
            algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"],
            audience=audience,
            issuer=settings.token_issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc


def _jwks_client(settings: Settings) -> Any:
    import jwt

    url = settings.token_jwks_url
    if url is None:
        import json
        import urllib.request

        discovery = settings.token_issuer.rstrip("/") + "/.well-known/openid-configuration"
        url = _jwks_clients.get(discovery)
        if url is None:
            try:
                with urllib.request.urlopen(discovery, timeout=5) as resp:
                    url = str(json.load(resp)["jwks_uri"])
            except (OSError, ValueError, KeyError) as exc:
                raise jwt.PyJWKClientError(f"no JWKS from {discovery}: {exc}") from exc
            _jwks_clients[discovery] = url
    client = _jwks_clients.get(f"client:{url}")
    if client is None:  # one per URL: it caches the provider's keys across invocations
        client = _jwks_clients[f"client:{url}"] = jwt.PyJWKClient(url, lifespan=3600)
    return client


def _as_list(value: Any) -> list[str]:
    """API Gateway passes array claims as a string like "[a b]"; accept both forms."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return [p for p in text.replace(",", " ").split() if p]


def principal_from_claims(claims: dict[str, Any] | None) -> Principal:
    if not claims or not claims.get("sub") or not claims.get(TENANT_CLAIM):
        raise Unauthorized("missing or unverified token")
    try:
        return Principal(
            subject=str(claims["sub"]),
            tenant=str(claims[TENANT_CLAIM]),
            groups=frozenset(_as_list(claims.get(GROUPS_CLAIM))),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            key_id=str(claims["key_id"]) if claims.get("key_id") else None,
        )
    except ValueError as exc:
        raise Unauthorized(f"token claims are invalid: {exc}") from exc


def principal_from_event(event: dict[str, Any]) -> Principal:
    """The caller the authorizer verified: its context (``authorizer.lambda``), or the claims of
    a JWT authorizer (``authorizer.jwt.claims``)."""
    authorizer = (
        event.get("requestContext", {}).get("authorizer") if isinstance(event, dict) else None
    ) or {}
    claims = authorizer.get("lambda") or (authorizer.get("jwt") or {}).get("claims")
    return principal_from_claims(claims)


# Tenant administrators: the scope on a token, or membership of the group.
ADMIN_SCOPE = "admin"
ADMIN_GROUP = "admins"


def require(caller: Principal, *, scope: str, group: str, to: str) -> Principal:
    """``caller`` when they hold ``scope`` or are in ``group``; Forbidden naming both otherwise
    (``to``: what they asked to do, e.g. "deciding approvals"). An API key needs the scope
    itself: its groups say what it may read, its scopes what it may do."""
    if caller.key_id is not None:
        return require_scope(caller, scope, to=to)
    if scope not in caller.scopes and group not in caller.groups:
        raise Forbidden(f"{to} needs the {scope!r} scope or the {group!r} group")
    return caller


def require_scope(caller: Principal, scope: str, *, to: str) -> Principal:
    """An API key acts only within its scopes; a user's token is bound by tenant and groups
    alone (identity providers differ in the scopes they put on tokens), except where
    ``require`` asks for more."""
    if caller.key_id is not None and scope not in caller.scopes:
        raise Forbidden(f"{to} needs an API key with the {scope!r} scope")
    return caller


def is_admin(caller: Principal) -> bool:
    """A tenant administrator: the ``admin`` scope, or (for a user) the ``admins`` group."""
    if caller.key_id is not None:
        return ADMIN_SCOPE in caller.scopes
    return ADMIN_SCOPE in caller.scopes or ADMIN_GROUP in caller.groups
