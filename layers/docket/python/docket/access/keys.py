"""API keys: a service calls docket as a tenant, with scopes and ACL groups, without a user's JWT.

A key reads ``dk_{key_id}_{secret}``. Only a SHA-256 digest of the secret is stored (the secret is
256 random bits, so a slow hash adds nothing); the key itself is shown once, when created, and is
never logged. Tenant administrators create keys; a key can never exceed its creator's tenant and
groups, and only an administrator's key may carry ``admin``. Revocation is a timestamp on the
record: the authorizer refuses the key from then on (on AWS, once its cached answer expires).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from docket.auth import is_admin
from docket.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from docket.models import GroupName, Principal, utcnow

PREFIX = "dk_"
Scope = Literal["query", "ingest", "tasks", "approvals", "admin"]
SCOPES: tuple[str, ...] = ("query", "ingest", "tasks", "approvals", "admin")
KEY_ID_RE = re.compile(r"^[0-9a-f]{20}$")
_TOKEN_RE = re.compile(r"^dk_([0-9a-f]{20})_([A-Za-z0-9_-]{43})$")
MAX_KEYS_PER_TENANT = 100

KeyId = Annotated[str, Field(pattern=KEY_ID_RE.pattern)]


class ApiKey(BaseModel):
    """A key's record, as stored and as listed: never the secret, never its digest."""

    model_config = ConfigDict(frozen=True)

    key_id: KeyId
    tenant: str
    name: str
    scopes: list[Scope]
    groups: list[GroupName]
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def principal(self) -> Principal:
        return Principal(
            subject=f"key:{self.key_id}",
            tenant=self.tenant,
            groups=frozenset(self.groups),
            scopes=frozenset(self.scopes),
            key_id=self.key_id,
        )


class KeyStore(Protocol):
    """Where key records live, with the digest of each key's secret."""

    def put(self, key: ApiKey, digest: str) -> None: ...

    def get(self, key_id: str) -> tuple[ApiKey, str] | None:
        """The record and its digest, read consistently; None when there is no such key."""
        ...

    def list(self, tenant: str) -> list[ApiKey]:
        """The tenant's keys, oldest first, revoked ones included."""
        ...

    def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        """Mark the tenant's key revoked at ``at`` (once: a second call keeps the first time);
        None when the tenant has no such key."""
        ...


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key; None for anything else."""
    match = _TOKEN_RE.match(token)
    return (match.group(1), match.group(2)) if match else None


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    groups: list[GroupName] = Field(default_factory=list, max_length=50)


class CreatedKey(BaseModel):
    """The answer to POST /keys: the record and, this once, the key itself."""

    key: str = Field(description="the API key; shown only now, store it safely")
    record: ApiKey


class KeyService:
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def create(self, caller: Principal, request: CreateKeyRequest) -> CreatedKey:
        _require_admin(caller, "creating API keys")
        groups = sorted(set(request.groups))
        beyond = [g for g in groups if g not in caller.groups]
        if beyond:
            raise Forbidden(f"a key cannot have groups its creator is not in: {beyond}")
        scopes = sorted(set(request.scopes), key=SCOPES.index)
        if caller.key_id is not None:  # a key that makes keys: never beyond its own scopes
            beyond = [s for s in scopes if s not in caller.scopes]
            if beyond:
                raise Forbidden(f"a key cannot make a key with scopes it lacks: {beyond}")
        live = [k for k in self.store.list(caller.tenant) if k.active]
        if len(live) >= MAX_KEYS_PER_TENANT:
            raise InvalidRequest(
                f"the tenant has {len(live)} active keys, the most it may have; revoke one first"
            )
        key_id, secret = secrets.token_hex(10), secrets.token_urlsafe(32)
        record = ApiKey(
            key_id=key_id,
            tenant=caller.tenant,
            name=request.name,
            scopes=scopes,  # type: ignore[arg-type]
            groups=groups,
            created_by=caller.subject,
            created_at=utcnow(),
        )
        self.store.put(record, digest(secret))
        return CreatedKey(key=f"{PREFIX}{key_id}_{secret}", record=record)

    def list(self, caller: Principal) -> list[ApiKey]:
        _require_admin(caller, "listing API keys")
        return self.store.list(caller.tenant)

    def revoke(self, caller: Principal, key_id: str) -> ApiKey:
        _require_admin(caller, "revoking API keys")
        revoked = self.store.revoke(caller.tenant, key_id, utcnow())
        if revoked is None:  # another tenant's key reads as no key at all
            raise NotFound(f"API key {key_id} not found")
        return revoked

    def authenticate(self, token: str) -> ApiKey:
        """The active key ``token`` names; Unauthorized for a malformed, unknown or revoked key
        or a wrong secret (one message for all: the caller learns nothing)."""
        parsed = parse(token)
        found = self.store.get(parsed[0]) if parsed else None
        if parsed is None or found is None:
            raise Unauthorized("invalid API key")
        record, stored = found
        if not hmac.compare_digest(stored, digest(parsed[1])) or not record.active:
            raise Unauthorized("invalid API key")
        return record


def _require_admin(caller: Principal, to: str) -> None:
    if not is_admin(caller):
        raise Forbidden(f"{to} is for tenant administrators")
