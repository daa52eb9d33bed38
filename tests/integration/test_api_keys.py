"""API keys and rate limits through the local gateway: the authorizer, the keys table and the
limits table of a running local cloud, as a service would meet them.

Bad input: a revoked key → 401 at once; a key asking for another tenant's document → 404; a key
without ``ingest`` uploading → 403; an MCP call with a revoked key → 401 in the MCP error shape;
a flood beyond the limit → 429s with Retry-After, and no effect on another tenant's limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mcp.client.streamable_http import streamable_http_client

from docket.cli import main as cli_main
from mcp import ClientSession

from .conftest import Api, running_cloud

pytestmark = pytest.mark.integration

QUERY_RPM = 8
ADMIN = ("admins", "hr")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    env = {
        "DOCKET_QUERY_RPM": str(QUERY_RPM),
        "DOCKET_KEY_QUERY_RPM": str(QUERY_RPM // 2),
        "DOCKET_MCP_RPM": "1000",
        "DOCKET_INGEST_BYTES_PER_DAY": "1000000",
    }
    with running_cloud(tmp_path_factory.mktemp("keys"), env=env) as (_, api):
        for tenant in ("acme", "globex"):
            doc = api.upload(
                f"{tenant}-policy.txt", f"{tenant} refunds take 30 days.".encode(), tenant=tenant
            )
            assert api.wait_status(doc, tenant)["status"] == "indexed"
        yield api


def create_key(
    api: Api, scopes: list[str], groups: list[str] | None = None, tenant: str = "acme"
) -> dict[str, Any]:
    resp = api.call(
        "POST",
        "/keys",
        tenant,
        ADMIN,
        json={"name": "svc", "scopes": scopes, "groups": groups or []},
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["cache-control"] == "no-store"
    return resp.json()  # type: ignore[no-any-return]


def with_key(api: Api, key: str, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return api.http.request(method, path, headers=headers, **kw)


def test_a_key_acts_as_its_tenant_and_groups_and_revoking_it_stops_it_at_once(api: Api) -> None:
    created = create_key(api, ["query"], ["hr"])
    key, key_id = created["key"], created["record"]["key_id"]
    listed = with_key(api, key, "GET", "/documents")
    assert listed.status_code == 200
    assert {d["tenant"] for d in listed.json()["documents"]} == {"acme"}
    asked = with_key(api, key, "POST", "/query", json={"question": "How long do refunds take?"})
    assert asked.status_code == 200, asked.text
    # the key is never shown again: not in the list, not in the record
    keys = api.call("GET", "/keys", "acme", ADMIN).json()["keys"]
    assert key_id in {k["key_id"] for k in keys} and key not in json.dumps(keys)
    revoked = api.call("DELETE", f"/keys/{key_id}", "acme", ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = with_key(api, key, "GET", "/documents")
    assert after.status_code == 401 and after.json() == {"message": "Unauthorized"}


def test_a_key_cannot_reach_another_tenants_document(api: Api) -> None:
    key = create_key(api, ["query", "ingest"])["key"]
    globex = api.call("GET", "/documents", "globex").json()["documents"][0]["document_id"]
    assert with_key(api, key, "GET", f"/documents/{globex}").status_code == 404
    assert with_key(api, key, "DELETE", f"/documents/{globex}").status_code == 404
    # nor revoke another tenant's key
    other = create_key(api, ["query"], tenant="globex")["record"]["key_id"]
    assert api.call("DELETE", f"/keys/{other}", "acme", ADMIN).status_code == 404


def test_a_key_without_a_scope_is_forbidden_what_the_scope_allows(api: Api) -> None:
    key = create_key(api, ["query"])["key"]
    upload = with_key(api, key, "POST", "/documents", json={"source": "x.txt"})
    assert upload.status_code == 403 and "ingest" in upload.json()["error"]["message"]
    assert with_key(api, key, "GET", "/keys").status_code == 403  # no admin scope
    assert with_key(api, key, "POST", "/tasks", json={"prompt": "hi"}).status_code == 403
    assert with_key(api, key, "GET", "/approvals").status_code == 403
    ingest_only = create_key(api, ["ingest"])["key"]
    asked = with_key(api, ingest_only, "POST", "/query", json={"question": "refunds?"})
    assert asked.status_code == 403


def test_a_key_never_exceeds_its_creator(api: Api) -> None:
    resp = api.call(
        "POST",
        "/keys",
        "acme",
        ADMIN,
        json={"name": "x", "scopes": ["query"], "groups": ["finance"]},
    )
    assert resp.status_code == 403
    not_admin = api.call("POST", "/keys", "acme", ("hr",), json={"name": "x", "scopes": ["query"]})
    assert not_admin.status_code == 403


def test_the_mcp_server_takes_keys_and_refuses_revoked_ones_in_its_error_shape(api: Api) -> None:
    created = create_key(api, ["query"])
    key = created["key"]

    async def search() -> Any:
        headers = {"Authorization": f"Bearer {key}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{api.url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            return await session.call_tool("search", {"question": "refunds", "top_k": 5})

    result = asyncio.run(search())
    assert not result.isError
    assert {c["document_id"][:4] for c in result.structuredContent["chunks"]} == {"doc_"}
    api.call("DELETE", f"/keys/{created['record']['key_id']}", "acme", ADMIN)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    refused = with_key(
        api,
        key,
        "POST",
        "/mcp",
        json=body,
        headers={"authorization": f"Bearer {key}", "accept": "application/json, text/event-stream"},
    )
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == -32001
    assert refused.headers["www-authenticate"].startswith("Bearer")


def test_a_flood_gets_429s_with_retry_after_and_leaves_another_tenant_alone(api: Api) -> None:
    question = {"question": "How long do refunds take?", "top_k": 3}
    statuses, retry = [], []
    for _ in range(QUERY_RPM + 4):
        resp = api.call("POST", "/query", "initech", json=question)
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            retry.append(int(resp.headers["retry-after"]))
            assert resp.json()["error"]["code"] == "rate_limited"
    assert statuses.count(200) == QUERY_RPM and statuses.count(429) == 4
    assert statuses[:QUERY_RPM] == [200] * QUERY_RPM
    assert all(1 <= r <= 60 for r in retry)
    # another tenant still has its whole minute
    assert api.call("POST", "/query", "umbrella", json=question).status_code == 200
    usage = api.call("GET", "/usage", "initech").json()
    query = next(u for u in usage["limits"] if u["kind"] == "query")
    assert (query["limit"], query["remaining"], query["applies_to"]) == (QUERY_RPM, 0, "tenant")


def test_a_keys_own_limit_stops_it_before_its_tenant(api: Api) -> None:
    key = create_key(api, ["query"], tenant="hooli")["key"]
    question = {"question": "refunds?", "top_k": 3}
    statuses = [
        with_key(api, key, "POST", "/query", json=question).status_code
        for _ in range(QUERY_RPM // 2 + 2)
    ]
    assert statuses == [200] * (QUERY_RPM // 2) + [429, 429]
    # the tenant's own callers keep what the key did not take
    assert api.call("POST", "/query", "hooli", json=question).status_code == 200
    usage = with_key(api, key, "GET", "/usage").json()
    assert {(u["kind"], u["applies_to"]) for u in usage["limits"]} >= {
        ("query", "key"),
        ("query", "tenant"),
    }


def test_the_daily_upload_quota_is_counted_in_bytes(api: Api) -> None:
    def declare(n: int) -> httpx.Response:
        return api.call(
            "POST", "/documents", "stark", json={"source": f"f{n}.bin", "size_bytes": 400_000}
        )

    assert declare(1).status_code == 201 and declare(2).status_code == 201
    refused = declare(3)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 3600

    # the upload URL takes exactly the declared size
    def url(source: str) -> str:
        body = {"source": source, "size_bytes": 5}
        return str(api.call("POST", "/documents", "wayne", json=body).json()["upload_url"])

    assert httpx.put(url("exact.txt"), content=b"12345").status_code == 200
    assert httpx.put(url("longer.txt"), content=b"123456789").status_code >= 400


def test_the_cli_creates_lists_and_revokes_keys(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--url", api.url, "--tenant", "acme", "--groups", "admins,hr"]
    assert cli_main(["keys", "create", "--name", "nightly", "--scopes", "query,ingest", *base]) == 0
    out = capsys.readouterr()
    key = out.out.strip()
    assert key.startswith("dk_") and "shown only now" in out.err
    assert with_key(api, key, "GET", "/documents").status_code == 200
    assert cli_main(["keys", "list", *base]) == 0
    listing = capsys.readouterr().out
    key_id = key[3:23]
    assert key_id in listing and "nightly" in listing and key not in listing
    assert cli_main(["keys", "revoke", key_id, *base]) == 0
    assert "revoked" in capsys.readouterr().out
    assert with_key(api, key, "GET", "/documents").status_code == 401
