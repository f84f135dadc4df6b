"""The leaderboard as text: GitHub Markdown (best values in bold), CSV and JSON.

Everything here is presentation of a :class:`~unlearnbench.reports.board.Leaderboard`
built by :mod:`unlearnbench.reports.board`; nothing is computed again.

Labels, parameters and metric names come from suites and plugins, so every one
is escaped for where it goes: :func:`md_escape` in Markdown (no HTML, no
emphasis, links or code, and a ``|`` cannot open a new column),
:func:`csv_safe` in CSV (no spreadsheet formulas), :func:`plain_text` in the
terminal (no control characters or escape sequences).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import pandas as pd
from tabulate import tabulate

from unlearnbench.reports import crossrank
from unlearnbench.reports.board import (
    DAGGER,
    Leaderboard,
    legend,
    notes,
    repeat_notes,
    variant_parameters,
)
from unlearnbench.reports.flags import FLAGS
from unlearnbench.reports.gaps import GROUP_KEYS, KEYS, gap_columns, gap_legend
from unlearnbench.reports.headline import (
    format_cell,
    format_headline_cell,
    group_title,
    headline_groups,
    headline_legend,
    raw_header,
    row_label,
)
from unlearnbench.reports.paired import paired_columns
from unlearnbench.reports.plots import TRADEOFF_CAPTION
from unlearnbench.reports.significance import TIED, Marks, few_seeds
from unlearnbench.reports.significance import marks as significance_marks
from unlearnbench.reports.verdict import group_verdict

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"[\\`*~|]|\](?=[(\[])|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
TERMINAL_MARKS = {(True, False): "*", (False, True): TIED}
"""A terminal has no bold: the best value gets ``*``, a tie ``≈``."""


def md_escape(value: Any) -> str:
    """``value`` as Markdown text that renders as itself: HTML characters become
    entities, and backslash, backtick, ``*``, ``~``, ``|``, a ``]`` that would
    close a link (before ``(`` or ``[``) and word-edge underscores are
    backslash-escaped (an underscore inside a word, as in ``forget_rate``, is
    never emphasis, and ``ft[tuned]`` no link: they stay as they are). Control
    characters, newlines included, become spaces, so a cell stays one cell."""
    text = _CONTROL.sub(" ", str(value))
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return "".join(_MD_HTML.get(c, c) for c in text)


def plain_text(value: Any) -> str:
    """``value`` for a terminal: control characters (escape sequences' ESC
    included) removed, newlines and tabs made spaces."""
    return _CONTROL.sub("", re.sub(r"[\n\r\t]", " ", str(value)))


def csv_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula (starting with
    ``= + - @``, a tab or a carriage return) gets a leading ``'``, as
    spreadsheet exports do (OWASP's CSV injection advice); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _row_key(row: pd.Series) -> list[Any]:
    return [md_escape(row[k]) for k in KEYS] + [row["seeds"], md_escape(row[FLAGS])]


def cell_text(
    board: Leaderboard,
    index: int,
    column: str,
    marks: Marks,
    hidden: set[tuple[int, str]],
    *,
    headline: bool = False,
) -> str:
    """One formatted value: bold when best, ``≈`` when tied with the best, a dagger
    when uninformative; ``headline``: with the paired difference to the reference."""
    shown = format_headline_cell if headline else format_cell
    text = md_escape(shown(board, board.table.loc[index], column))
    if (index, column) in hidden and text != "–":
        return f"{text} {DAGGER}"
    if (index, column) in marks.tied:
        return f"{text} {TIED}"
    return f"**{text}**" if (index, column) in marks.best else text


def markdown_tables(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted cells of the main table (best values in bold)."""
    marks, hidden = significance_marks(board), board.hidden_cells()
    headers = [*KEYS, "seeds", FLAGS] + [md_escape(raw_header(board, m)) for m in board.metrics]
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
    lines = [f"# {md_escape(title)}", ""]
    warnings = few_seeds(board)
    if warnings:
        lines += [md_escape(f"Warning: {line}.") for line in warnings] + [""]
    if not board.table.empty:
        lines += headline_markdown(board)
    if board.uninformative:
        lines += [*(md_escape(note) for note in notes(board)), ""]
    for note in repeat_notes(board):
        lines += [md_escape(note), ""]
    lines += crossrank_markdown(board)
    if plots and TRADEOFF_CAPTION in plots:
        lines += [f"![{TRADEOFF_CAPTION}]({plots[TRADEOFF_CAPTION]})", ""]
    headers, body = markdown_tables(board)
    lines += ["## Details: every metric", "", md_escape(legend(board)), ""]
    lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    columns = gap_columns(board)
    if gaps and columns and not board.table.empty:
        marks, hidden = significance_marks(board), board.hidden_cells()
        gap_body = []
        for index, row in board.table.iterrows():
            cells = [str(v) for v in _row_key(row)]
            cells += [cell_text(board, index, c, marks, hidden) for c in columns]
            gap_body.append(cells)
        lines += [
            f"## Details: gap to {md_escape(board.reference)}",
            "",
            md_escape(gap_legend(board)),
            "",
        ]
        lines += [
            tabulate(
                gap_body,
                headers=[
                    *KEYS,
                    "seeds",
                    FLAGS,
                    *(md_escape(raw_header(board, c)) for c in columns),
                ],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
        ]
    lines += paired_markdown(board)
    variants = variant_parameters(board)
    if variants:
        lines += ["## Tuned parameters", ""]
        lines += [
            "Parameters in which each `<method>[tuned]` row differs from the `<method>` row "
            "(per seed: every task has its own study).",
            "",
        ]
        body = [
            [
                md_escape(label),
                str(seed),
                md_escape(", ".join(f"{k} = {_short(v)}" for k, v in changed.items()) or "–"),
            ]
            for label, seed, changed in variants
        ]
        lines += [
            tabulate(
                body,
                headers=["method", "seed", "parameters"],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
        ]
    others = {c: p for c, p in (plots or {}).items() if c != TRADEOFF_CAPTION}
    if others:
        lines += ["## Plots", ""]
        for caption, path in others.items():
            lines += [f"![{md_escape(caption)}]({_md_url(path)})", ""]
    if board.non_finite:
        lines += [
            "## Values that were not finite",
            "",
            "Shown as – above (and left out of every mean): the evaluator returned NaN or "
            "an infinity.",
            "",
        ]
        lines += [md_escape(f"- {line}") for line in non_finite_lines(board)] + [""]
    if board.failures:
        lines += [f"## Failed cells ({len(board.failures)})", ""]
        for failure in board.failures:
            last = str(failure["error"] or "").strip().splitlines()[-1:] or [""]
            where = "/".join(str(failure[k]) for k in KEYS)
            lines.append(md_escape(f"- {where} seed {failure['seed']}: {last[0]}"))
        lines.append("")
    return "\n".join(lines)


def headline_rows(
    board: Leaderboard, rows: pd.DataFrame, columns: list[Any], *, bold: bool = True
) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of one group's headline table (Markdown-escaped)."""
    marks = significance_marks(board) if bold else Marks()
    hidden = board.hidden_cells()
    headers = ["method", "seeds", FLAGS, *(md_escape(c.label) for c in columns)]
    body = []
    for index, row in rows.iterrows():
        cells = [md_escape(row_label(board, row)), str(row["seeds"]), md_escape(row[FLAGS])]
        cells += [cell_text(board, index, c.key, marks, hidden, headline=True) for c in columns]
        body.append(cells)
    return headers, body


def plain_rows(
    board: Leaderboard, rows: pd.DataFrame, columns: list[Any]
) -> tuple[list[str], list[list[str]]]:
    """:func:`headline_rows` for a terminal: raw text, control characters removed."""
    hidden, marks = board.hidden_cells(), significance_marks(board)
    headers = ["method", "seeds", FLAGS, *(plain_text(c.label) for c in columns)]
    body = []
    for index, row in rows.iterrows():
        cells = [plain_text(row_label(board, row)), str(row["seeds"]), plain_text(row[FLAGS])]
        for c in columns:
            text = plain_text(format_headline_cell(board, row, c.key))
            cell = (index, c.key)
            suffix = TERMINAL_MARKS.get((cell in marks.best, cell in marks.tied))
            if (index, c.key) in hidden and text != "–":
                suffix = DAGGER
            cells.append(f"{text} {suffix}" if suffix else text)
        body.append(cells)
    return headers, body


def non_finite_lines(board: Leaderboard) -> list[str]:
    """One line per metric value an evaluator returned as NaN or infinite."""
    return [
        f"{'/'.join(str(item[k]) for k in KEYS)} seed {item['seed']}: {item['metric']} "
        f"was {item['value']}"
        for item in board.non_finite
    ]


def _md_url(path: str) -> str:
    """A link target that cannot end the link early (spaces and parentheses encoded)."""
    return "".join(
        {" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E"}.get(c, c) for c in str(path)
    )


def crossrank_markdown(board: Leaderboard) -> list[str]:
    """The across-tasks section: per headline measure, the Friedman test and the
    average ranks with the methods within the critical difference (:mod:`.crossrank`)."""
    if board.table.empty:
        return []
    lines = ["## Across tasks: Friedman test and critical difference", ""]
    lines += [md_escape(crossrank.legend(board.rank_blocks)), ""]
    for result in crossrank.rank_all(board):
        lines += [f"### {result.measure}", "", md_escape(crossrank.summary(result)), ""]
        if not result.reason:
            body = [[md_escape(c) for c in row] for row in crossrank.table_rows(result)]
            lines.append(
                tabulate(body, headers=crossrank.HEADERS, tablefmt="github", disable_numparse=True)
            )
            lines.append("")
    return lines


def paired_metric_names(board: Leaderboard) -> list[str]:
    """The metrics with paired differences in the table (see :mod:`.paired`)."""
    return [m for m in board.metrics if paired_columns(m)[0] in board.table]


def paired_legend(board: Leaderboard) -> str:
    return (
        f"Paired differences: per seed, the row's value − {board.reference}'s (and − "
        f"{board.original}'s) on the same seed, then the mean over seeds ± the half-width of "
        "its 95% Student-t interval; the seeds' shared split and initialisation cancel, so "
        "these intervals are much narrower than the unpaired ones above. Percent-points for "
        "fractions."
    )


def paired_markdown(board: Leaderboard) -> list[str]:
    """The details table of paired differences to the reference and the original."""
    metrics = paired_metric_names(board)
    if not metrics or board.table.empty:
        return []
    columns = [c for m in metrics for c in paired_columns(m) if c in board.table]
    empty = Marks()
    body = []
    for index, row in board.table.iterrows():
        cells = [str(v) for v in _row_key(row)]
        cells += [cell_text(board, index, c, empty, set()) for c in columns]
        body.append(cells)
    headers = [*KEYS, "seeds", FLAGS, *(md_escape(c) for c in columns)]
    return [
        "## Details: paired differences",
        "",
        md_escape(paired_legend(board)),
        "",
        tabulate(body, headers=headers, tablefmt="github", disable_numparse=True),
        "",
    ]


def headline_markdown(board: Leaderboard) -> list[str]:
    """One section per group: heading, headline table, legend line."""
    lines = []
    for key, rows, columns in headline_groups(board):
        headers, body = headline_rows(board, rows, columns)
        lines += [f"## {md_escape(group_title(key))}", ""]
        lines += [tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
        lines += [md_escape(group_verdict(board, rows)), ""]
        lines += [md_escape(headline_legend(board)), ""]
    return lines


def to_csv(board: Leaderboard) -> str:
    """The table as CSV, text cells made safe for spreadsheets (:func:`csv_safe`)."""
    table = board.table.copy()
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = table[column].map(csv_safe)
    table.columns = [csv_safe(str(c)) for c in table.columns]
    return table.to_csv(index=False)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def across_tasks_json(board: Leaderboard) -> list[dict[str, Any]]:
    """Per headline measure: the Friedman test, the average ranks and the Nemenyi CD."""

    def number(value: float) -> float | None:
        return None if math.isnan(value) else value

    return [
        {
            "measure": r.measure,
            "metric": r.column,
            "groups": r.groups,
            "friedman_chi2": number(r.statistic),
            "friedman_p": number(r.pvalue),
            "critical_difference": number(r.cd),
            "average_ranks": {str(m): float(v) for m, v in r.ranks.items()},
            "left_out": r.left_out,
            "not_ranked": r.reason,
        }
        for r in crossrank.rank_all(board)
    ]


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
            "non_finite": board.non_finite,
            "across_tasks": [] if board.table.empty else across_tasks_json(board),
        },
        indent=2,
        default=str,
    )
