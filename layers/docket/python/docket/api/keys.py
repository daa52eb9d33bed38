"""API keys (tenant administrators) and the caller's usage against its limits.

``POST /keys`` answers the key itself once; it is stored only as a digest. ``GET /keys`` lists the
tenant's keys (never a secret), ``DELETE /keys/{key_id}`` revokes one. ``GET /usage`` shows the
caller's rate limits and quotas: the tenant's buckets and, for an API key, its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from docket.access.keys import KEY_ID_RE, ApiKey, CreatedKey, CreateKeyRequest
from docket.access.limits import Usage
from docket.models import Principal

router = APIGatewayHttpRouter()

KeyIdParam = Annotated[str, PathParam(pattern=KEY_ID_RE.pattern)]


class KeyList(BaseModel):
    keys: list[ApiKey]


def _caller() -> Principal:
    from docket.auth import principal_from_event

    return principal_from_event(router.current_event.raw_event)


def _keys() -> Any:
    from docket.access import factory

    return factory.keys()


@router.post("/keys")
def create_key(body: CreateKeyRequest) -> Response[CreatedKey]:
    """A new key for the caller's tenant, with scopes and groups no wider than the caller's.
    The answer holds the key itself: it is shown this once."""
    created = _keys().create(_caller(), body)
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=created,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/keys")
def list_keys() -> KeyList:
    return KeyList(keys=_keys().list(_caller()))


@router.delete("/keys/<key_id>")
def revoke_key(key_id: KeyIdParam) -> ApiKey:
    return _keys().revoke(_caller(), key_id)  # type: ignore[no-any-return]


@router.get("/usage")
def usage() -> Usage:
    from docket.access import factory

    return factory.limiter().usage(_caller())
