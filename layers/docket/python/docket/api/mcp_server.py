"""The knowledge base over the Model Context Protocol: the mcp function's server.

Built on the official SDK (``mcp``, its low-level ``Server`` and ``StreamableHTTPSessionManager``),
served over streamable HTTP, stateless, with JSON responses (no session, no event stream): each
``POST /mcp`` carries one JSON-RPC message and gets its answer in the body, which is what a Lambda
behind API Gateway can do. Every call runs as the caller: the token was verified before the
function runs (the local gateway, or the HTTP API's JWT authorizer on AWS) and the principal is
read from the event's claims exactly as ``POST /query`` reads it; the handler puts it in the ASGI
scope and each tool takes it from there. A tool never sees another tenant's or a foreign group's
chunk or document, because it calls the same services the REST routes call.

Tools (every one an ordinary tool: many hosts read no resources):

- ``search``: the chunks ``POST /query`` would retrieve for the same arguments, best first, without
  an answer. Same input model (``QueryRequest``), same services, so the same chunk ids in the same
  order (tests/integration/test_mcp.py holds that on 50+ questions).
- ``ask``: the answer with citations, exactly ``POST /query``'s response.
- ``list_sources``: the caller's documents (``GET /documents``).
- ``get_document``: a document's record and its text, a page of chunks at a time.

Input schemas are the pydantic models' JSON Schemas (the REST API's own for search and ask), and
arguments are validated by those models again (strict, as the REST body is). Errors a caller
can fix come back as tool errors (``isError``) with docket's error code and message, so that the
model calling the tool can read them; malformed JSON-RPC gets the SDK's JSON-RPC error.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from docket import errors
from docket.auth import principal_from_event
from docket.models import DocumentRecord, DocumentView, Principal
from docket.query import QueryRequest, QueryResponse, SearchResponse

if TYPE_CHECKING:
    import mcp.types as types
    from mcp.server.lowlevel import Server

SERVER_NAME = "docket"
PATH = "/mcp"
# the scope key the handler puts the verified caller under
PRINCIPAL_SCOPE_KEY = "docket.principal"


# --- tool inputs ---------------------------------------------------------------------------------


class ListSourcesRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class GetDocumentRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    document_id: str = Field(pattern=r"^doc_[0-9a-f]{24}$", description="as search returns it")
    page: int = Field(default=1, ge=1, le=100_000, description="1-based page of the text")
    page_chunks: int = Field(default=20, ge=1, le=100, description="chunks per page")


class DocumentText(BaseModel):
    """``get_document``'s result: the record, and one page of its text in reading order."""

    document: DocumentView
    page: int
    pages: int
    text: str = Field(description="the page's chunks, in order, separated by blank lines")
    chunk_ids: list[str]


class SourceList(BaseModel):
    documents: list[DocumentRecord]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    request: type[BaseModel]
    response: type[BaseModel]
    run: Callable[[Principal, Any], BaseModel]


# --- services (the REST API's, built once per container) ------------------------------------------


def _queries() -> Any:
    from docket.query import get_query_service

    return get_query_service()


def _documents() -> Any:
    from docket.api.app import documents

    return documents()


@cache
def _chunks() -> Any:
    from docket.config import get_settings
    from docket.store.dynamodb import DynamoChunkStore

    return DynamoChunkStore(get_settings().chunks_table)


def _search(principal: Principal, request: QueryRequest) -> SearchResponse:
    return _queries().search(principal, request)  # type: ignore[no-any-return]


def _ask(principal: Principal, request: QueryRequest) -> QueryResponse:
    return _queries().ask(principal, request)  # type: ignore[no-any-return]


def _list_sources(principal: Principal, _: ListSourcesRequest) -> SourceList:
    return SourceList(documents=_documents().list(principal))


def _get_document(principal: Principal, request: GetDocumentRequest) -> DocumentText:
    view = _documents().view(principal, request.document_id)  # the ACL check: 404 otherwise
    chunks = sorted(
        _chunks().list_for_document(principal.tenant, request.document_id),
        key=lambda c: c.ordinal,
    )
    size = request.page_chunks
    pages = max(1, -(-len(chunks) // size))
    if request.page > pages:
        raise errors.InvalidRequest(f"page {request.page} is past the last page ({pages})")
    part = chunks[(request.page - 1) * size : request.page * size]
    return DocumentText(
        document=view,
        page=request.page,
        pages=pages,
        text="\n\n".join(c.text for c in part),
        chunk_ids=[c.chunk_id for c in part],
    )


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "search",
        "Search the knowledge base",
        "Find the passages of the caller's documents that best match a question (BM25 and "
        "vector retrieval, fused and reranked as POST /query does), best first, each with its "
        "document id, source, pages, score and text. No answer is written: read the passages.",
        QueryRequest,
        SearchResponse,
        _search,
    ),
    ToolSpec(
        "ask",
        "Ask the knowledge base",
        "Answer a question from the caller's documents, citing the exact passages (and pages) "
        "used; found is false, with 'Not found in the knowledge base.', when they do not answer "
        "it. Same response as POST /query.",
        QueryRequest,
        QueryResponse,
        _ask,
    ),
    ToolSpec(
        "list_sources",
        "List the documents",
        "The documents the caller may read: id, source name, title, status, ACL groups.",
        ListSourcesRequest,
        SourceList,
        _list_sources,
    ),
    ToolSpec(
        "get_document",
        "Read a document",
        "A document's record and its text, one page of chunks at a time (page, pages).",
        GetDocumentRequest,
        DocumentText,
        _get_document,
    ),
)


def tool_definitions() -> list[types.Tool]:
    """The tools as MCP lists them: input and output schemas are the pydantic models'."""
    import mcp.types as types

    return [
        types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            inputSchema=spec.request.model_json_schema(),
            outputSchema=spec.response.model_json_schema(mode="serialization"),
        )
        for spec in TOOLS
    ]


def call_tool(principal: Principal, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
    """Run one tool as ``principal``; a caller's mistake is a tool error the model can read."""
    import mcp.types as types

    spec = next((s for s in TOOLS if s.name == name), None)
    try:
        if spec is None:
            raise errors.InvalidRequest(f"unknown tool {name!r}")
        try:
            request = spec.request.model_validate(arguments)
        except ValidationError as exc:
            raise errors.InvalidRequest(_validation_message(exc)) from exc
        result = spec.run(principal, request).model_dump(mode="json")
    except errors.DocketError as exc:
        body = {"error": {"code": exc.code, "message": str(exc)}}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(body))], isError=True
        )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(result))],
        structuredContent=result,
        isError=False,
    )


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "arguments"
    return f"{where}: {first.get('msg', 'invalid')}"


# --- the SDK server and the Lambda bridge ---------------------------------------------------------


@cache
def server() -> Server:
    from mcp.server.lowlevel import Server

    from docket import __version__

    srv: Server = Server(
        SERVER_NAME,
        version=__version__,
        instructions="docket's knowledge base: search or ask over the documents the caller may "
        "read, list them, and read one. Answers cite their passages.",
    )

    @srv.list_tools()  # type: ignore[untyped-decorator,no-untyped-call]
    async def _list() -> list[types.Tool]:
        return tool_definitions()

    # arguments are validated by the pydantic models (strict), with messages that name the field
    @srv.call_tool(validate_input=False)  # type: ignore[untyped-decorator]
    async def _call(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        request = srv.request_context.request
        principal = request.scope[PRINCIPAL_SCOPE_KEY] if request is not None else None
        if not isinstance(principal, Principal):
            raise errors.Unauthorized("no verified caller")
        return call_tool(principal, name, arguments)

    return srv


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """An API Gateway HTTP API (v2) event for ``/mcp`` → the SDK's streamable HTTP app, run
    in-process for this one request → the Lambda proxy response."""
    import anyio

    try:
        principal = principal_from_event(event)
    except errors.Unauthorized as exc:
        return unauthorized(str(exc))
    http = event.get("requestContext", {}).get("http", {})
    refused = _admit(principal, str(http.get("method", "POST")))
    if refused is not None:
        return refused
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    try:
        json.loads(body)
    except RecursionError:  # the SDK's parser would answer 500
        return json_rpc_error(400, PARSE_ERROR, "Parse error: the body nests too deeply")
    except ValueError:
        pass  # the SDK answers a parse error itself
    headers = [
        (k.lower().encode("latin-1"), str(v).encode("latin-1"))
        for k, v in (event.get("headers") or {}).items()
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": http.get("method", "POST"),
        "scheme": "https",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": (event.get("rawQueryString") or "").encode(),
        "root_path": "",
        "headers": headers,
        "client": (http.get("sourceIp", ""), 0),
        "server": ("docket", 443),
        PRINCIPAL_SCOPE_KEY: principal,
    }
    status, out_headers, chunks = anyio.run(_serve, scope, body)
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": b"".join(chunks).decode("utf-8"),
    }


# JSON-RPC's range for implementation-defined server errors; the SDK has no code for auth
UNAUTHORIZED_CODE = -32001
FORBIDDEN_CODE = -32003
RATE_LIMITED_CODE = -32029


def _admit(principal: Principal, method: str) -> dict[str, Any] | None:
    """None when the caller may send this request; else the JSON-RPC error to answer: 403 for an
    API key without the ``query`` scope, 429 (with Retry-After) over the /mcp rate limit."""
    from docket.access import factory
    from docket.auth import require_scope

    try:
        require_scope(principal, "query", to="the knowledge base's MCP server")
        if method == "POST":  # each JSON-RPC message is one request
            factory.limiter().charge(principal, "mcp")
    except errors.Forbidden as exc:
        return json_rpc_error(403, FORBIDDEN_CODE, exc.message)
    except errors.RateLimited as exc:
        return json_rpc_error(
            429, RATE_LIMITED_CODE, exc.message, {"retry-after": str(exc.retry_after)}
        )
    return None


PARSE_ERROR = -32700


def json_rpc_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A Lambda proxy response holding a JSON-RPC error with no id (the MCP error shape)."""
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", **(headers or {})},
        "body": json.dumps(body),
    }


def unauthorized(message: str = "Unauthorized") -> dict[str, Any]:
    """401 in the MCP error shape, with the challenge header."""
    return json_rpc_error(401, UNAUTHORIZED_CODE, message, {"www-authenticate": "Bearer"})


async def _serve(scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, str], list[bytes]]:
    import anyio
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    manager = StreamableHTTPSessionManager(
        app=server(), json_response=True, stateless=True, security_settings=None
    )
    sent = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the client stays connected until the response is out
            await anyio.sleep_forever()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", []):
                headers[key.decode("latin-1")] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    return status, headers, chunks
