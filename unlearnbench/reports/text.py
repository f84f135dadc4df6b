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
    gap_columns,
    gap_legend,
    legend,
    notes,
    variant_parameters,
)
from unlearnbench.reports.headline import (
    format_cell,
    group_title,
    headline_groups,
    headline_legend,
    raw_header,
    row_label,
)
from unlearnbench.reports.plots import TRADEOFF_CAPTION


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
    text = format_cell(board, board.table.loc[index], column)
    if (index, column) in hidden and text != "–":
        return f"{text} {DAGGER}"
    return f"**{text}**" if (index, column) in marks else text


def markdown_tables(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the main table (best values in bold)."""
    marks, hidden = best_cells(board), board.hidden_cells()
    headers = [*KEYS, "seeds", FLAGS] + [raw_header(board, m) for m in board.metrics]
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
    lines = [f"# {title}", ""]
    if not board.table.empty:
        lines += headline_markdown(board)
    if board.uninformative:
        lines += [*notes(board), ""]
    if plots and TRADEOFF_CAPTION in plots:
        lines += [f"![{TRADEOFF_CAPTION}]({plots[TRADEOFF_CAPTION]})", ""]
    headers, body = markdown_tables(board)
    lines += ["## Details: every metric", "", legend(board), ""]
    lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    columns = gap_columns(board)
    if gaps and columns and not board.table.empty:
        marks, hidden = best_cells(board), board.hidden_cells()
        gap_body = []
        for index, row in board.table.iterrows():
            cells = [str(v) for v in _row_key(row)]
            cells += [cell_text(board, index, c, marks, hidden) for c in columns]
            gap_body.append(cells)
        lines += [f"## Details: gap to {board.reference}", "", gap_legend(board), ""]
        lines += [
            tabulate(
                gap_body,
                headers=[*KEYS, "seeds", FLAGS, *(raw_header(board, c) for c in columns)],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
        ]
    variants = variant_parameters(board)
    if variants:
        lines += ["## Tuned parameters", ""]
        lines += [
            "Parameters in which each `<method>[tuned]` row differs from the `<method>` row "
            "(per seed: every task has its own study).",
            "",
        ]
        body = [
            [label, str(seed), ", ".join(f"{k} = {_short(v)}" for k, v in changed.items()) or "–"]
            for label, seed, changed in variants
        ]
        lines += [tabulate(body, headers=["method", "seed", "parameters"], tablefmt="github"), ""]
    others = {c: p for c, p in (plots or {}).items() if c != TRADEOFF_CAPTION}
    if others:
        lines += ["## Plots", ""]
        for caption, path in others.items():
            lines += [f"![{caption}]({path})", ""]
    if board.failures:
        lines += [f"## Failed cells ({len(board.failures)})", ""]
        for failure in board.failures:
            last = str(failure["error"] or "").strip().splitlines()[-1:] or [""]
            where = "/".join(str(failure[k]) for k in KEYS)
            lines.append(f"- {where} seed {failure['seed']}: {last[0]}")
        lines.append("")
    return "\n".join(lines)


def headline_rows(
    board: Leaderboard, rows: pd.DataFrame, columns: list[Any], *, bold: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one group's headline table."""
    marks = best_cells(board) if bold else set()
    hidden = board.hidden_cells()
    headers = ["method", "seeds", FLAGS, *(c.label for c in columns)]
    body = []
    for index, row in rows.iterrows():
        cells = [row_label(board, row), str(row["seeds"]), str(row[FLAGS])]
        cells += [cell_text(board, index, c.key, marks, hidden) for c in columns]
        body.append(cells)
    return headers, body


def headline_markdown(board: Leaderboard) -> list[str]:
    """One section per group: heading, headline table, legend line."""
    lines = []
    for key, rows, columns in headline_groups(board):
        headers, body = headline_rows(board, rows, columns)
        lines += [f"## {group_title(key)}", ""]
        lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
        lines += [headline_legend(board), ""]
    return lines


def terminal_summary(board: Leaderboard, max_rows: int = 20, best: int = 5) -> str:
    """The headline tables as plain text for the end of a run.

    Every row when the board has at most ``max_rows`` rows; otherwise, per group,
    the two anchors and the ``best`` rows by Avg. Gap (the rest are counted).
    """
    if board.table.empty:
        return "no finished cells"
    whole = len(board.table) <= max_rows
    parts = []
    for key, rows, columns in headline_groups(board):
        shown = rows if whole else rows.head(best + 2)
        headers, body = headline_rows(board, shown, columns, bold=False)
        title = group_title(key)
        seeds = set(shown["seeds"])
        drop = {1} if len(seeds) == 1 else set()  # one seed count: said in the title
        if len(seeds) == 1:
            title += f" ({seeds.pop()} seeds)"
        if not any(row[2] for row in body):
            drop.add(2)  # no flags in this group
        headers = [h for i, h in enumerate(headers) if i not in drop]
        body = [[c for i, c in enumerate(row) if i not in drop] for row in body]
        parts += [title, tabulate(body, headers=headers, disable_numparse=True)]
        if len(shown) < len(rows):
            parts.append(f"({len(rows) - len(shown)} more rows: see the leaderboard)")
        parts.append("")
    return "\n".join(parts)


def to_csv(board: Leaderboard) -> str:
    return board.table.to_csv(index=False)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
                    "methods": list(item.methods),
                }
                for item in board.uninformative
            ],
            "rows": rows,
            "tuned_parameters": [
                {"method": label, "seed": seed, "parameters": changed}
                for label, seed, changed in variant_parameters(board)
            ],
            "failures": board.failures,
        },
        indent=2,
        default=str,
    )
