"""Paired differences: per seed, a row's value minus the reference's (``_vs_ref``) and
minus the original's (``_vs_orig``) on the same seed, then the mean over seeds with
its 95% Student-t interval.

The seed's split and initialisation move every method of that seed alike, so the
difference per seed is far more precise than two unpaired means' intervals
suggest: on the MNIST-1D board test accuracies of 42-48% carry ±5-11 points of
unpaired interval, most of it shared. The headline shows these differences; the
unpaired mean ± interval stays in the details.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from unlearnbench.reports.gaps import GROUP_KEYS, KEYS
from unlearnbench.reports.stats import ci95, mean_or_nan

SUFFIXES = {"ref": "_vs_ref", "orig": "_vs_orig"}
PAIRED_ROLES = ("utility", "forgetting")
AGREEMENT_METRICS = ("consistency",)
"""Metrics that measure agreement with the reference model's predictions; no role
says so, hence this short list (the only metric names the reports know)."""


def paired_metrics(metrics: list[str], about: dict[str, dict[str, Any]]) -> list[str]:
    """The metrics whose paired differences a board computes: the headline's plain
    values (``utility`` and ``forgetting`` roles, agreement), not gaps or ratios."""
    return [
        m for m in metrics if about.get(m, {}).get("role") in PAIRED_ROLES or m in AGREEMENT_METRICS
    ]


def paired_columns(metric: str) -> tuple[str, str]:
    """The table columns of ``metric``'s paired differences to the reference and original."""
    return f"{metric}{SUFFIXES['ref']}", f"{metric}{SUFFIXES['orig']}"


def with_paired(
    table: pd.DataFrame,
    per_seed: pd.DataFrame,
    metrics: list[str],
    anchors: dict[str, str],
) -> pd.DataFrame:
    """Add ``<metric>_vs_ref`` and ``<metric>_vs_orig`` (each with ``_ci95`` when the
    row has two or more paired seeds) for ``metrics``; ``anchors`` maps ``ref`` and
    ``orig`` to their method labels. Rows without an anchor run get missing values."""
    present = [m for m in metrics if m in per_seed]
    if per_seed.empty or not present:
        return table
    records: dict[tuple[Any, ...], dict[str, float]] = {}
    for tag, method in anchors.items():
        base = per_seed[per_seed["method"] == method][[*GROUP_KEYS, "seed", *present]]
        merged = per_seed.merge(base, on=[*GROUP_KEYS, "seed"], how="inner", suffixes=("", "@a"))
        for key, group in merged.groupby(KEYS, sort=False):
            record = records.setdefault(tuple(key), {})
            for metric in present:
                diff = group[metric].astype(float) - group[f"{metric}@a"].astype(float)
                column = f"{metric}{SUFFIXES[tag]}"
                record[column] = mean_or_nan(diff)
                if diff.notna().sum() >= 2:
                    record[f"{column}_ci95"] = ci95(diff)
    if not records:
        return table
    frame = pd.DataFrame([{**dict(zip(KEYS, k, strict=True)), **v} for k, v in records.items()])
    with_ci = any(c.endswith("_ci95") for c in table.columns)  # as the means: 2+ seeds
    suffixes = ("", "_ci95") if with_ci else ("",)
    wanted = [f"{c}{s}" for m in present for c in paired_columns(m) for s in suffixes]
    frame = frame.reindex(columns=[*KEYS, *wanted])
    out = table.merge(frame, on=KEYS, how="left")
    out.index = table.index
    return out
