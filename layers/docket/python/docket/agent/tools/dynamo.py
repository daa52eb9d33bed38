"""``query_table``: one PartiQL SELECT on an allow-listed DynamoDB table.

Rows are the caller's only: each row's tenant attribute must be the caller's tenant (and its
groups attribute, when it lists groups, must share one of the caller's), unless the table is one
every tenant may read (``query_tables_shared``). The filter runs on the returned rows, so the
statement cannot widen it.

The statement is tokenised (strings, quoted names and comments understood) rather than matched
with a regex, so ``SELECT ...; DELETE ...``, a keyword hidden behind a comment, or a write
disguised inside a string cannot pass: exactly one statement, starting with SELECT, no write
keyword anywhere outside a string, exactly one FROM naming a table in ``settings.query_tables``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docket.agent.models import RiskLevel
from docket.agent.tools.base import Tool, ToolContext, ToolOutput
from docket.agent.tools.services import TableValue, ToolServices, fit_json
from docket.errors import DestinationNotAllowed

_WORD = re.compile(r"[A-Za-z0-9_$]+")
_QUOTES = {"'": "string", '"': "name", "`": "ion"}
# anything that writes or is not part of a single SELECT (EXISTS is a transaction condition)
_REFUSED_WORDS = {
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "UPSERT",
    "REMOVE",
    "SET",
    "EXISTS",
    "CREATE",
    "DROP",
    "ALTER",
}
_AFTER_TABLE = {"WHERE", "ORDER"}


@dataclass(frozen=True)
class SelectTarget:
    table: str
    index: str | None = None


def _tokens(statement: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: word, name ("quoted"), string ('quoted'), ion (`...`), punct."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(statement)
    while i < n:
        c = statement[i]
        if c.isspace():
            i += 1
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            i = n if end < 0 else end + 1
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated /* comment")
            i = end + 2
        elif c in _QUOTES:
            j, text = i + 1, []
            while True:
                if j >= n:
                    raise ValueError(f"unterminated {c}quoted{c} text")
                if statement[j] == c:
                    if statement.startswith(c * 2, j):  # a doubled quote is the quote itself
                        text.append(c)
                        j += 2
                        continue
                    break
                text.append(statement[j])
                j += 1
            out.append((_QUOTES[c], "".join(text)))
            i = j + 1
        elif m := _WORD.match(statement, i):
            out.append(("word", m.group()))
            i = m.end()
        else:
            out.append(("punct", c))
            i += 1
    return out


def parse_select(statement: str) -> SelectTarget:
    """The table (and index) one SELECT reads, or ``ValueError`` saying why it is refused."""
    tokens = _tokens(statement)
    if tokens and tokens[-1] == ("punct", ";"):
        tokens = tokens[:-1]
    if not tokens:
        raise ValueError("the statement is empty")
    if ("punct", ";") in tokens:
        raise ValueError("only one statement is allowed")
    if tokens[0][0] != "word" or tokens[0][1].upper() != "SELECT":
        raise ValueError("only SELECT statements are allowed")
    words = {text.upper() for kind, text in tokens if kind == "word"}
    if refused := sorted(words & _REFUSED_WORDS):
        raise ValueError(f"only a plain SELECT is allowed (found {', '.join(refused)})")
    froms = [
        i for i, (kind, text) in enumerate(tokens) if kind == "word" and text.upper() == "FROM"
    ]
    if len(froms) != 1:
        raise ValueError("the statement must read exactly one table (one FROM)")
    rest = tokens[froms[0] + 1 :]
    if not rest or rest[0][0] not in ("word", "name"):
        raise ValueError("FROM must be followed by a table name")
    index, after = None, rest[1:]
    if len(rest) >= 3 and rest[1] == ("punct", ".") and rest[2][0] in ("word", "name"):
        index, after = rest[2][1], rest[3:]
    if after and (after[0][0] != "word" or after[0][1].upper() not in _AFTER_TABLE):
        raise ValueError("the statement must read exactly one table (nothing after it but WHERE)")
    return SelectTarget(table=rest[0][1], index=index)


class QueryTableInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    statement: str = Field(
        min_length=1,
        max_length=8192,
        description='one PartiQL SELECT, e.g. SELECT * FROM "orders" WHERE pk = ?',
    )
    parameters: list[str | int | float | bool] = Field(
        default_factory=list, max_length=50, description="values for the ? placeholders, in order"
    )
    limit: int = Field(default=50, ge=1, le=100, description="at most this many rows")

    @field_validator("statement")
    @classmethod
    def _one_select(cls, value: str) -> str:
        parse_select(value)
        return value

    @field_validator("parameters")
    @classmethod
    def _finite(cls, value: list[TableValue]) -> list[TableValue]:
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            raise ValueError("numbers must be finite")
        return value


class QueryTable(Tool[QueryTableInput]):
    name = "query_table"
    description = (
        "Read rows from an allow-listed DynamoDB table with one PartiQL SELECT statement "
        "(use ? placeholders and pass the values in parameters). Returns the rows as JSON. "
        "Only SELECT is possible; prefer a WHERE on the partition key, which reads far less "
        "than a scan."
    )
    Input = QueryTableInput

    def risk(self, args: QueryTableInput) -> RiskLevel:
        return "low"

    def run(self, ctx: ToolContext, args: QueryTableInput) -> ToolOutput:
        services: ToolServices = ctx.services
        target = parse_select(args.statement)
        allowed = services.settings.query_tables
        if target.table not in allowed:
            raise DestinationNotAllowed(
                f"table {target.table!r} is not open to queries; the tables are: "
                f"{', '.join(sorted(allowed)) or '(none)'}"
            )
        found = services.tables.select(args.statement, args.parameters, args.limit)
        rows, withheld = found.rows, 0
        if target.table not in services.settings.query_tables_shared:
            rows = [r for r in found.rows if _caller_may_read(r, ctx, services.settings)]
            withheld = len(found.rows) - len(rows)
        payload: dict[str, Any] = {
            "table": target.table,
            "index": target.index,
            "count": len(rows),
            "rows": rows,
            "more": found.more,
        }
        if withheld and not rows:
            # say how to ask, without saying what was withheld
            payload["note"] = (
                f"rows are limited to your tenant: select the {tenant_attr(services)!r} "
                "attribute (e.g. SELECT *) and filter on it"
            )
        content = fit_json(payload, "rows", services.settings.tool_result_max_chars)
        return ToolOutput(
            content=content,
            data={"table": target.table, "count": len(rows), "more": found.more},
        )


def tenant_attr(services: ToolServices) -> str:
    return services.settings.query_table_tenant_attribute


def _caller_may_read(row: dict[str, Any], ctx: ToolContext, settings: Any) -> bool:
    """The query path's rule on a row: the caller's tenant, and a shared group when the row
    names groups. A row that does not carry its tenant is not the caller's."""
    if row.get(settings.query_table_tenant_attribute) != ctx.principal.tenant:
        return False
    attr = settings.query_table_groups_attribute
    groups = row.get(attr) if attr else None
    if not groups:
        return True
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.split(",")]
    if not isinstance(groups, list | set | tuple | frozenset):
        return False
    return bool(ctx.principal.groups & {str(g) for g in groups})
