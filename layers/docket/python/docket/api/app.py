"""Routes of the HTTP API. The api function's handler resolves events with ``app``.

Every route needs a verified principal (claims put on the event by the JWT authorizer); errors are
typed in docket.errors and mapped to HTTP status here, once (in an event stream that has begun,
to an ``error`` event).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path as PathParam
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from docket import errors
from docket.api import openapi as openapi_doc
from docket.api import sse, streaming
from docket.auth import principal_from_event, require_scope
from docket.config import get_settings
from docket.models import JSON_INTEGER, DocumentRecord, DocumentView, GroupName, Principal
from docket.observability import logger
from docket.query import QueryDone, QueryEvent, QueryRequest, QueryResponse

app = APIGatewayHttpResolver(enable_validation=True)

_STATUS: dict[type[errors.DocketError], int] = {
    errors.InvalidRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.FileTooLarge: 413,
    errors.ModelMismatch: 409,
    errors.IndexUnavailable: 503,
    errors.EmbeddingUnavailable: 503,
    errors.StoreUnavailable: 503,
    errors.RateLimited: 429,
}


def _error(status: int, code: str, message: str) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message}}),
    )


def _status(exc: errors.DocketError) -> int:
    """The HTTP status of a domain error; a server-side one is logged with its stack trace."""
    status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), 500)
    if status >= 500:
        logger.exception("request failed", code=exc.code)
    return status


@app.exception_handler(errors.DocketError)
def _docket_error(exc: errors.DocketError) -> Response[Any]:
    response = _error(_status(exc), exc.code, exc.message)
    if isinstance(exc, errors.RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@app.exception_handler(json.JSONDecodeError)
def _bad_json(exc: json.JSONDecodeError) -> Response[Any]:
    return _error(400, "invalid_json", f"request body is not valid JSON: {exc.msg}")


@app.exception_handler(RequestValidationError)
def _invalid(exc: RequestValidationError) -> Response[Any]:
    """422 in the one error shape (``docket.api.openapi.ErrorBody``), each field named."""
    details = [
        {
            "loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
            "msg": str(e.get("msg") or e.get("type", "invalid")),
            "type": str(e.get("type", "value_error")),
        }
        for e in exc.errors()
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    body = {
        "error": {
            "code": "invalid_request",
            "message": f"{where}: {first['msg']}" if where else str(first["msg"]),
            "details": details,
        }
    }
    return Response(
        status_code=422, content_type=content_types.APPLICATION_JSON, body=json.dumps(body)
    )


@app.exception_handler(RecursionError)
def _too_deep(exc: RecursionError) -> Response[Any]:
    # a body of [[[[...]]]] a hundred thousand deep exhausts the JSON parser's recursion
    return _error(400, "invalid_json", "request body nests too deeply")


def principal(scope: str, to: str) -> Principal:
    """The verified caller; an API key must hold ``scope`` (``to``: what the route does)."""
    return require_scope(principal_from_event(app.current_event.raw_event), scope, to=to)


# --- models ------------------------------------------------------------------------------------------


class CreateDocumentRequest(BaseModel):
    # no coercion: "rerank": 0 or "size_bytes": false is a client bug, not a value
    model_config = ConfigDict(strict=True)

    source: str = Field(
        min_length=1,
        max_length=900,
        # no control characters, and more than slashes, dots and spaces; ".." segments are
        # refused with 400 (a rule a JSON Schema pattern cannot state without lookarounds)
        pattern=r"^[^\x00-\x1f]*[^\x00-\x1f\s/.][^\x00-\x1f]*$",
        description="file name or path within the tenant; no control characters or '..'",
    )
    acl_groups: list[GroupName] = Field(default_factory=list, max_length=50)
    size_bytes: Annotated[int, Field(ge=0), JSON_INTEGER] | None = None


class CreateDocumentResponse(BaseModel):
    document_id: str
    key: str
    upload_url: str
    upload_method: str = "PUT"
    expires_in: int
    document: DocumentRecord


class DocumentList(BaseModel):
    documents: list[DocumentRecord]


DocId = Annotated[str, PathParam(pattern=r"^doc_[0-9a-f]{24}$")]


class StreamError(BaseModel):
    """The ``error`` event's data: a failure after the stream began, when the status is sent."""

    code: str
    message: str


QUERY_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {
        "description": "The answer with its citations: JSON, or Server-Sent Events when the "
        "request accepts text/event-stream",
        "content": {
            content_types.APPLICATION_JSON: {"model": QueryResponse},
            sse.MEDIA_TYPE: {
                "schema": {
                    "type": "string",
                    "description": "events: retrieval, delta (text, unit, citations)..., then "
                    "done (a QueryResponse) or error (code, message)",
                }
            },
        },
    }
}


# --- services ----------------------------------------------------------------------------------------


@cache
def documents() -> Any:
    from docket.documents import DocumentService, S3UploadSigner
    from docket.generations.live import write_indexes
    from docket.store.dynamodb import DynamoDocumentStore
    from docket.store.s3 import S3BlobStore

    settings = get_settings()
    return DocumentService(
        settings,
        DynamoDocumentStore(settings.documents_table),
        S3BlobStore(),
        S3UploadSigner(settings.s3_public_endpoint),
        indexes=(lambda: write_indexes(settings)) if settings.generations_table else None,
    )


def limiter() -> Any:
    from docket.access import factory

    return factory.limiter()


def queries() -> Any:
    from docket.query import get_query_service

    return get_query_service()


# --- routes ------------------------------------------------------------------------------------------


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/documents")
def create_document(body: CreateDocumentRequest) -> Response[CreateDocumentResponse]:
    caller = principal("ingest", "uploading documents")
    settings = get_settings()
    if body.size_bytes is not None and body.size_bytes > settings.max_file_bytes:
        from docket.extract.core import human_size  # the error path only: light cold starts

        raise errors.FileTooLarge(
            f"file is {human_size(body.size_bytes)}, over the "
            f"{human_size(settings.max_file_bytes)} limit"
        )
    # the day's upload quota: the declared size (the upload URL then takes exactly that many
    # bytes), or the most a file may be when the size is not declared
    try:
        declared = settings.max_file_bytes if body.size_bytes is None else body.size_bytes
        limiter().charge(caller, "ingest_bytes", float(declared))
    except (errors.RateLimited, errors.FileTooLarge) as exc:
        if body.size_bytes is None:  # say why a small file was counted as a large one
            exc.message += (
                f"; an upload without size_bytes counts as {settings.max_file_bytes} bytes, "
                "the most a file may be: declare its size"
            )
        raise
    doc, url = documents().create_upload(
        caller, body.source, list(body.acl_groups), size_bytes=body.size_bytes
    )
    out = CreateDocumentResponse(
        document_id=doc.document_id,
        key=doc.s3_key or "",
        upload_url=url,
        expires_in=settings.upload_url_ttl_seconds,
        document=doc,
    )
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=out)


@app.get("/documents")
def list_documents() -> DocumentList:
    return DocumentList(documents=documents().list(principal("query", "listing documents")))


@app.get("/documents/<document_id>")
def get_document(document_id: DocId) -> DocumentView:
    caller = principal("query", "reading documents")
    return documents().view(caller, document_id)  # type: ignore[no-any-return]


@app.delete("/documents/<document_id>")
def delete_document(document_id: DocId) -> Response[DocumentRecord]:
    doc = documents().delete(principal("ingest", "deleting documents"), document_id)
    return Response(status_code=202, content_type=content_types.APPLICATION_JSON, body=doc)


@app.post("/query", responses=QUERY_RESPONSES)
def query(body: QueryRequest) -> Response[QueryResponse | str]:
    """The answer with citations, as JSON or, for ``Accept: text/event-stream``, as events.

    Events: ``retrieval`` (the chunks, retrieval timings), ``delta``s whose texts concatenate to
    the answer, then ``done`` (the QueryResponse), or ``error`` once the stream has begun.
    Retrieval runs before the first byte, so its errors keep their JSON responses and statuses,
    as validation (422) and auth (401) do.

    On AWS the events come in one body: API Gateway HTTP API forwards only whole Lambda responses
    (and Python managed runtimes cannot stream one), so the route buffers them; it is still a
    valid event stream, parsed the same way. The local gateway offers a live response
    (docket.api.streaming) and sends each event as it is produced. Streaming on AWS would take a
    Function URL with Lambda response streaming (Lambda Web Adapter): see docs/decisions.md.
    """
    caller = principal("query", "asking questions")
    limiter().charge(caller, "query")
    if not sse.accepts(app.current_event.headers.get("accept")):
        answer = queries().ask(caller, body)
        return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=answer)
    events = queries().stream(caller, body)
    first = next(events)  # retrieval runs here: its errors are still plain error responses
    return _event_stream(_query_events(first, events))


def _query_events(first: QueryEvent, rest: Iterator[QueryEvent]) -> Generator[str, None, None]:
    """The events as SSE text; a failure after the first becomes an ``error`` event, the last."""
    yield _sse(first)
    try:
        for event in rest:
            yield _sse(event)
    except errors.DocketError as exc:
        _status(exc)  # logged if server-side, as a response would be
        yield _sse_error(StreamError(code=exc.code, message=exc.message))
    except Exception:
        logger.exception("query stream failed")
        yield _sse_error(StreamError(code="internal_error", message="internal error"))


def _sse(event: QueryEvent) -> str:
    if isinstance(event, QueryDone):
        data = event.response.model_dump_json()
    else:
        data = event.model_dump_json(exclude={"type"})
    return sse.encode(sse.ServerSentEvent(event=event.type, data=data))


def _sse_error(error: StreamError) -> str:
    return sse.encode(sse.ServerSentEvent(event="error", data=error.model_dump_json()))


def _event_stream(chunks: Generator[str, None, None]) -> Response[QueryResponse | str]:
    """Writes the events to the live response if the invoker offered one, else returns them all."""
    headers = {"Cache-Control": "no-cache"}
    live = streaming.live_response()
    if live is None:
        body = "".join(chunks)
        return Response(status_code=200, content_type=sse.MEDIA_TYPE, body=body, headers=headers)
    try:
        live.start(200, {"Content-Type": sse.MEDIA_TYPE, **headers})
        for chunk in chunks:
            if not live.write(chunk.encode()):
                logger.info("client left the event stream")
                break
    finally:
        chunks.close()
    return Response(status_code=200, content_type=sse.MEDIA_TYPE, body="", headers=headers)


@app.not_found
def _no_route(_: Exception) -> Response[Any]:
    """405 with ``Allow`` for a path that exists under other methods; 404 otherwise."""
    event = app.current_event
    allowed = openapi_doc.allowed_methods(event.path)
    if allowed:
        response = _error(405, "method_not_allowed", f"{event.http_method} is not allowed here")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return _error(404, "not_found", f"no route {event.http_method} {event.path}")


def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The API function's entry: ``app.resolve``, after refusing bodies no route reads."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media = str(headers.get("content-type", "")).split(";")[0].strip().lower()
    if media.startswith("multipart/"):  # Powertools' parser raises on one without a boundary
        body = {"error": {"code": "unsupported_media_type", "message": f"{media} is not accepted"}}
        return {
            "statusCode": 415,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "body": json.dumps(body),
        }
    return app.resolve(event, context)


from docket.api import tasks as task_routes  # noqa: E402  (routes need ``app`` defined)

app.include_router(task_routes.router)


@app.get("/openapi.json")
def openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(
            openapi_doc.document(
                json.loads(app.get_openapi_json_schema(title="docket", version="0.1.0")),
                max_file_bytes=get_settings().max_file_bytes,
            )
        ),
    )


from docket.api import approvals as approval_routes  # noqa: E402  (its routes use app's handlers)
from docket.api import keys as key_routes  # noqa: E402
from docket.api import sync as sync_routes  # noqa: E402

app.include_router(key_routes.router)
app.include_router(sync_routes.router)

app.include_router(approval_routes.router)

from docket.api import generations as generation_routes  # noqa: E402

app.include_router(generation_routes.router)
