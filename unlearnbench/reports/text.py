"""The leaderboard as text: GitHub Markdown (best values in bold), CSV and JSON.

Everything here is presentation of a :class:`~unlearnbench.reports.board.Leaderboard`
built by :mod:`unlearnbench.reports.board`; nothing is computed again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
from tabulate import tabulate

from unlearnbench.reports.board import (
    DAGGER,
    FLAGS,
    GROUP_KEYS,
    KEYS,
    Leaderboard,
    best_cells,
    format_value,
    gap_columns,
    gap_legend,
    legend,
    metric_header,
    notes,
)


def _row_key(row: pd.Series) -> list[Any]:
    return [row[k] for k in KEYS] + [row["seeds"], row[FLAGS]]


def cell_text(
    board: Leaderboard,
    index: int,
    column: str,
    marks: set[tuple[int, str]],
    hidden: set[tuple[int, str]],
) -> str:
    """One formatted value: bold when best, a dagger when uninformative."""
    row = board.table.loc[index]
    text = format_value(row[column], row.get(f"{column}_ci95"))
    if (index, column) in hidden and text != "–":
        return f"{text} {DAGGER}"
    return f"**{text}**" if (index, column) in marks else text


def markdown_tables(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the main table (best values in bold)."""
    marks, hidden = best_cells(board), board.hidden_cells()
    headers = [*KEYS, "seeds", FLAGS] + [metric_header(board, m) for m in board.metrics]
    body = []
    for index, row in board.table.iterrows():
        cells = [str(v) for v in _row_key(row)]
        cells += [cell_text(board, index, m, marks, hidden) for m in board.metrics]
        body.append(cells)
    return headers, body


def to_markdown(
    board: Leaderboard,
    title: str = "Leaderboard",
    *,
    gaps: bool = True,
    plots: Mapping[str, str] | None = None,
) -> str:
    """The leaderboard as GitHub Markdown; ``plots`` maps captions to image paths."""
    headers, body = markdown_tables(board)
    lines = [f"# {title}", "", legend(board), ""]
    lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if board.uninformative:
        lines += [*notes(board), ""]
    columns = gap_columns(board)
    if gaps and columns and not board.table.empty:
        marks, hidden = best_cells(board), board.hidden_cells()
        gap_body = []
        for index, row in board.table.iterrows():
            cells = [str(v) for v in _row_key(row)]
            cells += [cell_text(board, index, c, marks, hidden) for c in columns]
            gap_body.append(cells)
        lines += [f"## Gap to {board.reference}", "", gap_legend(board), ""]
        lines += [
            tabulate(
                gap_body,
                headers=[*KEYS, "seeds", FLAGS, *columns],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
        ]
    if plots:
        lines += ["## Plots", ""]
        for caption, path in plots.items():
            lines += [f"![{caption}]({path})", ""]
    if board.failures:
        lines += [f"## Failed cells ({len(board.failures)})", ""]
        for failure in board.failures:
            last = str(failure["error"] or "").strip().splitlines()[-1:] or [""]
            where = "/".join(str(failure[k]) for k in KEYS)
            lines.append(f"- {where} seed {failure['seed']}: {last[0]}")
        lines.append("")
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    return board.table.to_csv(index=False)


def to_json(board: Leaderboard) -> str:
    rows = json.loads(board.table.to_json(orient="records"))
    return json.dumps(
        {
            "reference": board.reference,
            "original": board.original,
            "metrics": [
                {
                    "name": m,
                    "direction": board.directions[m],
                    "unit": board.units[m],
                    "role": board.role(m),
                }
                for m in board.metrics
            ],
            "gap_columns": gap_columns(board),
            "avg_gap_metrics": board.avg_gap_metrics,
            "collapse_margin": board.collapse_margin,
            "uninformative": [
                {
                    "group": dict(zip(GROUP_KEYS, item.group, strict=True)),
                    "evaluator": item.evaluator,
                    "strength_metric": item.strength_metric,
                    "strength": item.strength,
                    "threshold": item.threshold,
                    "metrics": list(item.metrics),
                }
                for item in board.uninformative
            ],
            "rows": rows,
            "failures": board.failures,
        },
        indent=2,
        default=str,
    )
