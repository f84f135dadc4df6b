"""Each group's answer in one line: the best unlearning method by Avg. Gap, and where
it stands against the two anchors (the reference, exact unlearning, and the original,
doing nothing).

Bold needs two ranked rows separated by a paired test; a reader still needs an answer when a
group has one ranked method, or none: this line names it (or says why there is none)
on every board, the terminal's included.
"""

from __future__ import annotations

import math
from typing import cast

import pandas as pd

from unlearnbench.reports.board import Leaderboard
from unlearnbench.reports.flags import FLAGS
from unlearnbench.reports.gaps import AVG_GAP, KEYS
from unlearnbench.reports.headline import column_unit, format_cell
from unlearnbench.reports.significance import paired_separated, per_seed_values
from unlearnbench.reports.units import unit_label


def group_verdict(board: Leaderboard, rows: pd.DataFrame) -> str:
    """The verdict of one group (``rows``: its rows, as :func:`headline_groups` gives them).

    The best ranked method is the one with the smallest Avg. Gap among the rows that
    are neither anchors nor flagged; its standing says whether it ends closer to the
    reference than doing nothing, and whether a paired t-test over seeds separates them."""
    anchors = rows["method"].isin([board.reference, board.original])
    methods = rows[~anchors]
    if methods.empty:
        return "Verdict: no unlearning method ran in this group, only the anchors."
    reference = rows[rows["method"] == board.reference]
    original = rows[rows["method"] == board.original]
    if AVG_GAP not in rows or reference.empty or not int(reference["seeds"].iloc[0]):
        return (
            f"Verdict: none, since {board.reference} (the reference) did not run here, so "
            "there is no Avg. Gap to rank by."
        )
    ranked = methods[(methods[FLAGS] == "") & methods[AVG_GAP].notna()]
    ranked = ranked.loc[ranked[AVG_GAP].astype(float).sort_values(kind="stable").index]
    if ranked.empty:
        flagged = ", ".join(
            f"{m} ({f})" for m, f in zip(methods["method"], methods[FLAGS], strict=True) if f
        )
        return f"Verdict: no method is ranked: every one is flagged ({flagged})."
    label = unit_label(column_unit(board, AVG_GAP))
    name = f"Avg. Gap {label}".strip()
    best = ranked.iloc[0]
    text = f"Verdict: best by {name}: {best['method']} {format_cell(board, best, AVG_GAP)}"
    if original.empty or math.isnan(float(original[AVG_GAP].iloc[0])):
        text += f" ({board.reference} 0; {board.original} did not run: no do-nothing floor)"
        return text + _others(ranked)
    floor = original.iloc[0]
    text += (
        f" ({board.original} {format_cell(board, floor, AVG_GAP)}, {board.reference} 0): "
        + _standing(board, cast(int, best.name), cast(int, floor.name))
    )
    return text + _others(ranked)


def _standing(board: Leaderboard, best: int, original: int) -> str:
    """How the best row's Avg. Gap compares with the original's."""
    mine = float(board.table.at[best, AVG_GAP])
    floor = float(board.table.at[original, AVG_GAP])
    if mine >= floor:
        return f"no closer to {board.reference} than doing nothing"
    by_seed = _avg_gap_by_seed(board, best, original)
    if by_seed is None:
        return f"closer to {board.reference} than doing nothing (fewer than two shared seeds)"
    if paired_separated(by_seed[0], by_seed[1], higher=False):
        return f"closer to {board.reference} than doing nothing (paired t-test over seeds, 95%)"
    return (
        f"closer to {board.reference} than doing nothing on average, but not separated "
        "from it by a paired t-test over seeds (95%)"
    )


def _avg_gap_by_seed(
    board: Leaderboard, best: int, original: int
) -> tuple[pd.Series, pd.Series] | None:
    """The per-seed Avg. Gap of two rows (indexed by seed), or None with < 2 seeds shared."""
    seeds = per_seed_values(board)
    if AVG_GAP not in seeds:
        return None
    series = []
    for index in (best, original):
        row = board.table.loc[index]
        match = (seeds[KEYS] == row[KEYS].to_numpy()).all(axis=1)
        series.append(seeds[match].set_index("seed")[AVG_GAP].astype(float))
    if len(series[0].index.intersection(series[1].index)) < 2:
        return None
    return series[0], series[1]


def _others(ranked: pd.DataFrame) -> str:
    """The next ranked methods, in order (two named, the rest counted)."""
    if len(ranked) == 1:
        return "; the only ranked method."
    names = ", ".join(str(m) for m in ranked["method"].iloc[1:3])
    more = len(ranked) - 3
    return f"; then {names}" + (f" and {more} more." if more > 0 else ".")
