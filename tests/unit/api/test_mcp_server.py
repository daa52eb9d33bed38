"""The MCP server's tools and its Lambda bridge, on fakes: schemas from the REST models, the
caller passed through to every service, typed tool errors, and JSON-RPC errors at the edge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from docket import errors
from docket.api import mcp_server
from docket.auth import GROUPS_CLAIM, TENANT_CLAIM
from docket.models import DocumentRecord, DocumentStatus, DocumentView, Principal
from docket.query import QueryRequest, QueryResponse, SearchResponse

ALICE = Principal(subject="alice", tenant="acme", groups=frozenset({"finance"}))


class FakeQueries:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Principal, QueryRequest]] = []

    def search(self, principal: Principal, request: QueryRequest) -> SearchResponse:
        self.calls.append(("search", principal, request))
        return SearchResponse(
            question=request.question,
            chunks=[],
            mode=request.mode,
            embedding_model="m",
            timings_ms={},
        )

    def ask(self, principal: Principal, request: QueryRequest) -> QueryResponse:
        self.calls.append(("ask", principal, request))
        return QueryResponse(
            question=request.question,
            found=False,
            answer="Not found in the knowledge base.",
            confidence=0.0,
            citations=[],
            chunks=[],
            mode=request.mode,
            embedding_model="m",
            timings_ms={},
        )


class FakeDocuments:
    def __init__(self, visible: dict[str, DocumentRecord]) -> None:
        self.visible = visible
        self.callers: list[Principal] = []

    def list(self, principal: Principal) -> list[DocumentRecord]:
        self.callers.append(principal)
        return list(self.visible.values())

    def view(self, principal: Principal, document_id: str) -> DocumentView:
        self.callers.append(principal)
        if document_id not in self.visible:
            raise errors.NotFound(f"document {document_id} not found")
        return DocumentView(**self.visible[document_id].model_dump())


DOC_ID = "doc_" + "a" * 24


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeQueries, FakeDocuments]:
    queries = FakeQueries()
    record = DocumentRecord(
        tenant="acme", document_id=DOC_ID, source="a.md", status=DocumentStatus.INDEXED
    )
    documents = FakeDocuments({DOC_ID: record})
    monkeypatch.setattr(mcp_server, "_queries", lambda: queries)
    monkeypatch.setattr(mcp_server, "_documents", lambda: documents)
    return queries, documents


def test_tool_schemas_are_the_rest_apis_models() -> None:
    tools = {t.name: t for t in mcp_server.tool_definitions()}
    assert set(tools) == {"search", "ask", "list_sources", "get_document"}
    assert tools["search"].inputSchema == QueryRequest.model_json_schema()
    assert tools["ask"].inputSchema == QueryRequest.model_json_schema()
    assert tools["ask"].outputSchema == QueryResponse.model_json_schema(mode="serialization")
    assert all(t.description for t in tools.values())


def test_every_tool_runs_as_the_caller(fakes: tuple[FakeQueries, FakeDocuments]) -> None:
    queries, documents = fakes
    for name, arguments in [
        ("search", {"question": "q", "top_k": 3}),
        ("ask", {"question": "q", "mode": "bm25"}),
    ]:
        result = mcp_server.call_tool(ALICE, name, arguments)
        assert not result.isError
        assert result.structuredContent is not None
        assert json.loads(result.content[0].text) == result.structuredContent  # type: ignore[union-attr]
    assert [(n, p, r.top_k, r.mode) for n, p, r in queries.calls] == [
        ("search", ALICE, 3, "hybrid"),
        ("ask", ALICE, 10, "bm25"),
    ]
    listed = mcp_server.call_tool(ALICE, "list_sources", {})
    assert [d["document_id"] for d in listed.structuredContent["documents"]] == [DOC_ID]  # type: ignore[index]
    assert documents.callers == [ALICE]


def test_a_document_the_caller_cannot_see_is_a_not_found_tool_error(
    fakes: tuple[FakeQueries, FakeDocuments],
) -> None:
    result = mcp_server.call_tool(ALICE, "get_document", {"document_id": "doc_" + "b" * 24})
    assert result.isError
    assert json.loads(result.content[0].text)["error"]["code"] == "not_found"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "arguments", "field"),
    [
        ("search", {"question": ""}, "question"),
        ("search", {"question": "q", "top_k": "10"}, "top_k"),  # strict, as the REST body
        ("ask", {"question": "q", "rerank": 1}, "rerank"),
        ("get_document", {"document_id": "doc_1"}, "document_id"),
        ("list_sources", {"tenant": "globex"}, "tenant"),  # no way to name another tenant
    ],
)
def test_bad_arguments_are_invalid_request_tool_errors(
    fakes: tuple[FakeQueries, FakeDocuments], name: str, arguments: dict[str, Any], field: str
) -> None:
    result = mcp_server.call_tool(ALICE, name, arguments)
    assert result.isError
    error = json.loads(result.content[0].text)["error"]  # type: ignore[union-attr]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(field)
    assert fakes[0].calls == []


def _event(body: str | bytes, claims: dict[str, Any] | None) -> dict[str, Any]:
    context: dict[str, Any] = {"http": {"method": "POST", "path": "/mcp", "sourceIp": "1.2.3.4"}}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims}}
    return {
        "version": "2.0",
        "rawPath": "/mcp",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
        "requestContext": context,
        "body": body if isinstance(body, str) else body.decode(),
        "isBase64Encoded": False,
    }


CLAIMS = {"sub": "alice", TENANT_CLAIM: "acme", GROUPS_CLAIM: ["finance"]}


def test_the_bridge_serves_json_rpc_as_the_verified_caller(
    fakes: tuple[FakeQueries, FakeDocuments],
) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    resp = mcp_server.handle(_event(json.dumps(init), CLAIMS))
    assert resp["statusCode"] == 200
    assert json.loads(resp["body"])["result"]["serverInfo"]["name"] == "docket"
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "search", "arguments": {"question": "refunds"}},
    }
    resp = mcp_server.handle(_event(json.dumps(call), CLAIMS))
    assert resp["statusCode"] == 200
    assert json.loads(resp["body"])["result"]["isError"] is False
    assert fakes[0].calls[0][1] == ALICE


@pytest.mark.parametrize("claims", [None, {"sub": "alice"}])
def test_no_verified_caller_is_a_401_in_the_mcp_error_shape(claims: Any) -> None:
    resp = mcp_server.handle(_event('{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}', claims))
    assert resp["statusCode"] == 401
    assert resp["headers"]["www-authenticate"] == "Bearer"
    body = json.loads(resp["body"])
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32001


def test_a_body_nested_too_deep_is_a_parse_error_not_a_500() -> None:
    resp = mcp_server.handle(_event(b"[" * 100_000, CLAIMS))
    assert resp["statusCode"] == 400
    assert json.loads(resp["body"])["error"]["code"] == mcp_server.PARSE_ERROR


def test_a_key_without_the_query_scope_is_a_403_json_rpc_error() -> None:
    key = {"sub": "key:1", TENANT_CLAIM: "acme", "scope": "ingest", "key_id": "1" * 20}
    resp = mcp_server.handle(_event('{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}', key))
    assert resp["statusCode"] == 403
    body = json.loads(resp["body"])
    assert (
        body["error"]["code"] == mcp_server.FORBIDDEN_CODE and "query" in body["error"]["message"]
    )


def test_over_the_mcp_rate_limit_is_a_429_with_retry_after(
    fakes: tuple[FakeQueries, FakeDocuments], monkeypatch: pytest.MonkeyPatch
) -> None:
    from docket.config import reset_settings

    monkeypatch.setenv("DOCKET_MCP_RPM", "3")
    reset_settings()
    try:
        listing = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
        flooder = {**CLAIMS, TENANT_CLAIM: "flooder"}
        statuses = [mcp_server.handle(_event(listing, flooder))["statusCode"] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        resp = mcp_server.handle(_event(listing, flooder))
        assert int(resp["headers"]["retry-after"]) == 20  # 3 a minute: one every 20 s
        assert json.loads(resp["body"])["error"]["code"] == mcp_server.RATE_LIMITED_CODE
        assert mcp_server.handle(_event(listing, CLAIMS))["statusCode"] == 200  # another tenant
    finally:
        reset_settings()
