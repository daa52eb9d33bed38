"""Domain models shared by every flow (pydantic v2). Constrained types are declared once here."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_DOC_ID_RE = re.compile(r"^doc_[0-9a-f]{24}$")


def _check(pattern: re.Pattern[str], what: str):  # type: ignore[no-untyped-def]
    def validate(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"invalid {what}: {value!r}")
        return value

    return validate


def _pattern(regex: re.Pattern[str]) -> WithJsonSchema:
    """The rule in the published schema too (clients and fuzzers see what is accepted)."""
    return WithJsonSchema({"type": "string", "pattern": regex.pattern})


def _json_integer(value: object) -> object:
    """An integer as JSON Schema means it: 28 or 28.0, never true or "28"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# For request models that are strict (no coercion) but take JSON's integral floats. With bounds in
# a union, write ``Annotated[int, Field(ge=...), JSON_INTEGER] | None``: the bounds must come
# first to reach the published schema as minimum/maximum.
JSON_INTEGER = BeforeValidator(_json_integer)
JsonInt = Annotated[int, JSON_INTEGER]

TenantId = Annotated[str, AfterValidator(_check(_TENANT_RE, "tenant id")), _pattern(_TENANT_RE)]
GroupName = Annotated[str, AfterValidator(_check(_GROUP_RE, "group name")), _pattern(_GROUP_RE)]
DocumentId = Annotated[str, AfterValidator(_check(_DOC_ID_RE, "document id")), _pattern(_DOC_ID_RE)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def document_id_for(tenant: str, source: str) -> str:
    """A document's id derives from (tenant, source), so re-ingesting the same source updates it."""
    digest = hashlib.sha256(f"{tenant}\x00{source}".encode()).hexdigest()
    return f"doc_{digest[:24]}"


def chunk_id_for(document_id: str, text: str) -> str:
    """A chunk's id derives from its content, so unchanged chunks keep their id across versions."""
    digest = hashlib.sha256(f"{document_id}\x00{text}".encode()).hexdigest()
    return f"chk_{digest[:32]}"


def content_hash(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class DocumentStatus(StrEnum):
    PENDING = "pending"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETING = "deleting"


class Principal(BaseModel):
    """The verified caller: tenant and groups come only from a verified token."""

    model_config = ConfigDict(frozen=True)

    subject: str
    tenant: TenantId
    groups: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    # set when the caller is an API key (docket.access.keys): it acts only within its scopes
    key_id: str | None = None


# --- extraction ------------------------------------------------------------------------------------


class Page(BaseModel):
    number: int = Field(ge=1)
    text: str


class ExtractedDocument(BaseModel):
    """Clean text of a document, page by page (formats without pages have one page)."""

    format: str
    title: str | None = None
    pages: list[Page]
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.pages)


# --- documents and chunks ----------------------------------------------------------------------------


class DocumentRecord(BaseModel):
    tenant: TenantId
    document_id: DocumentId
    source: str
    s3_key: str | None = None
    title: str | None = None
    format: str | None = None
    acl_groups: list[str] = Field(default_factory=list)
    status: DocumentStatus = DocumentStatus.PENDING
    reason: str | None = None
    reason_code: str | None = None
    content_hash: str | None = None
    indexed_hash: str | None = None
    size_bytes: int | None = None
    page_count: int | None = None
    chunk_count: int | None = None
    text_key: str | None = None
    embedding_model: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DocumentView(DocumentRecord):
    """A document as ``GET /documents/{id}`` shows it: the record, and while it is pending, how
    many of its chunks the index already holds (progress on a long file)."""

    indexed_chunks: int | None = Field(
        default=None, description="chunks indexed so far, while the document is pending"
    )


class ChunkDraft(BaseModel):
    """A chunk as the chunker produces it, before it is tied to a document version."""

    text: str
    ordinal: int = Field(ge=0)
    page_start: int = Field(ge=1)
    page_end: int = Field(ge=1)
    section: str | None = None
    token_count: int = Field(ge=0)


class ChunkRecord(BaseModel):
    tenant: TenantId
    document_id: DocumentId
    chunk_id: str
    ordinal: int
    text: str
    page_start: int
    page_end: int
    section: str | None = None
    token_count: int = 0
    source: str
    title: str | None = None
    acl_groups: list[str] = Field(default_factory=list)
    content_hash: str | None = None
    context: str | None = Field(
        default=None,
        description="an LLM-written sentence situating the chunk in its document "
        "(contextual_chunks='llm'); embedded and BM25-indexed with the header, not in the chunk id",
    )


class EmbeddingModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    dimension: int

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"


# --- search -----------------------------------------------------------------------------------------


class SearchFilter(BaseModel):
    """Applied inside every retriever before ranking, never after top-k.

    A chunk matches when its tenant equals ``tenant`` and either it has no ACL groups
    (visible to the whole tenant) or it shares at least one group with ``groups``.
    """

    model_config = ConfigDict(frozen=True)

    tenant: str
    groups: frozenset[str] = frozenset()
    document_ids: frozenset[str] | None = None
    sources: frozenset[str] | None = None


class SearchHit(BaseModel):
    chunk: ChunkRecord
    score: float
    retriever: str
    rank: int = 0
    ranks: dict[str, int] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)


# --- answers -----------------------------------------------------------------------------------------


class Citation(BaseModel):
    """Where a quoted span comes from: [n] in the answer text refers to citations[n-1]."""

    number: int = Field(ge=1)
    document_id: str
    chunk_id: str
    source: str
    title: str | None = None
    page_start: int
    page_end: int
    quote: str
    source_uri: str | None = Field(
        default=None, description="where the source document lives (s3://...), when known"
    )


class Answer(BaseModel):
    found: bool
    text: str
    citations: list[Citation] = Field(default_factory=list)
    confidence: float = 0.0
    answerer: str = "extractive"
    verified: bool = Field(
        default=False,
        description="a verifier checked every sentence of the text against the sources it cites "
        "and found each supported (answers that quote verbatim are not checked)",
    )
    unsupported_claims: list[str] = Field(
        default_factory=list,
        description="sentences the verifier could not support: kept in the text but flagged, or, "
        "with strict citations, removed from it",
    )
    degraded: str | None = Field(
        default=None,
        description="why this is less than the configured answerer's answer: 'provider_error' (the "
        "model failed: another answerer answered, or the text stops where it failed) or "
        "'max_tokens' (the model hit its output limit)",
    )
    usage: dict[str, int] = Field(
        default_factory=dict, description="model tokens: input_tokens, output_tokens, ..."
    )


NOT_FOUND_TEXT = "Not found in the knowledge base."
