"""Rendering evaluation results: the console table, the ``--json`` document and the bar chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from docket.evaluation.metrics import METRICS
from docket.evaluation.retrieval import ModeResult


def as_json(
    dataset: str, split: str, results: Sequence[ModeResult], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "modes": {r.mode: r.flat() for r in results},
    }
    if extra:
        document.update(extra)
    return document


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def table_rows(results: Sequence[ModeResult]) -> list[list[str]]:
    rows: list[list[str]] = []
    for r in results:
        if r.skipped:
            rows.append([r.mode, *["skipped"] * len(METRICS), "-", "-"])
            continue
        rows.append(
            [
                r.mode,
                *(f"{r.metrics[m]:.4f}" for m in METRICS),
                f"{r.latency_ms_p50:.1f} / {r.latency_ms_p95:.1f}",
                f"{r.search_ms_p50:.1f} / {r.search_ms_p95:.1f}",
            ]
        )
    return rows


HEADERS = [
    "mode",
    *METRICS,
    "latency ms p50/p95",
    "w/o query embedding",
]


def print_table(results: Sequence[ModeResult], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for header in HEADERS:
        table.add_column(header, justify="left" if header == "mode" else "right")
    for row in table_rows(results):
        table.add_row(*row)
    Console().print(table)


def plot(path: Path, results: Sequence[ModeResult], title: str) -> None:
    """Grouped bars: one group per metric, one bar per mode that ran."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ran = [r for r in results if not r.skipped]
    if not ran:
        raise ValueError("no mode ran: nothing to plot")
    width = 0.8 / len(ran)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for i, result in enumerate(ran):
        xs = [m + (i - (len(ran) - 1) / 2) * width for m in range(len(METRICS))]
        values = [result.metrics[m] for m in METRICS]
        bars = ax.bar(xs, values, width, label=result.mode)
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(METRICS)), METRICS)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    skipped = [r.mode for r in results if r.skipped]
    if skipped:
        ax.text(
            0.01,
            0.98,
            "skipped: " + ", ".join(skipped),
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            color="grey",
        )
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
