"""``make_table``: rows and columns as a Markdown or CSV table, escaped so no cell can break the
table's structure."""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from docket.agent.models import RiskLevel
from docket.agent.tools.base import Tool, ToolContext, ToolOutput
from docket.agent.tools.services import ToolServices, clip


class MakeTableInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    columns: list[str] = Field(min_length=1, max_length=20, description="the column headers")
    rows: list[list[str]] = Field(
        min_length=1, max_length=200, description="each row has exactly one cell per column"
    )
    format: Literal["markdown", "csv"] = "markdown"

    @model_validator(mode="after")
    def _rows_fit_columns(self) -> MakeTableInput:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"rows[{i}] has {len(row)} cells; every row needs exactly "
                    f"{len(self.columns)} (one per column)"
                )
        return self


def _markdown_cell(text: str) -> str:
    """Backslashes first, then pipes (GFM's escape); line breaks become <br> to stay one row."""
    flat = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return flat.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def markdown_table(title: str, columns: list[str], rows: list[list[str]]) -> str:
    lines = [f"**{' '.join(title.split())}**", ""]
    lines.append("| " + " | ".join(_markdown_cell(c) for c in columns) + " |")
    lines.append("|" + "|".join(" --- " for _ in columns) + "|")
    lines.extend("| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def csv_table(columns: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # RFC 4180 quoting: quotes doubled
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


class MakeTable(Tool[MakeTableInput]):
    name = "make_table"
    description = (
        "Format rows and columns as a table: Markdown (default, for messages and answers) or CSV "
        "(for a spreadsheet). Returns the table text, which you can then put in an e-mail or "
        "your answer. Every row must have exactly one cell per column."
    )
    Input = MakeTableInput

    def risk(self, args: MakeTableInput) -> RiskLevel:
        return "low"

    def run(self, ctx: ToolContext, args: MakeTableInput) -> ToolOutput:
        services: ToolServices = ctx.services
        if args.format == "csv":
            text = csv_table(args.columns, args.rows)
        else:
            text = markdown_table(args.title, args.columns, args.rows)
        return ToolOutput(
            content=clip(text, services.settings.tool_result_max_chars),
            data={
                "title": args.title,
                "format": args.format,
                "columns": len(args.columns),
                "rows": len(args.rows),
            },
        )
