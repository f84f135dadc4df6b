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
