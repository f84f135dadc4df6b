"""The headline table: per group, one row per method, the columns a reader decides on.

Columns are chosen from the metrics' roles and directions, never from built-in
names, one per slot, in this order (a slot without a value in a group is left
out of that group's table), so a table has at most ``MAX_COLUMNS`` columns
(method, seeds and flags included):

1. the first ``utility`` metric (test accuracy);
2. the first ``forgetting`` metric (forget accuracy);
3. agreement with the reference: the first of ``AGREEMENT_METRICS``
   (``consistency``) present; agreement has no role of its own, so this is the
   one short list of preferred names (nothing is shown when none is present);
4. ``avg_gap`` (SalUn's Avg. Gap), by which the rows are ordered;
5. the strongest informative attack's gap (:func:`strongest_attack`): among the
   ``attack`` metrics ending in ``_gap``, one per evaluator (its first), the one
   whose attack is strongest on the original model in that group, measured by
   its ``attack_strength`` metric's margin over the declared threshold; an
   uninformative attack (†) is never chosen; the others stay in the details;
6. the work speed-up against the reference: the first ``speed`` metric the
   reference row has a value for (a speed-up over the reference is 1 there),
   work-based first (``work`` in the name: sample passes, which do not depend
   on the machine); wall-clock speed-ups stay in the details;
7. the speed-up against the method's own naive retraining: the first ``speed``
   metric with a unit that the reference row lacks (reported only by methods
   that change the training procedure), work-based first;
8. storage: the first ``cost`` metric in ``bytes``.

Values of slots 1-3 are shown as the mean over seeds and the paired difference
to the reference (:mod:`.paired`); the gaps are paired by construction.
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
from unlearnbench.reports.paired import AGREEMENT_METRICS, paired_columns
from unlearnbench.reports.units import format_ratio, format_unit, unit_label

MAX_COLUMNS = 12
"""At most this many columns in a headline table (method, seeds, flags included)."""


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
    for suffix in ("_vs_ref", "_vs_orig"):
        if column.endswith(suffix):
            return str(board.units.get(column.removesuffix(suffix), "") or "")
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


def naive_speed_metrics(board: Leaderboard) -> list[str]:
    """``speed`` metrics with a unit that the reference row lacks (a method's speed-up
    over its own naive retraining), work-based first."""
    against_reference = set(speed_metrics(board))
    speeds = [
        m
        for m in board.metrics
        if board.role(m) == "speed" and board.units.get(m) and m not in against_reference
    ]
    return sorted(speeds, key=lambda m: "work" not in m)


def attack_gaps(board: Leaderboard) -> list[str]:
    """One attack gap per evaluator (its first ``attack`` metric ending in ``_gap``)."""
    seen: dict[str, str] = {}
    for m in board.metrics:
        if board.role(m) == "attack" and m.endswith("_gap") and m in board.table:
            seen.setdefault(str(board.about.get(m, {}).get("evaluator", m)), m)
    return list(seen.values())


def attack_margin(board: Leaderboard, group: pd.DataFrame, gap: str) -> float:
    """How far ``gap``'s attack is above chance on the original model in ``group``:
    (strength - threshold) / (1 - threshold) of its evaluator's first
    ``attack_strength`` metric (the original row's value, else the group's mean);
    -inf when it has none or it is missing, nan when it is uninformative there."""
    evaluator = board.about.get(gap, {}).get("evaluator")
    key = tuple(str(group.iloc[0][k]) for k in GROUP_KEYS)
    for item in board.uninformative:
        if item.group == key and not item.methods and gap in item.metrics:
            return math.nan
    strengths = [
        m
        for m in board.metrics
        if board.role(m) == "attack_strength" and board.about[m].get("evaluator") == evaluator
    ]
    if not strengths or strengths[0] not in group:
        return -math.inf
    metric = strengths[0]
    original = group[group["method"] == board.original][metric].astype(float).dropna()
    values = original if not original.empty else group[metric].astype(float).dropna()
    if values.empty:
        return -math.inf
    threshold = float(board.about[metric].get("informative_above", 0.5))
    room = 1.0 - threshold if threshold < 1.0 else 1.0
    return (float(values.mean()) - threshold) / room


def strongest_attack(board: Leaderboard, group: pd.DataFrame) -> str | None:
    """The attack gap of ``group``'s headline (see the module docstring), or None."""
    scored = []
    for position, gap in enumerate(attack_gaps(board)):
        if not group[gap].notna().any():
            continue
        margin = attack_margin(board, group, gap)
        if not math.isnan(margin):
            scored.append((-margin, position, gap))
    return min(scored)[2] if scored else None


def headline_columns(board: Leaderboard) -> list[Column]:
    """The headline's candidate columns over the whole board (every attack gap; each
    group keeps one, see :func:`headline_groups`)."""
    metrics = board.metrics
    slots = [
        [m for m in metrics if board.role(m) == "utility"],
        [m for m in metrics if board.role(m) == "forgetting"],
        [m for m in AGREEMENT_METRICS if m in metrics],
        [AVG_GAP] if AVG_GAP in board.table else [],
    ]
    chosen = [next(iter(s)) for s in slots if s]
    chosen += attack_gaps(board)
    for slot in (
        speed_metrics(board),
        naive_speed_metrics(board),
        [m for m in metrics if board.role(m) == "cost" and board.units.get(m) == "bytes"],
    ):
        chosen += slot[:1]
    chosen = list(dict.fromkeys(c for c in chosen if c in board.table))
    return [
        Column(c, readable(board, c), column_unit(board, c), column_direction(board, c))
        for c in chosen
    ]


def with_difference(board: Leaderboard, column: str) -> bool:
    """Whether a headline cell shows the paired difference to the reference."""
    return paired_columns(column)[0] in board.table


def format_headline_cell(board: Leaderboard, row: pd.Series, column: str) -> str:
    """A headline value: for plain metrics the mean over seeds and, for rows other
    than the reference, ``Δ`` the paired difference to it ± its 95% interval
    (``47.8, Δ −0.7 ± 1.2``); gaps and ratios as :func:`format_cell`."""
    if not with_difference(board, column):
        return format_cell(board, row, column)
    unit = column_unit(board, column)
    mean = format_unit(row.get(column), None, unit) if unit else format_value(row.get(column))
    if row["method"] == board.reference or mean == "–":
        return mean
    key = paired_columns(column)[0]
    value, ci = row.get(key), row.get(f"{key}_ci95")
    diff = format_unit(value, ci, unit) if unit else format_value(value, ci)
    if diff == "–":
        return mean
    sign = "+" if not diff.startswith("-") else "−"
    return f"{mean}, Δ {sign}{diff.removeprefix('-')}"


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
    attacks = set(attack_gaps(board))
    for key, group in board.table.groupby(GROUP_KEYS, sort=False):
        attack = strongest_attack(board, group)
        present = [
            c
            for c in columns
            if group[c.key].notna().any() and (c.key not in attacks or c.key == attack)
        ]
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
        f"Plain values: the mean over seeds, then Δ, the paired difference to "
        f"{board.reference} (per seed, the row's value − {board.reference}'s on the same "
        f"seed; mean ± 95% t interval over seeds; the unpaired mean ± interval and the "
        f"difference to {board.original} are in the details). Gaps: per seed "
        f"|value − {board.reference}'s|, mean ± 95% CI (paired by seed); % = percent "
        f"(differences and gaps in points); {RATIO_LEGEND} ↑/↓: higher/lower is better; "
        f"unmarked: closest to {board.reference} is best. The attack column is the "
        "strongest informative attack on the original model (the others in the details). "
        f"{mark}: best of the group among the unlearning methods; ≈: tied with the best "
        f"({board.reference} and {board.original}, flagged rows and † uninformative attacks "
        f"are never marked). {BOLD_RULE} "
        f"Rows by Avg. Gap to {board.reference}; flagged rows (collapsed, no effect, "
        "worse than original) last."
    )
