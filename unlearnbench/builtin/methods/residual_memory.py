"""DeepObliviate's maths: residual memory, the DFA stopping rule, model stitching.

Pure functions over state dicts and float series, kept apart from the plugin so
they can be tested and reused on their own (paper 002, Sections III-IV).

- :func:`residual_memory` is Eq. 5: ``Δ_k = ‖(P_k − P_{k−1}) − (P'_k − P'_{k−1})‖₁``
  over the trainable parameters.
- :func:`stationarity` is Algorithm 1, lines 10-14: the DFA exponent ``h`` of
  the Δ series (``nolds.dfa``), a least-squares fit of ``a·x^(−h) + b`` and the
  fitted curve's slope ``a·h·x^(−h−1)`` at the last point.
- :func:`stitch` is Eq. 8, ``M' = P'_{d+t} + (P_B − P_{d+t})``, and
  :func:`shift` moves a stored checkpoint by the same offset (for the next
  deletion of a request stream).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

StateDict = Mapping[str, torch.Tensor]
NORMALISATIONS = ("first", "per_param", "none")


def residual_memory(
    before: StateDict,
    after: StateDict,
    before_new: StateDict,
    after_new: StateDict,
    names: Iterable[str],
) -> float:
    """Eq. 5: the L1 distance between the stored and the retrained block update."""
    total = 0.0
    with torch.no_grad():
        for name in names:
            old_step = after[name] - before[name]
            new_step = after_new[name] - before_new[name]
            total += float((old_step - new_step).abs().sum(dtype=torch.float64))
    return total


def normalise(series: Sequence[float], mode: str, num_params: int) -> list[float]:
    """Put a raw Δ series on a scale where the paper's ε (0.02-0.1) means something.

    ``first`` divides by Δ at the first retrained block (the series starts at 1;
    the default), ``per_param`` by the number of trainable parameters (mean
    absolute difference per parameter), ``none`` keeps raw L1 sums.
    """
    if mode == "none":
        return [float(v) for v in series]
    if mode == "per_param":
        scale = float(max(num_params, 1))
    elif mode == "first":
        scale = float(series[0]) if series and series[0] > 0 else 1.0
    else:
        raise ValueError(f"normalise must be one of {list(NORMALISATIONS)}, got {mode!r}")
    return [float(v) / scale for v in series]


def dfa_exponent(series: Sequence[float], min_points: int, fallback_h: float) -> tuple[float, bool]:
    """The DFA exponent of ``series`` and whether nolds computed it.

    ``nolds.dfa`` needs 4+ points and itself warns that fewer than 10 are
    unreliable, so series shorter than ``min_points`` (and series where DFA is
    undefined, e.g. constant ones) use ``fallback_h``. The final line fit uses
    ordinary least squares (``fit_exp="poly"``) rather than nolds' default
    RANSAC, which draws random numbers and would make stopping irreproducible.
    """
    if len(series) < max(min_points, 4):
        return fallback_h, False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nolds 0.6.2 imports the deprecated pkg_resources
        import nolds  # imported lazily: it is slow to import

        h = float(nolds.dfa(np.asarray(series, dtype=np.float64), fit_exp="poly"))
    if not math.isfinite(h):
        return fallback_h, False
    return h, True


def fit_power_law(series: Sequence[float], h: float) -> tuple[float, float]:
    """Eq. 6: least-squares ``a, b`` of ``a·x^(−h) + b`` on x = 1..n (1-based)."""
    y = np.asarray(series, dtype=np.float64)
    x = np.arange(1, y.size + 1, dtype=np.float64)
    design = np.stack([x ** (-h), np.ones_like(x)], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(a), float(b)


@dataclass(frozen=True)
class Stationarity:
    """One evaluation of the stopping rule on a Δ series of length ``x``."""

    x: int
    h: float
    a: float
    b: float
    slope: float
    used_dfa: bool


def stationarity(series: Sequence[float], min_points: int, fallback_h: float) -> Stationarity:
    """Algorithm 1, lines 10-14: ``|a·h·x^(−h−1)|`` at the last point of ``series``."""
    h, used_dfa = dfa_exponent(series, min_points, fallback_h)
    a, b = fit_power_law(series, h)
    x = len(series)
    slope = abs(a * h * x ** (-h - 1.0))
    return Stationarity(x=x, h=h, a=a, b=b, slope=slope, used_dfa=used_dfa)


def stitch(retrained: StateDict, final: StateDict, replaced: StateDict) -> dict[str, torch.Tensor]:
    """Eq. 8 entry by entry: ``retrained + (final − replaced)``.

    Floating-point entries (parameters and BatchNorm running statistics) and
    integer counters (``num_batches_tracked``: the retrained count plus the
    batches of the stitched-on blocks) are stitched exactly; other dtypes
    (bool) are taken from ``retrained``.
    """
    out = {}
    with torch.no_grad():
        for name, value in retrained.items():
            if value.is_floating_point() or _is_integer(value):
                out[name] = value + (final[name] - replaced[name])
            else:
                out[name] = value.clone()
    return out


def shift(stored: StateDict, new: StateDict, old: StateDict) -> dict[str, torch.Tensor]:
    """``stored + (new − old)``: a later checkpoint moved by the stitching offset."""
    return stitch(stored, new, old)


def state_bytes(states: Iterable[object]) -> int:
    """Bytes of every tensor found in (nested) dicts and lists."""
    total = 0
    for item in states:
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, Mapping):
            total += state_bytes(item.values())
        elif isinstance(item, list | tuple):
            total += state_bytes(item)
    return total


def _is_integer(value: torch.Tensor) -> bool:
    return not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
