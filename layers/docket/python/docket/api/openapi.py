"""The served OpenAPI document, made true: every status a route answers is declared, with the body
it carries.

Powertools documents a route's 200 and its 422 from the signature alone. Routes here also answer
201/202, and every error goes out as ``{"error": {"code", "message"}}`` (``ErrorBody``): 400
unreadable JSON, 401 no or a bad token, 403 a missing scope or the four-eyes rule, 404 what the
caller may not see, 409 a conflict, 413 a file over the limit, 422 a request the schema refuses
(with ``details``), 429 throttled, 503 a dependency down. ``ROUTES`` says which route answers
which; ``document`` applies it to the generated schema.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description="where in the request: body, query, path, header")
    msg: str
    type: str


class Error(BaseModel):
    code: str = Field(description="stable, machine-readable: invalid_request, not_found, …")
    message: str
    details: list[ErrorDetail] | None = Field(
        default=None, description="per-field problems of a 422"
    )


class ErrorBody(BaseModel):
    error: Error


DESCRIPTIONS = {
    400: "The body is not valid JSON, or the request breaks a rule the schema cannot state",
    401: "No bearer token, or one that does not verify",
    403: "The token lacks the scope or role the route needs (an API key: the route's scope)",
    404: "Not found, or not visible to the caller (another tenant's, or outside its groups)",
    409: "Conflicts with the current state",
    413: "The file is over the size limit",
    422: "The request does not match the schema; details name each field",
    429: "Over a rate limit or quota of the tenant or the API key; Retry-After says when to retry",
    503: "A dependency (table, index, model) is unavailable; retry later",
}

# Every authenticated route can answer these (403: an API key without the route's scope).
_COMMON = (401, 403, 503)
_BODY = (400, 422)

# (method, path) -> (success status, extra error statuses)
ROUTES: dict[tuple[str, str], tuple[int, tuple[int, ...]]] = {
    ("post", "/documents"): (201, (*_BODY, 403, 409, 413, 429)),
    ("get", "/documents"): (200, ()),
    ("get", "/documents/{document_id}"): (200, (404, 422)),
    ("delete", "/documents/{document_id}"): (202, (404, 422)),
    ("post", "/query"): (200, (*_BODY, 409, 429)),
    ("post", "/tasks"): (202, (*_BODY, 403, 409)),
    ("get", "/tasks/{task_id}"): (200, (404, 422)),
    ("delete", "/tasks/{task_id}"): (202, (404, 422)),
    ("get", "/approvals"): (200, ()),
    ("post", "/approvals/{approval_id}/decision"): (200, (*_BODY, 403, 404, 409)),
    ("get", "/approvals/{approval_id}"): (200, (403, 404, 422)),
    ("post", "/approvals/{approval_id}"): (200, (*_BODY, 403, 404, 409)),
    ("post", "/slack/interactions"): (200, (400, 403, 404, 409)),
    ("get", "/models"): (200, ()),
    ("get", "/index/status"): (200, (403,)),
    ("post", "/index/generations"): (202, (*_BODY, 403, 409)),
    ("post", "/index/rollback"): (200, (403, 404, 409)),
    ("post", "/keys"): (201, (*_BODY, 403)),
    ("get", "/keys"): (200, (403,)),
    ("delete", "/keys/{key_id}"): (200, (403, 404, 422)),
    ("get", "/usage"): (200, ()),
    ("post", "/sync/{source}/verify"): (200, (*_BODY, 403, 404)),
    ("post", "/sync/{source}/backfill"): (202, (403, 404, 422)),
    ("get", "/sync/{source}/backfills/{run}"): (200, (403, 404, 422)),
}
PUBLIC = {("get", "/health"), ("get", "/openapi.json")}
# Routes a browser opens (the approval page): their answers, errors included, are HTML.
PAGES = {("get", "/approvals/{approval_id}"), ("post", "/approvals/{approval_id}")}


def allowed_methods(path: str) -> list[str]:
    """The methods routed for ``path`` (empty when no route matches it)."""
    import re

    methods = set()
    for method, template in (*ROUTES, *PUBLIC):
        if re.fullmatch(re.sub(r"\{[^/]+\}", "[^/]+", template), path):
            methods.add(method.upper())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def document(schema: dict[str, Any], *, max_file_bytes: int | None = None) -> dict[str, Any]:
    """``schema`` (Powertools' generated document) with every route's real statuses, and the
    deployment's own file size limit on ``size_bytes`` (a larger one is answered 413)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    size = components.get("CreateDocumentRequest", {}).get("properties", {}).get("size_bytes")
    if size is not None and max_file_bytes is not None:
        for branch in size.get("anyOf", [size]):
            if branch.get("type") == "integer":
                branch["maximum"] = max_file_bytes
    for model in (ErrorDetail, Error, ErrorBody):
        components[model.__name__] = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components[model.__name__].pop("$defs", None)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    page = {"text/html": {"schema": {"type": "string"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if (method, path) in PUBLIC:
                continue
            success, errors = ROUTES.get((method, path), (200, (400, 404, 422)))
            responses = operation.setdefault("responses", {})
            if success != 200 and "200" in responses:
                responses[str(success)] = responses.pop("200")
            responses.pop("422", None)  # Powertools' shape; ours replaces it below
            content = {**error, **page} if (method, path) in PAGES else error
            for status in sorted({*_COMMON, *errors}):
                responses[str(status)] = {"description": DESCRIPTIONS[status], "content": content}
            if (method, path) in PAGES:
                responses[str(success)].setdefault("content", {}).update(page)
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema
