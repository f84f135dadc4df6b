"""DeepObliviate's maths: residual memory, the DFA stopping rule, model stitching.

Pure functions over state dicts and float series, kept apart from the plugin so
they can be tested and reused on their own (paper 002, Sections III-IV).

- :func:`residual_memory` is Eq. 5: ``Δ_k = ‖(P_k − P_{k−1}) − (P'_k − P'_{k−1})‖₁``
  over the trainable parameters.
- :class:`StopRule` is Algorithm 1, lines 10-15: the DFA exponent ``h`` of
  the Δ series (``nolds.dfa``), a least-squares fit of ``a·x^(−h) + b`` over
  the block order x (Eq. 6), the fitted curve's slope ``−a·h·x^(−h−1)`` at the
  last block compared with ε, plus a guard against rising series.
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

    ``nolds.dfa`` needs 4+ points, and below 11 it fits its log-log line
    through just two window sizes (n−2, n−1) and warns that the result is
    "extremely unreliable": on 4-10 points of a clean 1/x decay it returns
    anything from 0.8 to 82, negative values on a drop followed by a flat
    line. From 11 points on it uses the windows 4..9 and settles (about 1.5-1.8
    on 1/x, 2.2 on a straight rising line, 0.2-1.0 on white noise). So series
    shorter than ``min_points`` use ``fallback_h``, and so do series where DFA
    gives no positive finite exponent (constant series: every fluctuation is
    zero; h ≤ 0 would make a·x^(−h) a rising curve, not a decay). The final
    line fit uses ordinary least squares (``fit_exp="poly"``) rather than
    nolds' default RANSAC, which draws random numbers and would make stopping
    irreproducible.
    """
    if len(series) < max(min_points, 4):
        return fallback_h, False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nolds 0.6.2 imports the deprecated pkg_resources
        import nolds  # imported lazily: it is slow to import

        h = float(nolds.dfa(np.asarray(series, dtype=np.float64), fit_exp="poly"))
    if not math.isfinite(h) or h <= 0:
        return fallback_h, False
    return h, True


def fit_power_law(series: Sequence[float], h: float, first_x: float = 1.0) -> tuple[float, float]:
    """Eq. 6: least-squares ``a, b`` of ``a·x^(−h) + b`` on x = first_x, first_x + 1, ...

    Closed form on centred data, so a constant series gives exactly ``a = 0``.
    """
    y = np.asarray(series, dtype=np.float64)
    if y.size == 0:
        raise ValueError("fit_power_law needs at least one value")
    x = first_x + np.arange(y.size, dtype=np.float64)
    scale = x[-1] ** (-h)
    u = (x / x[-1]) ** (-h)  # x^(−h) / x_end^(−h): well scaled for large block orders
    du = u - u.mean()
    spread = float(du @ du)
    a_scaled = float(du @ (y - y[0]) / spread) if spread > 0 else 0.0
    b = float(y.mean() - a_scaled * u.mean())
    return float(a_scaled / scale), b


@dataclass(frozen=True)
class Stationarity:
    """One evaluation of the stopping rule on a Δ series.

    ``x`` is where the fitted curve's derivative was taken (the last point's
    x), ``n`` the series length, ``slope`` the signed derivative
    ``−a·h·x^(−h−1)`` there. ``used_dfa`` says whether ``h`` came from
    nolds.dfa (else from the fallback). ``rising`` is the guard: the fitted
    curve increases (a < 0) or the newest Δ is above every earlier one.
    ``stop`` is the decision.
    """

    x: float
    n: int
    h: float
    a: float
    b: float
    slope: float
    used_dfa: bool
    rising: bool
    stop: bool


POWER_LAW_X = ("block_order", "from_one")
GUARDS = ("not_rising", "none")


@dataclass(frozen=True)
class StopRule:
    """Algorithm 1, lines 10-15: is the Δ series stationary enough to stop retraining?

    ``h`` is ``nolds.dfa`` of the series (``fallback_h`` below ``dfa_min_points``
    points, see :func:`dfa_exponent`); ``a, b`` the least-squares fit of
    ``a·x^(−h) + b`` (Eq. 6); the rule stops when ``|a·h·x^(−h−1)| < epsilon``
    at the last point. ``power_law_x="block_order"`` (the paper: "x is the
    order of block") puts the series at x = d, d+1, ... where d is the 1-based
    order of its first block among the B blocks; ``"from_one"`` at x = 1, 2, ...

    Never before ``min_points`` values. ``guard="not_rising"`` (the default; the
    paper has no such guard) also requires that the series is not rising: the
    fitted curve must not increase (a ≥ 0; h is always > 0) and the newest Δ
    must not exceed every earlier Δ. A rising Δ means the deleted points'
    influence is growing, which the paper's ``|slope|`` alone would accept
    whenever the rise is slow. A flat series (a = 0) and a noisy plateau pass
    the guard as soon as the noise puts the newest value below an earlier one
    and the fit does not tilt upwards. ``guard="none"`` is the literal rule.
    """

    epsilon: float
    min_points: int = 3
    dfa_min_points: int = 11
    fallback_h: float = 1.0
    power_law_x: str = "block_order"
    guard: str = "not_rising"

    def __post_init__(self) -> None:
        if self.power_law_x not in POWER_LAW_X:
            raise ValueError(f"power_law_x must be one of {list(POWER_LAW_X)}")
        if self.guard not in GUARDS:
            raise ValueError(f"guard must be one of {list(GUARDS)}")

    def test(self, series: Sequence[float], first_block: int) -> Stationarity:
        """The rule on ``series``, whose first value belongs to block ``first_block`` (1-based)."""
        y = np.asarray(series, dtype=np.float64)
        first_x = float(first_block) if self.power_law_x == "block_order" else 1.0
        h, used_dfa = dfa_exponent(series, self.dfa_min_points, self.fallback_h)
        a, b = fit_power_law(series, h, first_x)
        x = first_x + y.size - 1
        slope = float(-a * h * x ** (-h - 1.0))
        rising = bool(a < 0 or (y.size > 1 and y[-1] > y[:-1].max()))
        stop = bool(
            y.size >= self.min_points
            and abs(slope) < self.epsilon
            and not (rising and self.guard == "not_rising")
        )
        return Stationarity(
            x=x,
            n=int(y.size),
            h=h,
            a=a,
            b=b,
            slope=slope,
            used_dfa=used_dfa,
            rising=rising,
            stop=stop,
        )

    def first_stop(
        self, series: Sequence[float], first_block: int, shortest: int = 0
    ) -> int | None:
        """How many values of ``series`` are retrained before the rule stops (None: never).

        Replays the on-the-fly rule on a recorded series: retraining is
        deterministic, so the first ``k`` Δ do not depend on when it stops.
        ``shortest`` is the fewest values retraining must cover anyway (up to
        the last block holding deleted points).
        """
        for k in range(max(self.min_points, shortest), len(series) + 1):
            if self.test(series[:k], first_block).stop:
                return k
        return None


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
