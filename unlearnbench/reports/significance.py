"""Which values of a group differ beyond the seed noise: paired tests over shared seeds.

Every method of a group runs on the same seeds (the same split, initialisation
and forget set per seed), so most of the spread over seeds is shared by every
row. A paired test compares two rows seed by seed and removes that shared part;
an unpaired interval keeps it and hides real differences.

:func:`marks` decides, per group and column, what a board highlights: the best
value in bold only where a paired t-test over the seeds both rows have
separates it at 95% from every other contender (so from the runner-up);
otherwise every contender the best is not separated from, the best included,
is marked tied (``≈``); a column where every contender ties marks nothing.
See docs/leaderboards.md ("Best values").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from unlearnbench.reports.flags import original_wins
from unlearnbench.reports.gaps import GROUP_KEYS, KEYS, gap_columns, per_seed_gaps
from unlearnbench.reports.stats import MIN_SEEDS, paired_separated

if TYPE_CHECKING:
    from unlearnbench.reports.board import Leaderboard

TIED = "≈"
TEST_NAME = "a two-sided paired t-test over the seeds both rows share, at 95%"


@dataclass
class Marks:
    """(row index, column) pairs: ``best`` shown bold, ``tied`` shown with ``≈``."""

    best: set[tuple[int, str]] = field(default_factory=set)
    tied: set[tuple[int, str]] = field(default_factory=set)


def per_seed_values(board: Leaderboard) -> pd.DataFrame:
    """KEYS + seed + every metric's per-seed value and every gap column's per-seed gap;
    computed once per board (the marks and every group's verdict read it)."""
    key = ("per_seed_values", id(board.per_seed))
    cached = board.cache.get(key)
    if isinstance(cached, pd.DataFrame):
        return cached
    per_seed = board.per_seed
    if per_seed.empty:
        frame = pd.DataFrame(columns=[*KEYS, "seed"])
    else:
        gaps = per_seed_gaps(per_seed, board.gap_metrics, board.avg_gap_metrics, board.reference)
        extra = [c for c in gaps.columns if c not in per_seed.columns]
        frame = per_seed.merge(gaps[[*KEYS, "seed", *extra]], on=[*KEYS, "seed"], how="left")
    board.cache[key] = frame
    return frame


def _columns(board: Leaderboard) -> list[tuple[str, str]]:
    """(column, direction) of every column a board may mark; gap columns: ``gap``."""
    columns = [
        (m, "gap" if m.endswith("_gap") else board.directions.get(m, "none")) for m in board.metrics
    ]
    columns += [(c, "gap") for c in gap_columns(board) if c not in board.directions]
    return columns


def _ranked(
    board: Leaderboard, by_seed: pd.DataFrame, column: str, direction: str
) -> pd.DataFrame | None:
    """Seeds x methods: the per-seed values compared for ``column`` in one group
    (``by_seed`` is the group's per-seed frame indexed by method and seed), or None
    when the group cannot rank it (``none`` metrics need a reference value)."""
    if column not in by_seed:
        return None
    values = by_seed[column].astype(float).unstack("method")
    if board.role(column) == "speed":  # ratios: compared on the log scale
        values = np.log(values.where(values > 0))
    if direction == "none":
        if board.reference not in values or values[board.reference].dropna().empty:
            return None
        values = values.sub(values[board.reference], axis=0).abs()
    return values


def marks(board: Leaderboard) -> Marks:
    """Bold and tied cells of every group (see the module docstring); computed once
    per board table and kept in ``board.cache``.

    Only unlearning methods compete: the anchors (reference, original), flagged
    rows (collapsed, no effect, worse than original) and uninformative attack
    values never do, and a column the original wins (or ties) marks nothing; nor
    attack strengths, nor unit-less cost counters a method reports (closeness
    to the reference's counters means nothing). Directions: ``higher`` and
    ``lower`` rank the mean; ``none`` ranks the distance to the reference's
    value (per seed); gap columns rank the smallest gap; speed-ups are tested
    on the log scale. A group whose best mean is shared by two rows bolds
    nothing and marks the ties."""
    key = ("marks", id(board.table))
    cached = board.cache.get(key)
    if isinstance(cached, Marks):
        return cached
    found = Marks()
    board.cache[key] = found
    table = board.table
    if table.empty:
        return found
    seeds = per_seed_values(board)
    excluded, hidden = board.collapsed_rows(), board.hidden_cells()
    columns = [
        (c, d)
        for c, d in _columns(board)
        if not (d == "none" and not board.units.get(c))
        and board.role(c.removesuffix("_gap")) != "attack_strength"
    ]
    grouped = dict(iter(seeds.groupby(GROUP_KEYS, sort=False))) if not seeds.empty else {}
    for key_values, group in table.groupby(GROUP_KEYS, sort=False):
        anchors = group["method"].isin([board.original, board.reference])
        contenders = group[~anchors & ~group.index.isin(list(excluded))]
        part = grouped.get(key_values)
        if contenders.empty or part is None:
            continue
        by_seed = part.set_index(["method", "seed"])
        by_seed = by_seed[~by_seed.index.duplicated(keep="last")]
        for column, direction in columns:
            if column not in group:
                continue
            values = _ranked(board, by_seed, column, direction)
            if values is None:
                continue
            higher = direction == "higher"
            series = {
                int(i): values[m]
                for i, m in contenders["method"].items()
                if m in values and (int(i), column) not in hidden
            }
            means = {i: float(s.mean()) for i, s in series.items()}
            means = {i: v for i, v in means.items() if not math.isnan(v)}
            if len(means) < 2:
                continue
            order = sorted(means, key=lambda i: -means[i] if higher else means[i])
            best = order[0]
            floor = float(values[board.original].mean()) if board.original in values else None
            if original_wins(board, column, floor, means[best], direction):
                continue  # doing nothing is at least as good: no method wins this column
            tied = [i for i in order[1:] if not paired_separated(series[best], series[i], higher)]
            if not tied:
                found.best.add((best, column))
            elif len(tied) + 1 < len(order):
                found.tied.update((i, column) for i in (best, *tied))
    return found


def few_seeds(board: Leaderboard, minimum: int = MIN_SEEDS) -> list[str]:
    """One warning per group where a row that ran has fewer than ``minimum`` seeds."""
    lines = []
    for key, group in board.table.groupby(GROUP_KEYS, sort=False):
        ran = group[group["seeds"] > 0]
        short = ran[ran["seeds"] < minimum]
        if short.empty:
            continue
        fewest = int(short["seeds"].min())
        lines.append(
            f"{'/'.join(str(k) for k in key)}: {len(short)} row(s) with fewer than {minimum} "
            f"seeds (fewest {fewest}); a 95% interval or paired test over so few seeds "
            "separates almost nothing, so its marks say little"
        )
    return lines


def marks_legend(mark: str = "Bold") -> str:
    """How a format shows significance; ``mark`` names how it shows a best value."""
    return (
        f"{mark}: the best value, separated from every other unlearning method of its group "
        f"by {TEST_NAME} (the seeds share split, initialisation and forget set, so the "
        f"comparison is per seed); {TIED}: not separated from the best (the best included); "
        "nothing is marked where every method ties or there are fewer than two seeds."
    )


def describe(value: Any) -> str:
    """A p-value for a legend or table: three significant digits, ``<0.001`` below."""
    number = float(value)
    if math.isnan(number):
        return "–"
    return "<0.001" if number < 0.001 else f"{number:.3g}"
