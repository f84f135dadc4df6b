"""The summary ``unlearnbench run`` prints at its end: per group a table that fits a
terminal (120 columns by default), the group's verdict, and the key of the flags.

By default each group shows the headline measures only (the method, its flags, the
utility and forgetting metrics, the Avg. Gap and the first speed-up), dropping the
rightmost of them while the table is wider than ``width``; ``wide=True`` (``run
--wide``) shows every headline column, however wide. The whole board is in the
leaderboard files either way.
"""

from __future__ import annotations

import textwrap

import pandas as pd
from tabulate import tabulate

from unlearnbench.reports.board import DAGGER, Leaderboard
from unlearnbench.reports.flags import (
    NO_EFFECT,
    NO_EFFECT_MARGIN,
    NO_EFFECT_NOISE,
    WORSE,
    WORSE_MARGIN,
)
from unlearnbench.reports.gaps import AVG_GAP
from unlearnbench.reports.headline import (
    Column,
    group_title,
    headline_groups,
    speed_metrics,
)
from unlearnbench.reports.significance import TIED, few_seeds
from unlearnbench.reports.text import non_finite_lines, plain_rows, plain_text
from unlearnbench.reports.verdict import group_verdict

WIDTH = 120
"""The terminal width the default summary fits."""


def headline_measures(board: Leaderboard, columns: list[Column]) -> list[Column]:
    """The few columns a reader decides on, in order: utility, forgetting, Avg. Gap and
    the first speed-up (work-based first, as the headline orders them)."""
    speeds = speed_metrics(board)[:1]
    keep = [
        c
        for c in columns
        if board.role(c.key) in ("utility", "forgetting") or c.key == AVG_GAP or c.key in speeds
    ]
    return keep


def _table(board: Leaderboard, rows: pd.DataFrame, columns: list[Column]) -> tuple[str, str]:
    """A group's table as plain text, and its title (seeds said there when uniform)."""
    headers, body = plain_rows(board, rows, columns)
    title = ""
    drop = set()
    seeds = set(rows["seeds"])
    if len(seeds) == 1:
        drop.add(1)
        title = f" ({seeds.pop()} seeds)"
    if not any(row[2] for row in body):
        drop.add(2)
    headers = [h for i, h in enumerate(headers) if i not in drop]
    body = [[c for i, c in enumerate(row) if i not in drop] for row in body]
    return tabulate(body, headers=headers, disable_numparse=True), title


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def flags_key(board: Leaderboard) -> str:
    """What each flag means (the margins included) and what it does to a row."""
    return (
        f"flags: collapsed = test accuracy (a utility metric) more than "
        f"{_points(board.collapse_margin)} below {board.original}'s; {NO_EFFECT} = every "
        f"forgetting measure within {_points(NO_EFFECT_MARGIN)} of {board.original}'s "
        f"or within {_points(NO_EFFECT_NOISE)} and not separated from it (paired t-test, "
        "3+ seeds); "
        f"{WORSE} = Avg. Gap more than {_points(WORSE_MARGIN)} above {board.original}'s "
        f"(further from {board.reference} than doing nothing). Flagged rows come last and "
        "are never ranked best."
    )


def _points(fraction: float) -> str:
    points = fraction * 100
    return f"{points:g} point{'' if points == 1 else 's'}"


def terminal_summary(
    board: Leaderboard,
    *,
    wide: bool = False,
    width: int = WIDTH,
    max_rows: int = 20,
    best: int = 5,
) -> str:
    """The end-of-run summary (see the module docstring).

    Every row when the board has at most ``max_rows`` rows; otherwise, per group,
    the two anchors and the ``best`` rows by Avg. Gap (the rest are counted)."""
    if board.table.empty:
        return "no finished cells"
    whole = len(board.table) <= max_rows
    parts: list[str] = []
    fill = (lambda text: textwrap.fill(text, width)) if width > 0 else (lambda text: text)
    dropped = False
    for key, rows, columns in headline_groups(board):
        shown = rows if whole else rows.head(best + 2)
        chosen = columns if wide else headline_measures(board, columns)
        table, seeds = _table(board, shown, chosen)
        while not wide and len(chosen) > 1 and _width(table) > width:
            chosen = chosen[:-1]
            table, seeds = _table(board, shown, chosen)
        dropped = dropped or len(chosen) < len(columns)
        parts += [fill(plain_text(group_title(key)) + seeds), table]
        if len(shown) < len(rows):
            parts.append(f"({len(rows) - len(shown)} more rows: see the leaderboard)")
        parts += [fill(plain_text(group_verdict(board, rows))), ""]
    parts.append(
        fill(
            f"* best, separated from every other method by a paired t-test (95%); {TIED} tied "
            "with the best; Δ: paired difference to the reference"
        )
    )
    parts += [fill(f"warning: {plain_text(line)}") for line in few_seeds(board)]
    parts.append(fill(flags_key(board)))
    if board.uninformative:
        parts.append(
            fill(
                f"{DAGGER}: an attack too weak on the original to measure anything there "
                "(see the leaderboard's notes)."
            )
        )
    if dropped:
        parts.append(
            fill(
                "More columns (attack gaps, consistency, storage): `unlearnbench run ... "
                "--wide`, or the leaderboard."
            )
        )
    if board.non_finite:
        parts.append("not finite (shown as –):")
        parts += [fill(f"  {plain_text(line)}") for line in non_finite_lines(board)]
    return "\n".join(parts)
