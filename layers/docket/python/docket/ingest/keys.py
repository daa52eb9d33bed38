"""Object keys: ``tenants/{tenant}/{source}``; the document id derives from (tenant, source)."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

from docket.errors import InvalidRequest
from docket.models import document_id_for

_TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_SOURCE_LEN = 900


def object_key(tenant: str, source: str) -> str:
    return f"tenants/{tenant}/{normalise_source(source)}"


def normalise_source(source: str) -> str:
    source = source.replace("\\", "/").strip().lstrip("/")
    parts = [p for p in source.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise InvalidRequest(f"invalid source name: {source!r}")
    out = "/".join(parts)
    if len(out) > MAX_SOURCE_LEN or any(ord(ch) < 32 for ch in out):
        raise InvalidRequest("source name too long or contains control characters")
    return out


def parse_key(key: str, *, url_encoded: bool = False) -> tuple[str, str, str]:
    """S3 key → (tenant, source, document_id). S3 notifications URL-encode keys."""
    if url_encoded:
        key = unquote_plus(key)
    parts = key.split("/", 2)
    if (
        len(parts) != 3
        or parts[0] != "tenants"
        or not _TENANT_RE.fullmatch(parts[1])
        or not parts[2]
    ):
        raise InvalidRequest(f"object key {key!r} is not of the form tenants/<tenant>/<source>")
    tenant, source = parts[1], parts[2]
    return tenant, source, document_id_for(tenant, source)
