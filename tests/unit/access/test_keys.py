"""API keys: who may make them, what a key may carry, and how one is checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from docket.access.keys import (
    MAX_KEYS_PER_TENANT,
    PREFIX,
    CreateKeyRequest,
    KeyService,
    digest,
    parse,
)
from docket.access.memory import MemoryKeyStore
from docket.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from docket.models import Principal

ADMIN = Principal(subject="ann@acme", tenant="acme", groups=frozenset({"admins", "hr"}))
SCOPED_ADMIN = Principal(subject="bob@acme", tenant="acme", scopes=frozenset({"admin"}))
USER = Principal(subject="cat@acme", tenant="acme", groups=frozenset({"hr"}))
OTHER_ADMIN = Principal(subject="dan@globex", tenant="globex", groups=frozenset({"admins"}))


def request(scopes: list[str], groups: list[str] | None = None) -> CreateKeyRequest:
    return CreateKeyRequest(name="ci indexer", scopes=scopes, groups=groups or [])  # type: ignore[arg-type]


@pytest.fixture
def service() -> KeyService:
    return KeyService(MemoryKeyStore())


def test_a_created_key_authenticates_as_its_tenant_groups_and_scopes(service: KeyService) -> None:
    created = service.create(ADMIN, request(["query", "ingest"], ["hr"]))
    assert created.key.startswith(PREFIX)
    key = service.authenticate(created.key)
    principal = key.principal()
    assert principal.tenant == "acme" and principal.groups == frozenset({"hr"})
    assert principal.scopes == frozenset({"query", "ingest"})
    assert principal.key_id == created.record.key_id and principal.subject.startswith("key:")


def test_only_the_digest_is_stored_never_the_key(service: KeyService) -> None:
    created = service.create(ADMIN, request(["query"]))
    record, stored = service.store.get(created.record.key_id)  # type: ignore[misc]
    secret = parse(created.key)[1]  # type: ignore[index]
    assert stored == digest(secret) and secret not in stored and created.key not in stored
    assert created.key not in record.model_dump_json()
    assert "digest" not in record.model_dump()


def test_only_tenant_administrators_manage_keys(service: KeyService) -> None:
    with pytest.raises(Forbidden, match="administrators"):
        service.create(USER, request(["query"]))
    with pytest.raises(Forbidden):
        service.list(USER)
    with pytest.raises(Forbidden):
        service.revoke(USER, "a" * 20)
    assert service.create(SCOPED_ADMIN, request(["query"])).record.created_by == "bob@acme"


def test_a_key_never_exceeds_its_creators_groups(service: KeyService) -> None:
    with pytest.raises(Forbidden, match="finance"):
        service.create(ADMIN, request(["query"], ["hr", "finance"]))
    assert service.create(ADMIN, request(["query"], ["hr", "hr"])).record.groups == ["hr"]


def test_a_key_made_by_a_key_keeps_within_its_scopes(service: KeyService) -> None:
    admin_key = service.authenticate(service.create(ADMIN, request(["admin", "query"])).key)
    with pytest.raises(Forbidden, match="ingest"):
        service.create(admin_key.principal(), request(["query", "ingest"]))
    made = service.create(admin_key.principal(), request(["query"]))
    assert made.record.tenant == "acme"


def test_a_key_in_the_admins_group_is_no_administrator_without_the_scope(
    service: KeyService,
) -> None:
    key = service.authenticate(service.create(ADMIN, request(["query"], ["admins"])).key)
    with pytest.raises(Forbidden):
        service.create(key.principal(), request(["query"]))


def test_revoked_unknown_malformed_and_tampered_keys_are_unauthorized(
    service: KeyService,
) -> None:
    created = service.create(ADMIN, request(["query"]))
    tampered = created.key[:-1] + ("A" if created.key[-1] != "A" else "B")
    other_id = PREFIX + "0" * 20 + created.key[len(PREFIX) + 20 :]
    for bad in (tampered, other_id, "dk_", "dk_short_key", created.key + "x", "not-a-key"):
        with pytest.raises(Unauthorized):
            service.authenticate(bad)
    service.revoke(ADMIN, created.record.key_id)
    with pytest.raises(Unauthorized):
        service.authenticate(created.key)


def test_another_tenants_key_reads_as_missing(service: KeyService) -> None:
    created = service.create(ADMIN, request(["query"]))
    with pytest.raises(NotFound):
        service.revoke(OTHER_ADMIN, created.record.key_id)
    assert service.list(OTHER_ADMIN) == []
    assert service.authenticate(created.key).active  # still working


def test_listing_shows_revoked_keys_with_the_time(service: KeyService) -> None:
    a = service.create(ADMIN, request(["query"])).record
    b = service.create(ADMIN, request(["ingest"])).record
    service.revoke(ADMIN, a.key_id)
    listed = {k.key_id: k for k in service.list(ADMIN)}
    assert listed[a.key_id].revoked_at is not None and listed[b.key_id].revoked_at is None


def test_a_tenant_has_at_most_so_many_active_keys(service: KeyService) -> None:
    for _ in range(MAX_KEYS_PER_TENANT):
        service.create(SCOPED_ADMIN, request(["query"]))
    with pytest.raises(InvalidRequest, match="revoke one"):
        service.create(SCOPED_ADMIN, request(["query"]))


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["everything"]},
        {"name": "", "scopes": ["query"]},
        {"name": "x\n", "scopes": ["query"]},
        {"name": "x", "scopes": ["query"], "groups": ["bad group!"]},
        {"name": "x", "scopes": ["query"], "tenant": "globex"},  # a key's tenant is its creator's
    ],
)
def test_bad_requests_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CreateKeyRequest.model_validate(body)
