"""The authorizer: who is calling, from the ``Authorization: Bearer`` header, before any route runs.

An HTTP API route takes one authorizer, and a caller may bring either a JWT or an API key
(``dk_…``), so one Lambda authorizer (simple responses) verifies both: an API key against the keys
table (docket.access.keys), a JWT against the identity provider's keys on AWS or the local
cloud's own secret locally. The answer's context carries the caller's claims (``sub``,
``tenant``, ``groups`` and ``scope`` as space-separated strings, ``key_id`` for a key), which the
functions read as ``requestContext.authorizer.lambda`` (docket.auth.principal_from_event).

A caller that is not who they claim gets the error ``Unauthorized``, which API Gateway answers
with 401 (an ``isAuthorized: false`` would be a 403). API Gateway caches an authorization for
``RESULT_TTL_S`` per Authorization header, so a revoked key stops working within that time; the
local gateway calls the authorizer for every request, so there it stops at once.
"""

from __future__ import annotations

from typing import Any

from docket.auth import TENANT_CLAIM, principal_from_claims, verify_provider_token, verify_token
from docket.config import get_settings
from docket.errors import Unauthorized
from docket.observability import logger

RESULT_TTL_S = 60


class Denied(Exception):
    """Raised with the message API Gateway turns into 401; nothing else is said to the caller."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def bearer(event: dict[str, Any]) -> str | None:
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    auth = str(headers.get("authorization") or "")
    if not auth.lower().startswith("bearer "):
        return None
    return auth.split(" ", 1)[1].strip() or None


def claims_for(token: str) -> dict[str, str]:
    """The verified caller's claims as the authorizer passes them; Unauthorized otherwise."""
    from docket.access import factory
    from docket.access.keys import looks_like_key

    if looks_like_key(token):
        key = factory.keys().authenticate(token)
        return {
            "sub": f"key:{key.key_id}",
            TENANT_CLAIM: key.tenant,
            "groups": " ".join(key.groups),
            "scope": " ".join(key.scopes),
            "key_id": key.key_id,
        }
    settings = get_settings()
    if settings.auth_mode == "local":
        claims = verify_token(settings, token)
    else:
        claims = verify_provider_token(settings, token)
    caller = principal_from_claims(claims)  # a token without a tenant is refused here
    return {
        "sub": caller.subject,
        TENANT_CLAIM: caller.tenant,
        "groups": " ".join(sorted(caller.groups)),
        "scope": " ".join(sorted(caller.scopes)),
    }


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """A simple response allowing the caller, with their claims; Denied otherwise."""
    token = bearer(event)
    try:
        if token is None:
            raise Unauthorized("no bearer token")
        context = claims_for(token)
    except Unauthorized as exc:
        # the reason, never the token
        logger.info("request not authorized", reason=exc.message)
        raise Denied() from None
    return {"isAuthorized": True, "context": context}
