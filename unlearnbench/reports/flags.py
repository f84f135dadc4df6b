"""Rows and values a board never ranks: a collapsed model, a row with no measurable
effect, an attack that cannot tell the original's members from non-members.
See docs/leaderboards.md ("Never marked best")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from unlearnbench.reports.gaps import AVG_GAP, GROUP_KEYS, KEYS
from unlearnbench.reports.stats import MIN_SEEDS, paired_separated

if TYPE_CHECKING:
    from unlearnbench.reports.board import Leaderboard

COLLAPSE_MARGIN = 0.2
"""A row whose ``utility`` metric (test accuracy) is more than 0.2 (20
points) below the original's in its group is flagged collapsed and never marked
best. Absolute, since reports do not know the number of classes; it flags
SalUn's and random-label's falls to 0.10-0.18 on MNIST-1D (original 0.48) and
leaves a 10-point loss of a changed training procedure to the gap columns."""
FLAGS = "flags"
NO_EFFECT = "no effect"
NO_EFFECT_MARGIN = 0.01
"""A row whose every forgetting measure (the Avg. Gap metrics: test, retain and
forget accuracy, the membership-attack rate; and every ``forgetting`` or
``attack`` metric, so a row that moves only the shadow attack's FNR is not a
no-op) lies within 0.01 of the original's in its group did not measurably
change the model: it is flagged ``no effect`` and never marked
best (a no-op's speed-up is the largest of all). Seen on the MNIST-1D board:
gradient ascent at its reference lr 1e-4, 132x-14,388x "faster" than retrain."""
NO_EFFECT_NOISE = 0.05
"""A forgetting measure's move between ``NO_EFFECT_MARGIN`` and this counts only
where a paired t-test over 3+ seeds separates it from the original's (a few flipped
single-point decisions are not an effect); a larger move always counts."""
WORSE = "worse than original"
WORSE_MARGIN = 0.005
"""A row whose Avg. Gap (to the reference) exceeds the do-nothing original's by more
than 0.005 (half a percentage point) in its group is flagged ``worse than original``
and never ranked first: it ends further from exact unlearning than doing nothing
(finetune 39.2 against 33.9 on a backdoor request; GAN 46.1 against 45.4 on the
default board's backdoor group). The margin keeps rounding dust from flagging a row."""
NEVER_RANKED = ("collapsed", NO_EFFECT, WORSE)
"""The flags whose rows are never marked best and are listed last."""


@dataclass(frozen=True)
class Uninformative:
    """An attack that cannot tell the original's members from non-members in a group."""

    group: tuple[str, ...]  # dataset, architecture, request
    evaluator: str
    strength_metric: str
    strength: float
    threshold: float
    metrics: tuple[str, ...]  # the evaluator's attack metrics, now meaningless
    rows: tuple[int, ...]  # the group's row indices in the table (or the rows below)
    methods: tuple[str, ...] = ()  # only these rows (a per-row strength); () = the group

    def message(self) -> str:
        where = "/".join(self.group)
        if self.methods:
            return (
                f"the {self.evaluator} attack measures nothing for {', '.join(self.methods)} "
                f"on {where}: {self.strength_metric} = {self.strength:.3g} < "
                f"{self.threshold:g} in that row, so its {', '.join(self.metrics)} are not ranked"
            )
        return (
            f"the {self.evaluator} attack measures nothing on {where}: "
            f"{self.strength_metric} = {self.strength:.3g} < {self.threshold:g} on the original "
            f"model, so {', '.join(self.metrics)} are not ranked"
        )


def flag_collapsed(board: Leaderboard) -> None:
    """Set ``flags`` to ``collapsed`` where a utility metric falls more than the margin
    below the original's in the same group: in the mean over seeds, or in any one seed
    against that seed's original (a mean of two good seeds and one wrecked model is
    still a method that can wreck the model)."""
    utility = [m for m in board.metrics if board.role(m) == "utility"]
    table = board.table
    for _, group in table.groupby(GROUP_KEYS, sort=False):
        original = group[group["method"] == board.original]
        if original.empty:
            continue
        for metric in utility:
            floor = float(original[metric].iloc[0]) - board.collapse_margin
            if math.isnan(floor):
                continue
            fallen = group.index[group[metric].astype(float) < floor]
            table.loc[fallen, FLAGS] = "collapsed"
    for index in _collapsed_in_a_seed(board, utility):
        table.loc[index, FLAGS] = "collapsed"


def _collapsed_in_a_seed(board: Leaderboard, utility: list[str]) -> set[int]:
    """Rows of ``board.table`` with a seed whose utility falls more than the margin
    below the same seed's original in the same group."""
    per_seed = board.per_seed
    if per_seed.empty or not utility:
        return set()
    originals = per_seed[per_seed["method"] == board.original]
    keyed = [*GROUP_KEYS, "seed"]
    floors = originals[[*keyed, *utility]].set_index(keyed)
    found: set[int] = set()
    for _, row in per_seed.iterrows():
        key = tuple(row[k] for k in keyed)
        if row["method"] == board.original or key not in floors.index:
            continue
        floor = floors.loc[key]
        if any(float(row[m]) < float(floor[m]) - board.collapse_margin for m in utility):
            match = (board.table[KEYS] == pd.Series({k: row[k] for k in KEYS})).all(axis=1)
            found.update(int(i) for i in board.table.index[match])
    return found


def flag_no_effect(board: Leaderboard) -> None:
    """Set ``flags`` to ``no effect`` where no forgetting measure (the Avg. Gap
    metrics and every ``forgetting`` or ``attack`` metric) moved from the original's
    (the anchors themselves excluded): a measure moved when its mean is more than
    ``NO_EFFECT_MARGIN`` away and, unless it is more than ``NO_EFFECT_NOISE`` away,
    a paired t-test over the seeds (95%, with at least three shared seeds) separates
    it from the original's (a large move on three noisy seeds is not called no
    effect). A row that moves any one of them did something, whichever the Avg. Gap
    reads; a small difference the seeds do not separate (three flips in 150
    single-point LiRA decisions) is not an effect."""
    moved = [
        m
        for m in board.metrics
        if board.role(m) in ("forgetting", "attack") and not m.endswith("_gap")
    ]
    candidates = [*board.avg_gap_metrics, *moved]
    metrics = [m for m in dict.fromkeys(candidates) if m in board.table]
    if not metrics:
        return
    table = board.table
    per_seed: dict[object, pd.DataFrame] = {}
    if not board.per_seed.empty:
        per_seed = dict(list(board.per_seed.groupby(GROUP_KEYS, sort=False)))
    for key, group in table.groupby(GROUP_KEYS, sort=False):
        original = group[group["method"] == board.original]
        if original.empty:
            continue
        base = original[metrics].iloc[0].astype(float)
        have = [m for m in metrics if not math.isnan(float(base[m]))]
        if not have or any(m in board.avg_gap_metrics for m in metrics if m not in have):
            continue
        rows = group[~group["method"].isin([board.original, board.reference])]
        distance = (rows[have].astype(float) - base[have]).abs()
        close, large = distance.le(NO_EFFECT_MARGIN), distance.gt(NO_EFFECT_NOISE)
        seeds = _by_method(per_seed.get(key))
        base_seeds = seeds.get(board.original)
        for index in rows.index[rows[FLAGS] == ""]:
            mine = seeds.get(str(rows.at[index, "method"]))
            far = [m for m in have if not close.at[index, m]]
            if any(large.at[index, m] for m in far):
                continue  # a move this large is an effect, however noisy the seeds
            if not any(_separated(mine, base_seeds, m) for m in far):
                table.loc[index, FLAGS] = NO_EFFECT


def _by_method(seeds: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    """One group's per-seed rows, per method, indexed by seed."""
    if seeds is None:
        return {}
    return {str(m): rows.set_index("seed") for m, rows in seeds.groupby("method", sort=False)}


def _separated(mine: pd.DataFrame | None, base: pd.DataFrame | None, metric: str) -> bool:
    """Whether a row's per-seed values of ``metric`` differ from the original's by a
    two-sided paired t-test (95%); with fewer than three shared seeds (or no per-seed
    values) nothing can be tested and the margin alone decides (True)."""
    if mine is None or base is None or metric not in mine or metric not in base:
        return True
    a, b = mine[metric].dropna(), base[metric].dropna()
    if len(a.index.intersection(b.index)) < MIN_SEEDS:
        return True
    return paired_separated(a, b, True) or paired_separated(a, b, False)


def flag_worse_than_original(board: Leaderboard) -> None:
    """Set ``flags`` to :data:`WORSE` where a row's Avg. Gap exceeds the original's in
    its group by more than :data:`WORSE_MARGIN` (rows already flagged keep their flag:
    a collapsed model says more)."""
    table = board.table
    if AVG_GAP not in table:
        return
    for _, group in table.groupby(GROUP_KEYS, sort=False):
        original = group[group["method"] == board.original]
        if original.empty:
            continue
        floor = float(original[AVG_GAP].iloc[0])
        if math.isnan(floor):
            continue
        rows = group[~group["method"].isin([board.original, board.reference])]
        worse = rows[AVG_GAP].astype(float) > floor + WORSE_MARGIN
        table.loc[rows.index[worse & (rows[FLAGS] == "")], FLAGS] = WORSE


def original_wins(
    board: Leaderboard, column: str, original: float | None, best: float, direction: str
) -> bool:
    """Whether the original's value of ``column`` as ranked (the value, or its distance
    to the reference; ``None`` where it did not run) is at least as good as ``best``,
    the best method's: then no method wins that column over doing nothing, and none is
    marked. Time, storage and speed-ups (roles ``cost`` and ``speed``) are no contest:
    doing nothing costs nothing."""
    if board.role(column.removesuffix("_gap")) in ("speed", "cost"):
        return False
    if original is None or math.isnan(original):
        return False
    return original >= best if direction == "higher" else original <= best


def find_uninformative(board: Leaderboard) -> list[Uninformative]:
    """Per group, every evaluator whose attack strength is below its threshold.

    A strength measured on the original is the same in every row: when every
    row's mean is below, one item marks the group. One that differs between
    rows (measured on the model each method unlearns from) decides per row:
    where only some rows are below, an item per such row marks that row alone."""
    strengths = [(m, board.about[m]) for m in board.metrics if board.role(m) == "attack_strength"]
    found: list[Uninformative] = []
    if not strengths:
        return found
    for key, group in board.table.groupby(GROUP_KEYS, sort=False):
        for metric, about in strengths:
            values = group[metric].astype(float).dropna()
            if values.empty:
                continue
            threshold = float(about["informative_above"])
            below = values[values < threshold]
            if below.empty:
                continue
            evaluator = about.get("evaluator", "")
            attack = tuple(
                m
                for m in board.metrics
                if board.role(m) == "attack" and board.about[m].get("evaluator") == evaluator
            )
            where = tuple(str(k) for k in key)
            strength = float(values.mean())
            if len(below) == len(values):  # a strength of the original: always so
                found.append(
                    Uninformative(
                        where,
                        evaluator,
                        metric,
                        strength,
                        threshold,
                        attack,
                        tuple(int(i) for i in group.index),
                    )
                )
                continue
            for index, value in below.items():
                method = str(group.at[index, "method"])
                found.append(
                    Uninformative(
                        where,
                        evaluator,
                        metric,
                        float(value),
                        threshold,
                        attack,
                        (int(index),),
                        (method,),
                    )
                )
    return found
