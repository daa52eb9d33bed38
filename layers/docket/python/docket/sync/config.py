"""A synced table, declared: which attributes are the key, the text, the title, the tenant, the
ACL groups and the version, and which rows belong in the knowledge base at all."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Attribute = Annotated[str, Field(min_length=1, max_length=255)]
Scalar = str | int | float | bool


class SyncSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # documents of this source are named "{name}/{key}.md" within their tenant
    name: str = Field(default="tickets", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    table: str = Field(min_length=3, max_length=255)
    key: Attribute = "id"  # a string partition key, the table's only key
    title: Attribute | None = "title"
    text: tuple[Attribute, ...] = Field(default=("body",), min_length=1)
    tenant: Attribute = "tenant"
    acl: Attribute | None = "acl_groups"  # a list, a string set, or a comma-separated string
    # orders two versions of a row: this number if present, else the timestamp
    version: Attribute | None = "version"
    updated_at: Attribute | None = "updated_at"
    # only rows whose attributes equal these are in the knowledge base (e.g. status = resolved);
    # a row that stops matching leaves it
    filter: dict[Attribute, Scalar] = Field(default_factory=dict)
    # the tenants this table may speak for; a row for another one is dead-lettered (None: any)
    tenants: frozenset[str] | None = None

    def matches(self, item: dict[str, Any]) -> bool:
        return all(item.get(k) == v for k, v in self.filter.items())


_SOURCES = TypeAdapter(list[SyncSource])


def parse_sources(value: Any) -> list[SyncSource]:
    """``DOCKET_SYNC_SOURCES``: a JSON list of sources (or the list itself)."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    sources = _SOURCES.validate_python(value or [])
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError(f"sync source names must be unique: {names}")
    return sources
