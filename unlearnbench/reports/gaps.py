"""Gaps to the reference: per seed, paired with the reference's run on the same
seed, then the mean over seeds with its 95% interval; and SalUn's Avg. Gap over
the metrics their evaluators declare in it (``Metric.avg_gap`` and
``Metric.mia_gap``). See docs/leaderboards.md."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from unlearnbench.reports.stats import ci95, mean_or_nan

if TYPE_CHECKING:
    from unlearnbench.reports.board import Leaderboard

KEYS = ["dataset", "architecture", "method", "request"]
GROUP_KEYS = ["dataset", "architecture", "request"]
AVG_GAP = "avg_gap"


def avg_gap_metrics(metrics: list[str], about: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The metrics averaged in Avg. Gap, as their evaluators declared them: every
    ``avg_gap`` metric present (in the board's order), then the one membership-attack
    rate of lowest ``mia_gap`` rank (two attacks measuring the same share count once)."""
    chosen = [m for m in metrics if about.get(m, {}).get("avg_gap")]
    attacks = [m for m in metrics if about.get(m, {}).get("mia_gap") is not None]
    if attacks:
        chosen.append(min(attacks, key=lambda m: int(about[m]["mia_gap"])))
    return chosen


def with_gaps(
    table: pd.DataFrame,
    per_seed: pd.DataFrame,
    gap_metrics: list[str],
    avg_metrics: list[str],
    reference: str,
) -> pd.DataFrame:
    """Add ``<metric>_gap`` (and ``avg_gap``) columns, each the mean over seeds of the
    per-seed gap ``|value - reference's value on the same seed|`` with its 95%
    interval: one convention for every gap, the accuracies' and the attacks' alike
    (an evaluator's own ``X_gap`` metric is already that mean of per-seed gaps)."""
    seeds = per_seed_gaps(per_seed, gap_metrics, avg_metrics, reference)
    columns = [c for c in seeds.columns if c not in (*KEYS, "seed")]
    with_ci = any(c.endswith("_ci95") for c in table.columns)  # as the means: 2+ seeds
    records = []
    for key, group in seeds.groupby(KEYS, sort=False):
        record: dict[str, Any] = dict(zip(KEYS, key, strict=True))
        for column in columns:
            record[column] = mean_or_nan(group[column])
            if with_ci and group["seed"].nunique() >= 2:
                record[f"{column}_ci95"] = ci95(group[column])
        records.append(record)
    wanted = [f"{c}{suffix}" for c in columns for suffix in ("", "_ci95")[: 1 + with_ci]]
    out = table.merge(pd.DataFrame(records, columns=[*KEYS, *wanted]), on=KEYS, how="left")
    out.index = table.index
    if AVG_GAP in out:  # a placeholder anchor row (0 seeds) has no Avg. Gap
        out.loc[out["seeds"] == 0, [c for c in (AVG_GAP, f"{AVG_GAP}_ci95") if c in out]] = math.nan
    return out


def per_seed_gaps(
    per_seed: pd.DataFrame, gap_metrics: list[str], avg_metrics: list[str], reference: str
) -> pd.DataFrame:
    """KEYS + seed + one ``<metric>_gap`` per gap metric (and ``avg_gap``): each cell's
    distance to the reference's cell of the same group and seed (paired by seed). The
    Avg. Gap of a seed is the mean of that seed's gaps over ``avg_metrics`` present
    (an evaluator's ``X_gap`` value where it reports one)."""
    present = [m for m in gap_metrics if m in per_seed]
    if per_seed.empty:
        return pd.DataFrame(columns=[*KEYS, "seed"])
    ref = per_seed[per_seed["method"] == reference][[*GROUP_KEYS, "seed", *present]]
    merged = per_seed.merge(ref, on=[*GROUP_KEYS, "seed"], how="left", suffixes=("", "@ref"))
    out = merged[[*KEYS, "seed"]].copy()
    for metric in present:
        out[f"{metric}_gap"] = (
            merged[metric].astype(float) - merged[f"{metric}@ref"].astype(float)
        ).abs()
    if avg_metrics:
        parts = []
        for metric in avg_metrics:
            name = f"{metric}_gap"
            source = out if name in out else merged
            parts.append(
                source[name].astype(float)
                if name in source
                else pd.Series(float("nan"), index=out.index)
            )
        out[AVG_GAP] = pd.concat(parts, axis=1).mean(axis=1)
    return out


def gap_columns(board: Leaderboard) -> list[str]:
    """The gap columns shown: those averaged in ``avg_gap``, ``avg_gap``, the others."""
    main = [f"{m}_gap" for m in board.avg_gap_metrics]
    rest = [f"{m}_gap" for m in board.gap_metrics if m not in board.avg_gap_metrics]
    return [*main, AVG_GAP, *rest] if main else rest


def gap_legend(board: Leaderboard) -> str:
    used = ", ".join(board.avg_gap_metrics) or "none present"
    return (
        f"Gap to {board.reference}: per seed, |a row's value - {board.reference}'s value on "
        "the same seed| (paired), then the mean over seeds ± its 95% interval; lower is "
        f"closer to exact unlearning. avg_gap is SalUn's Avg. Gap: per seed, the mean of "
        f"the gaps over {used}, then the mean over seeds. Every gap, accuracies' and "
        "attacks' alike, follows this one convention."
    )
