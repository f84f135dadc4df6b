"""Statistics over seeds: the mean, the 95% Student-t interval, and the geometric
mean of ratios with its interval on the log scale."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% Student-t interval of the mean (nan below 2 values)."""
    clean = values.dropna()
    n = len(clean)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * clean.std(ddof=1) / math.sqrt(n))


def mean_or_nan(values: pd.Series) -> float:
    return float(values.mean()) if values.notna().any() else float("nan")


def geometric_mean_ci95(values: pd.Series) -> tuple[float, float]:
    """Geometric mean of positive ratios and the multiplicative factor of its 95%
    interval (Student's t on the log scale): the interval is ``[mean / f, mean * f]``.

    Ratios (speed-ups) must not be averaged arithmetically: per-seed 364, 364 and
    20 average to 249 but the geometric mean is 138, and one slow seed cannot
    be cancelled by a fast one. Non-positive values have no logarithm: nan.
    """
    clean = values.dropna().astype(float)
    if clean.empty or (clean <= 0).any():
        return float("nan"), float("nan")
    logs = np.log(clean)
    half = ci95(logs)
    return float(np.exp(logs.mean())), float(np.exp(half)) if not math.isnan(half) else half


LEVEL = 0.05
"""Two-sided level of every paired test (95%)."""
MIN_SEEDS = 3
"""A group with a row of fewer seeds is warned about; a paired test needs this many to
call a small move no effect (:func:`unlearnbench.reports.flags.flag_no_effect`)."""


def paired_separated(best: pd.Series, other: pd.Series, higher: bool) -> bool:
    """Whether ``best`` beats ``other`` at 95% in a two-sided paired t-test over the
    seeds both have (both indexed by seed).

    Fewer than two shared seeds separate nothing; a constant nonzero difference
    (no spread) separates, a zero one does not."""
    a, b = best.align(other, join="inner")
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = len(x)
    if n < 2:
        return False
    diff = (x - y) if higher else (y - x)
    mean, sd = float(diff.mean()), float(diff.std(ddof=1))
    scale = 1e-12 * max(1.0, float(np.abs(np.concatenate([x, y])).max()))
    if sd <= scale:
        return mean > scale
    t = mean / (sd / math.sqrt(n))
    p = 2.0 * float(stats.t.sf(abs(t), n - 1))  # as scipy.stats.ttest_rel
    return mean > 0 and p < LEVEL
