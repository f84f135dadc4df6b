"""Ranking across tasks: a Friedman test over every group of a board and the Nemenyi
critical difference, one per headline measure (forgetting, utility, speed).

A block is one seed of one group (dataset, architecture, request): every seed is
an independent run of every method (its own split, initialisation and forget
set), so a board of G groups and S seeds ranks over G·S blocks (``blocks =
"seeds"``, the default); ``blocks = "groups"`` ranks over the groups' means
instead (Demšar's datasets-as-blocks reading; a board of three groups then
separates almost nothing). In a block the unlearning methods (not the anchors)
are ranked (1 = best, ties averaged): utility by its value (higher is better),
forgetting by the distance of its value to the reference's on the same block
(closer is better), speed by the work-based speed-up over the reference
(higher is better). The Friedman test
(:func:`scipy.stats.friedmanchisquare`) asks whether the average ranks differ at
all; the Nemenyi post-hoc test (scikit-posthocs' ``posthoc_nemenyi_friedman``,
Demšar 2006) says which pairs do: two methods differ at 95% when their average
ranks differ by more than the critical difference
``CD = q_0.05(k, ∞)/√2 · √(k(k+1)/(6N))`` for k methods over N groups. The
diagram is scikit-posthocs' ``critical_difference_diagram``.

A method missing from a block, without a value there or flagged in its group
(collapsed, no effect, worse than original: never ranked, as in the tables) is
left out of that measure's ranking (and named); fewer than ``MIN_GROUPS`` blocks
or ``MIN_METHODS`` methods rank nothing ("not enough groups").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from unlearnbench.reports.gaps import GROUP_KEYS, KEYS
from unlearnbench.reports.headline import speed_metrics
from unlearnbench.reports.stats import LEVEL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from unlearnbench.reports.board import Leaderboard

MIN_GROUPS = 2
MIN_METHODS = 3  # the Friedman test compares three or more
MEASURES = ("forgetting", "utility", "speed")
BLOCKS = ("seeds", "groups")  # what one Friedman block is: a seed of a group, or a group
CAPTION = "Critical-difference diagrams across tasks (Friedman, Nemenyi at 95%)"


@dataclass
class CrossRank:
    """One measure's ranking over a board's groups."""

    measure: str
    column: str = ""
    ranks: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))  # method -> avg
    groups: int = 0  # blocks ranked over (a seed of a group, or a group; see ``blocks``)
    blocks: str = "seeds"
    statistic: float = math.nan
    pvalue: float = math.nan
    cd: float = math.nan
    pairwise: pd.DataFrame = field(default_factory=pd.DataFrame)  # Nemenyi p-values
    left_out: list[str] = field(default_factory=list)
    reason: str = ""  # why nothing is ranked, else ""

    def separated(self, method: str) -> list[str]:
        """The methods whose average rank differs from ``method``'s by more than CD;
        none unless the Friedman test rejected equal ranks first (Demšar 2006)."""
        if self.ranks.empty or math.isnan(self.cd) or not self.pvalue < LEVEL:
            return []
        mine = float(self.ranks[method])
        return [str(m) for m, r in self.ranks.items() if abs(float(r) - mine) > self.cd + 1e-12]


def measure_column(board: Leaderboard, measure: str) -> tuple[str, str] | None:
    """(column, direction) a measure ranks by, from the metrics' roles; None without."""
    if measure == "speed":
        speeds = speed_metrics(board)
        return (speeds[0], "higher") if speeds else None
    found = [m for m in board.metrics if board.role(m) == measure]
    if not found:
        return None
    return found[0], board.directions.get(found[0], "none")


def critical_difference(k: int, n: int, level: float = LEVEL) -> float:
    """Nemenyi's critical difference for ``k`` methods over ``n`` blocks (Demšar 2006)."""
    q = float(stats.studentized_range.ppf(1 - level, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6.0 * n))


def scores(board: Leaderboard, column: str, direction: str) -> pd.DataFrame:
    """Blocks x methods: the value ranked, oriented so that lower is better; a method
    flagged (collapsed, no effect, worse than original) in a group has none in its
    blocks (it is never ranked, as in the tables)."""
    flagged = {tuple(board.table.loc[i, KEYS]) for i in board.collapsed_rows()}
    by_seed = board.rank_blocks == "seeds"
    frame = board.per_seed if by_seed else board.table
    if column not in frame:
        return pd.DataFrame()
    rows = {}
    for key, block in frame.groupby([*GROUP_KEYS, "seed"] if by_seed else GROUP_KEYS, sort=False):
        values = block[column].astype(float)
        values[[tuple(k) in flagged for k in block[KEYS].itertuples(index=False)]] = math.nan
        values.index = block["method"]  # one row a method: the frames are pivoted
        if direction == "none":
            reference = values.get(board.reference, math.nan)
            values = (values - reference).abs()
        elif direction == "higher":
            values = -values
        values = values.drop([board.reference, board.original], errors="ignore")
        label = [str(k) for k in key]
        if by_seed:
            label[-1] = f"seed {label[-1]}"
        rows[" / ".join(label)] = values
    return pd.DataFrame(rows).T


def rank(board: Leaderboard, measure: str) -> CrossRank:
    """One measure's Friedman test, average ranks and Nemenyi critical difference."""
    out = CrossRank(measure, blocks=board.rank_blocks)
    chosen = measure_column(board, measure)
    if chosen is None or board.table.empty:
        out.reason = f"no {measure} metric"
        return out
    out.column = chosen[0]
    matrix = scores(board, *chosen)
    matrix = matrix.dropna(axis=0, how="all")
    complete = matrix.dropna(axis=1)
    out.left_out = [str(m) for m in matrix.columns if m not in complete.columns]
    out.groups = len(complete)
    if len(complete) < MIN_GROUPS or complete.shape[1] < MIN_METHODS:
        kind = _block_name(out.blocks)
        out.reason = (
            f"not enough groups: {len(complete)} {kind}(s) and {complete.shape[1]} method(s) "
            f"with a value in every {kind} (the test needs {MIN_GROUPS}+ {kind}s and "
            f"{MIN_METHODS}+ methods)"
        )
        return out
    ranks = complete.rank(axis=1, method="average")
    out.ranks = ranks.mean(axis=0).sort_values(kind="stable")
    if (complete.nunique(axis=1) <= 1).all():
        out.statistic, out.pvalue = 0.0, 1.0  # every group ties every method
    else:
        result = stats.friedmanchisquare(*(complete[c].to_numpy() for c in complete.columns))
        out.statistic, out.pvalue = float(result.statistic), float(result.pvalue)
    out.cd = critical_difference(complete.shape[1], len(complete))
    import scikit_posthocs as sp  # imports pyplot and seaborn: only when ranking

    pairwise = sp.posthoc_nemenyi_friedman(complete.to_numpy())
    pairwise.index = pairwise.columns = [str(c) for c in complete.columns]
    out.pairwise = pairwise
    return out


def rank_all(board: Leaderboard) -> list[CrossRank]:
    return [rank(board, measure) for measure in MEASURES]


def summary(result: CrossRank) -> str:
    """One line: the test, its result and the critical difference."""
    if result.reason:
        return f"{result.measure}: {result.reason}."
    verdict = "the methods' ranks differ" if result.pvalue < LEVEL else "no difference shown"
    missing = ", ".join(result.left_out)
    kind = _block_name(result.blocks)
    left = f"; left out (flagged or missing in a {kind}): {missing}" if missing else ""
    return (
        f"{result.measure} (by {result.column}): Friedman χ² = {result.statistic:.3g}, "
        f"p = {_p(result.pvalue)} over {result.groups} {kind}s and {len(result.ranks)} methods "
        f"({verdict} at 95%); Nemenyi critical difference CD = {result.cd:.3g}{left}"
    )


def _block_name(blocks: str) -> str:
    return "group-seed block" if blocks == "seeds" else "group"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3g}"


def legend(blocks: str = "seeds") -> str:
    """What the across-task tables show, for ``blocks`` (see :data:`BLOCKS`)."""
    block = (
        "each seed of each group is one block (an independent run of every method: its own "
        "split, initialisation and forget set)"
        if blocks == "seeds"
        else "each group is one block (its methods' means over seeds)"
    )
    return (
        f"Across tasks: {block}, its unlearning methods ranked 1 (best) to k (ties "
        "averaged); utility higher is better, forgetting closest to the reference is better, "
        "speed by the work speed-up. The Friedman test asks whether the average ranks "
        "differ; two methods differ at 95% (Nemenyi) when their average ranks differ by more "
        "than CD, tested only where the Friedman test rejects equal ranks. 'Differs from': "
        "the methods a row is separated from; the others tie with it."
    )


def table_rows(result: CrossRank) -> list[list[str]]:
    """Position, method, average rank, the methods separated from it (beyond CD)."""
    return [
        [
            str(i + 1),
            str(method),
            f"{float(r):.2f}",
            ", ".join(result.separated(str(method))) or "–",
        ]
        for i, (method, r) in enumerate(result.ranks.items())
    ]


HEADERS = ["#", "method", "average rank", "differs from (Nemenyi, 95%)"]


def diagram(board: Leaderboard) -> Figure | None:
    """One critical-difference diagram per measure that ranks (None when none does)."""
    from matplotlib.figure import Figure

    results = [r for r in rank_all(board) if not r.reason]
    if not results:
        return None
    import scikit_posthocs as sp

    height = sum(1.2 + 0.17 * len(r.ranks) for r in results)  # labels stack per side
    figure = Figure(figsize=(8, height), layout="constrained")
    axes = figure.subplots(len(results), 1, squeeze=False).ravel()
    for ax, result in zip(axes, results, strict=True):
        ranks: dict[str, Any] = {str(m): float(r) for m, r in result.ranks.items()}
        sp.critical_difference_diagram(ranks, result.pairwise, ax=ax, alpha=LEVEL)
        ax.set_title(
            f"{result.measure} ({result.column}): Friedman p = {_p(result.pvalue)}, "
            f"CD = {result.cd:.2f} over {result.groups} {_block_name(result.blocks)}s",
            fontsize=9,
        )
    figure.suptitle(CAPTION, fontsize=10)
    return figure
