"""The ports the agent's tools use, and ``default_services`` building the real adapters.

Tools never build clients or read the environment: they reach everything through
``ctx.services`` (a ``ToolServices``), so unit tests pass fakes, and every adapter here acts only
for the principal it is given (the task owner's tenant and groups), never for a tenant that a
model's arguments name. Nothing here imports boto3 or httpx when the module loads.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from docket.agent.outbox import EffectOutbox
from docket.config import Settings
from docket.errors import (
    DocketError,
    InvalidToolArguments,
    NotFound,
    ToolError,
    ToolTimeout,
    ToolUnavailable,
)
from docket.models import DocumentRecord, DocumentStatus, Principal, SearchHit

if TYPE_CHECKING:
    import httpx

    from docket.agent.notify import Emailer, EmailMessage, SlackPoster
    from docket.documents import DocumentService

TableValue = str | int | float | bool
Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP addresses as text


# --- ports ------------------------------------------------------------------------------------


class DocumentSearch(Protocol):
    def search(self, principal: Principal, query: str, top_k: int) -> list[SearchHit]:
        """The best chunks the principal may see (tenant and ACL groups applied in the index)."""
        ...


@dataclass(frozen=True)
class DocumentText:
    document: DocumentRecord
    text: str


class DocumentAccess(Protocol):
    def read(self, principal: Principal, document_id: str) -> DocumentText: ...

    def delete(self, principal: Principal, document_id: str) -> DocumentRecord: ...


@dataclass(frozen=True)
class TableRows:
    rows: list[dict[str, Any]]
    more: bool = False  # the table had more matching rows than were returned


class TableQuery(Protocol):
    def select(self, statement: str, parameters: Sequence[TableValue], limit: int) -> TableRows: ...


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the HTTP tool checks each one before connecting)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolUnavailable(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class ToolServices:
    settings: Settings
    search: DocumentSearch
    documents: DocumentAccess
    emailer: Emailer
    slack: SlackPoster
    tables: TableQuery
    outbox: EffectOutbox
    http_transport: httpx.BaseTransport | None = None  # None: httpx's own (real network)
    resolve: Resolver = resolve_host


# --- helpers shared by the tools -----------------------------------------------------------------

REPLAYED = (
    "(Replayed: this exact call already ran; its recorded result is shown and nothing was done "
    "again.)"
)


def visible_to(principal: Principal, doc: DocumentRecord) -> bool:
    """The query path's rule (``SearchFilter``): same tenant, and no ACL or a shared group."""
    return doc.tenant == principal.tenant and (
        not doc.acl_groups or bool(principal.groups & set(doc.acl_groups))
    )


def as_tool_error(exc: DocketError) -> ToolError:
    """A service's error as a result the model can see (the loop only catches ``ToolError``)."""
    if isinstance(exc, ToolError):
        return exc
    if isinstance(exc, NotFound) or exc.permanent:
        return ToolError(exc.message)
    return ToolUnavailable(exc.message)


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[cut: {len(text) - limit} of {len(text)} characters not shown]"


def fit_json(payload: dict[str, Any], list_key: str, limit: int) -> str:
    """``payload`` as JSON of at most ``limit`` characters, dropping items of ``payload[list_key]``
    from the end (and saying so) rather than cutting the JSON mid-way."""
    items = list(payload[list_key])
    text = json.dumps(payload, ensure_ascii=False, default=str)
    kept = len(items)
    while len(text) > limit and kept > 0:
        kept -= 1
        text = json.dumps(
            {
                **payload,
                list_key: items[:kept],
                "note": f"{len(items) - kept} of {len(items)} {list_key} not shown (output limit)",
            },
            ensure_ascii=False,
            default=str,
        )
    return clip(text, limit)


# --- adapters ---------------------------------------------------------------------------------------


class QueryServiceSearch:
    """Search through the query path (``QueryService.retrieve``): the same retriever, tenant and
    ACL filter and reranker as ``POST /query``, without an answer."""

    def __init__(self, service: Any = None) -> None:
        self._service = service

    def search(self, principal: Principal, query: str, top_k: int) -> list[SearchHit]:
        from docket.query import QueryRequest, get_query_service

        service = self._service if self._service is not None else get_query_service()
        try:
            result, _timings = service.retrieve(
                principal, QueryRequest(question=query, top_k=top_k)
            )
        except DocketError as exc:
            raise as_tool_error(exc) from exc
        return list(result.hits)


class DocumentServiceAccess:
    """Reads a document's extracted text (the text bucket, as ingestion stored it) and deletes
    documents through ``DocumentService``, after the same tenant + ACL check as search."""

    def __init__(self, settings: Settings, service: DocumentService | None = None) -> None:
        self.settings = settings
        self._service = service

    @property
    def service(self) -> DocumentService:
        if self._service is None:
            from docket.documents import DocumentService, S3UploadSigner
            from docket.store.dynamodb import DynamoDocumentStore
            from docket.store.s3 import S3BlobStore

            self._service = DocumentService(
                self.settings,
                DynamoDocumentStore(self.settings.documents_table),
                S3BlobStore(),
                S3UploadSigner(self.settings.s3_public_endpoint),
            )
        return self._service

    def _visible(self, principal: Principal, document_id: str) -> DocumentRecord:
        try:
            doc = self.service.documents.get(principal.tenant, document_id)
        except DocketError as exc:
            raise as_tool_error(exc) from exc
        if doc is None or not visible_to(principal, doc):  # the same answer: no existence leak
            raise ToolError(f"document {document_id} not found")
        return doc

    def read(self, principal: Principal, document_id: str) -> DocumentText:
        from docket.models import ExtractedDocument

        doc = self._visible(principal, document_id)
        if doc.status == DocumentStatus.DELETING:
            raise ToolError(f"document {document_id} is being deleted")
        if not doc.text_key:
            raise ToolError(f"document {document_id} has no extracted text (status {doc.status})")
        try:
            raw = self.service.blobs.get(self.settings.text_bucket, doc.text_key)
        except DocketError as exc:
            raise as_tool_error(exc) from exc
        try:
            text = ExtractedDocument.model_validate_json(raw).text
        except ValueError as exc:
            raise ToolError(f"the stored text of {document_id} cannot be read: {exc}") from exc
        return DocumentText(document=doc, text=text)

    def delete(self, principal: Principal, document_id: str) -> DocumentRecord:
        self._visible(principal, document_id)
        try:
            return self.service.delete(principal, document_id)
        except DocketError as exc:
            raise as_tool_error(exc) from exc


def _attribute(value: TableValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    return {"S": value}


def _plain(value: Any) -> Any:
    """A deserialised DynamoDB value as JSON-able data: numbers stay exact where they can."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return base64.b64encode(value.value).decode()
    return value


class DynamoTableQuery:
    """PartiQL ``ExecuteStatement``. The tool checks the statement and the allow-list first;
    this only runs it and turns DynamoDB's errors into tool errors."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    def select(self, statement: str, parameters: Sequence[TableValue], limit: int) -> TableRows:
        from docket import aws
        from docket.store.dynamodb import codec

        client = self._client if self._client is not None else aws.client("dynamodb")
        request: dict[str, Any] = {"Statement": statement, "Limit": limit}
        if parameters:
            request["Parameters"] = [_attribute(p) for p in parameters]
        try:
            resp = client.execute_statement(**request)
        except Exception as exc:
            raise _table_error(exc) from exc
        # codec's deserialiser, without from_item's Decimal -> int (rows may hold fractions)
        items = resp.get("Items", [])
        rows = [{k: _plain(codec._de.deserialize(v)) for k, v in item.items()} for item in items]
        return TableRows(rows=rows[:limit], more=bool(resp.get("NextToken")) or len(rows) > limit)


def _table_error(exc: Exception) -> ToolError:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    name = type(exc).__name__
    if code == "ValidationException":
        return InvalidToolArguments(f"DynamoDB refused the statement: {exc}")
    if code == "ResourceNotFoundException":
        return ToolError(f"the table does not exist: {exc}")
    if "Timeout" in name:
        return ToolTimeout(f"DynamoDB did not answer in time: {exc}")
    if code in {"AccessDeniedException", "UnrecognizedClientException"}:
        return ToolError(f"DynamoDB refused the query: {exc}")
    return ToolUnavailable(f"DynamoDB query failed: {exc}")


class _LazyEmailer:
    """``get_emailer`` on first use, so building the services needs no SES or mail settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._impl: Emailer | None = None

    def send(self, message: EmailMessage) -> str:
        if self._impl is None:
            from docket.agent.notify import get_emailer

            self._impl = get_emailer(self.settings)
        return self._impl.send(message)


class _LazySlack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._impl: SlackPoster | None = None

    def post(self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None) -> str:
        if self._impl is None:
            from docket.agent.notify import get_slack

            self._impl = get_slack(self.settings)
        return self._impl.post(channel, text, blocks)


def default_services(settings: Settings) -> ToolServices:
    """The real adapters: the query path, the documents service, SES/Slack (or the local cloud's
    files), DynamoDB and the outbox in the agent table. Each builds its clients on first use."""
    from docket.agent.outbox import Outbox

    return ToolServices(
        settings=settings,
        search=QueryServiceSearch(),
        documents=DocumentServiceAccess(settings),
        emailer=_LazyEmailer(settings),
        slack=_LazySlack(settings),
        tables=DynamoTableQuery(),
        outbox=Outbox(settings.agent_table),
    )
