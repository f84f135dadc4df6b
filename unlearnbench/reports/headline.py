"""The headline table: per group, one row per method, the columns a reader decides on.

Columns are chosen from the metrics' roles and directions, never from built-in
names, in this order (a column without a value in a group is left out of that
group's table):

1. every ``utility`` metric (test accuracy);
2. every ``forgetting`` metric (forget accuracy);
3. agreement with the reference: the metrics named in ``AGREEMENT_METRICS``
   (``consistency``) when present; agreement has no role of its own, so this is
   the one short list of preferred names (nothing is shown when none is present);
4. ``avg_gap`` (SalUn's Avg. Gap), by which the rows are ordered;
5. every attack gap: a metric whose role is ``attack`` and whose name ends in
   ``_gap`` (membership-attack and backdoor gaps; backdoor columns only appear
   in groups whose request plants one);
6. the speed-ups: ``speed`` metrics that the reference row has a value for
   (a speed-up over the reference is 1 there; a metric reported only by some
   methods, a "naive" baseline's speed-up, is a detail), work-based first
   (``work`` in the name, the cost counted in sample passes, which does not
   depend on the machine), then wall-clock;
7. storage: every ``cost`` metric in ``bytes``.

Everything else stays in the detail tables. Rows: the reference and the
original first (anchors, marked), then the others by Avg. Gap (closest to
exact unlearning first; rows without one after), collapsed rows last.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from unlearnbench.reports.board import (
    ARROWS,
    BOLD_RULE,
    RATIO_LEGEND,
    Leaderboard,
    format_value,
    is_geometric,
)
from unlearnbench.reports.flags import FLAGS
from unlearnbench.reports.gaps import AVG_GAP, GROUP_KEYS
from unlearnbench.reports.units import format_ratio, format_unit, unit_label

AGREEMENT_METRICS = ("consistency",)
"""Metrics that measure agreement with the reference model's predictions; no role
says so, hence this short list (the only metric names the headline knows)."""


@dataclass(frozen=True)
class Column:
    """One headline column: the board table's column and how it is shown."""

    key: str
    label: str
    unit: str
    direction: str


def column_unit(board: Leaderboard, column: str) -> str:
    """The unit of a table column: a metric's own, a gap's metric's, Avg. Gap's metrics'."""
    if column in board.units:
        return str(board.units[column] or "")
    if column == AVG_GAP:
        units = {board.units.get(m, "") for m in board.avg_gap_metrics}
        return units.pop() if len(units) == 1 else ""
    if column.endswith("_gap"):
        return str(board.units.get(column[: -len("_gap")], "") or "")
    return ""


def column_direction(board: Leaderboard, column: str) -> str:
    if column in board.directions:
        return str(board.directions[column])
    return "lower" if column == AVG_GAP or column.endswith("_gap") else "none"


def readable(board: Leaderboard, column: str) -> str:
    """A header: ``test accuracy % ↑``, ``Avg. Gap % ↓``."""
    name = "Avg. Gap" if column == AVG_GAP else column.replace("_", " ")
    unit = unit_label(column_unit(board, column))
    arrow = ARROWS.get(column_direction(board, column), "")
    return " ".join(part for part in (name, unit, arrow) if part)


def raw_header(board: Leaderboard, column: str) -> str:
    """A detail-table header: the column's own name, its unit label and arrow."""
    unit = unit_label(column_unit(board, column))
    arrow = ARROWS.get(column_direction(board, column), "")
    return " ".join(part for part in (column, unit, arrow) if part)


def format_cell(board: Leaderboard, row: pd.Series, column: str) -> str:
    """A value in its readable unit (± the 95% half-width when the row has one)."""
    unit = column_unit(board, column)
    value, ci = row.get(column), row.get(f"{column}_ci95")
    if is_geometric(board, column):
        return format_ratio(value, ci, unit)
    if unit:
        return format_unit(value, ci, unit)
    return format_value(value, ci)


def speed_metrics(board: Leaderboard) -> list[str]:
    """``speed`` metrics the reference row has a value for, work-based first."""
    speeds = [m for m in board.metrics if board.role(m) == "speed"]
    reference = board.table[board.table["method"] == board.reference]
    speeds = [m for m in speeds if m in reference and reference[m].notna().any()]
    return sorted(speeds, key=lambda m: "work" not in m)  # stable: work-based first


def headline_columns(board: Leaderboard) -> list[Column]:
    """The headline's columns over the whole board (see the module docstring)."""
    metrics = board.metrics
    chosen = [m for m in metrics if board.role(m) == "utility"]
    chosen += [m for m in metrics if board.role(m) == "forgetting"]
    chosen += [m for m in AGREEMENT_METRICS if m in metrics]
    if AVG_GAP in board.table:
        chosen.append(AVG_GAP)
    chosen += [m for m in metrics if board.role(m) == "attack" and m.endswith("_gap")]
    chosen += speed_metrics(board)
    chosen += [m for m in metrics if board.role(m) == "cost" and board.units.get(m) == "bytes"]
    chosen = list(dict.fromkeys(c for c in chosen if c in board.table))
    return [
        Column(c, readable(board, c), column_unit(board, c), column_direction(board, c))
        for c in chosen
    ]


def ordered(board: Leaderboard, group: pd.DataFrame) -> pd.DataFrame:
    """Reference and original first, then by Avg. Gap (missing last), collapsed rows last."""
    anchors = {board.reference: 0, board.original: 1}
    gap = group[AVG_GAP].astype(float) if AVG_GAP in group else pd.Series(math.nan, group.index)
    keys = pd.DataFrame(
        {
            "anchor": [anchors.get(m, 2) for m in group["method"]],
            "collapsed": (group[FLAGS] != "").astype(int).to_numpy(),
            "missing": gap.isna().astype(int).to_numpy(),
            "gap": gap.fillna(0.0).to_numpy(),
            "position": range(len(group)),
        },
        index=group.index,
    )
    order = keys.sort_values(["anchor", "collapsed", "missing", "gap", "position"]).index
    return group.loc[order]


def headline_groups(
    board: Leaderboard,
) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame, list[Column]]]:
    """Per (dataset, architecture, request): the ordered rows and the columns with a value."""
    columns = headline_columns(board)
    for key, group in board.table.groupby(GROUP_KEYS, sort=False):
        present = [c for c in columns if group[c.key].notna().any()]
        yield key, ordered(board, group), present


def group_title(key: tuple[Any, ...]) -> str:
    dataset, architecture, request = key
    return f"{dataset} / {architecture} — request {request}"


def row_label(board: Leaderboard, row: pd.Series) -> str:
    """The method, marked when it is an anchor (reference, original)."""
    method = str(row["method"])
    if method == board.reference:
        return f"{method} (reference)"
    if method == board.original:
        return f"{method} (no unlearning)"
    return method


def headline_legend(board: Leaderboard, mark: str = "Bold") -> str:
    """The line under each headline table; ``mark`` as in :func:`legend`."""
    return (
        f"Mean ± 95% CI over seeds; % = percent (gaps in points, paired by seed); "
        f"{RATIO_LEGEND} ↑/↓: higher/lower is "
        f"better; unmarked: closest to {board.reference} is best. {mark}: best of the group "
        f"among the unlearning methods ({board.reference} and {board.original}, flagged rows "
        f"and † uninformative attacks are never bold). {BOLD_RULE} "
        f"Rows by Avg. Gap to {board.reference}; flagged rows (collapsed, no effect, "
        "worse than original) last."
    )
