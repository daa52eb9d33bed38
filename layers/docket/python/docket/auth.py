"""Bearer tokens and the caller's principal.

On AWS the HTTP API's JWT authorizer verifies the token and passes its claims in
``requestContext.authorizer.jwt.claims``; the local cloud's gateway does the same with tokens it
signs itself (HS256). Either way, tenant and groups come only from verified claims, never from a
request body.
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
        )
    except ValueError as exc:
        raise Unauthorized(f"token claims are invalid: {exc}") from exc


def principal_from_event(event: dict[str, Any]) -> Principal:
    claims = (
        event.get("requestContext", {}).get("authorizer", {}).get("jwt", {}).get("claims")
        if isinstance(event, dict)
        else None
    )
    return principal_from_claims(claims)


# Tenant administrators: the scope on a token, or membership of the group.
ADMIN_SCOPE = "admin"
ADMIN_GROUP = "admins"


def require(caller: Principal, *, scope: str, group: str, to: str) -> Principal:
    """``caller`` when they hold ``scope`` or are in ``group``; Forbidden naming both otherwise
    (``to``: what they asked to do, e.g. "deciding approvals")."""
    if scope not in caller.scopes and group not in caller.groups:
        raise Forbidden(f"{to} needs the {scope!r} scope or the {group!r} group")
    return caller
