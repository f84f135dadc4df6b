"""``unlearning_score``: the NeurIPS 2023 Machine Unlearning challenge's score.

Source: Triantafillou, Kairouz, Pedregosa, Hayes, Kurmanji, Zhao, Dumoulin,
Jacques Junior, Mitliagkas, Wan, Sun, Wang, Escalera, Guyon, "Are we making
progress in unlearning? Findings from the first NeurIPS unlearning
competition" (2024), Section 3, and its released evaluation code,
``google-deepmind/unlearning_evaluation`` (``metric.py``: per-example ε and
the forget score; ``main.py``: the utility adjustment), which reproduces the
Kaggle evaluation.

What it measures. N replicates of the cell (``inputs.replicates``): each
trains an original with its own seed, runs the method under test on it
(``unlearned``) and the reference (``retrained``). For each forget example
the logit-scaled confidence φ = log(p_y / (1 - p_y)) of the N unlearned and
the N retrained models are two samples; the challenge's attacks try to tell
them apart with decision rules on φ, and each rule's false positive and false
negative rates (FPR, FNR) give an (ε, δ) lower bound, δ = 1e-5::

    ε(rule) = max(log(1 - δ - FPR) - log(FNR), log(1 - δ - FNR) - log(FPR)), clipped at 0

as in ``metric.py``: a rule with FPR = FNR = 0 (the samples separate
perfectly) gives ε = ∞, a rule with exactly one of them 0 is discarded (too
few samples to trust it), and the example's ε is the largest over rules,
capped at 50. When one sample's range is under 1% of the other's (the method
produces nearly the same φ every time, "peaky"), ε = 50 outright. Each ε
earns points by 0.5-wide bins from 0: 1, 1/2, 1/4, ... up to
``ceil(ln(N - 1))`` (the largest ε N models can resolve), 0 beyond; the
forget quality F (``unlearning_forget_quality``) is the mean over forget
examples (1 = every example's ε below 0.5; see the ceiling below). The score is::

    unlearning_score = F x (mean retain accuracy of the unlearned replicates
                            / that of the retrained)
                         x (the same ratio of test accuracies)

The ceiling at N. F = 1 needs every example's ε below 0.5, and two samples of
N models from the *same* distribution rarely give that: the best of many rules
finds a chance difference. A method indistinguishable from retraining scores
far below 1, and no higher with more models under these exhaustive rules:
simulated with this code (per example, both sides N draws of one Gaussian, 100
examples, 5 repeats), F = 0.173 / 0.121 / 0.092 / 0.073 at N = 8 / 16 / 32 /
64 (issue 23's simulation: 0.172 at 8, 0.186 with the challenge's grid rules;
single thresholds alone give about 0.3 from 8 to 512). Comparing retrain's
replicates with themselves would give exactly 1 (every ε = 0), a number no
other method can reach. So when the cell's
method is the reference, its unlearned side (label ``"replicate"``) is scored
against retrain replicates of another label (``"replicate-independent"``,
other training randomisations): the reference's row shows the ceiling reachable
at this N, and the other rows are read against it, not against 1. See
``replicate_sides.py``.

The method's own naive retraining. A method that changes the training
procedure (SISA, DeepObliviate: it defines ``naive``) is exact, or close to
it, under its own procedure, not against standard retraining, so it also gets
``unlearning_score_naive`` and ``unlearning_forget_quality_naive``: the same
score with its unlearned replicates against the ``naive`` models of
independent replicates (its procedure retrained without the forget set),
utility ratios against those too. Methods without ``naive`` have no such
metric. Role-less, like ``naive_consistency``, so boards do not rank them.

Rules. The challenge scans, on a 0.01 grid, single thresholds (φ >= t) and
intervals around the peakier sample (widths within ±2 of its range). Here
every single threshold and every interval [l, h] with ends at observed values
(or ±∞), and their complements, are scanned exactly: the same families
without the grid and the width limit, so ε is at least the challenge's (a
slightly stronger attack) and needs no GPU.

Deviation. The challenge unlearned N times from *one* original, the
randomness coming from the unlearning run alone. Methods here are
deterministic for a seed, so N runs from one original would be identical
(ε = 50 for every method but retrain); each replicate therefore starts from
its own original (the U-LiRA protocol of Hayes et al. 2024), which measures
the method across training randomisations, as the retrained sample already is.

Cost and N. ``models = 8`` by default: per task and method 8 originals, 8
method runs and 8 retrainings (the retrainings and originals are shared by
every method through the artifact cache, and everything by re-runs), reported
as ``unlearning_score_sample_passes``; the reference's row adds 8 independent
originals and retrainings, a method with ``naive`` 8 independent replicates
with their naive models (their originals and retrainings shared with the
reference's). With 8 models an example scores one of
5 values (ε resolvable up to 2): coarse and noisy; the challenge used 512
models per side. Below 8 the evaluator warns; it needs at least 3 (with 2,
``ceil(ln 1) = 0`` leaves no bin). The evaluated cell's own model is not one
of the samples: the score is the method's, over training randomisations.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators import model_count
from unlearnbench.builtin.evaluators.lira_reference import model_phi
from unlearnbench.builtin.evaluators.model_count import FEW_MODELS
from unlearnbench.builtin.evaluators.replicate_sides import LABEL, Sides, distinct, naive, standard
from unlearnbench.specs import Evaluation, EvaluationInputs, MethodContext, resolve_params
from unlearnbench.task import Task
from unlearnbench.training import accuracy

log = logging.getLogger(__name__)

DELTA = 1e-5
EPSILON_CAP = 50.0
BIN_WIDTH = 0.5
PEAKY = 0.01  # a sample whose range is below 1% of the other's: ε = EPSILON_CAP


def example_epsilon(a: np.ndarray, b: np.ndarray, delta: float = DELTA) -> float:
    """The largest ε over threshold and interval rules telling sample ``a`` from ``b``."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    range_a, range_b = float(np.ptp(a)), float(np.ptp(b))
    largest, smallest = max(range_a, range_b), min(range_a, range_b)
    if largest > 0 and smallest / largest < PEAKY:
        return EPSILON_CAP
    values = np.unique(np.concatenate([a, b]))
    lows = np.concatenate([[-np.inf], values])[:, None]  # rule S = [low, high]
    highs = np.concatenate([values, [np.inf]])[None, :]

    def share(s: np.ndarray) -> np.ndarray:
        inside = np.searchsorted(s, highs, "right") - np.searchsorted(s, lows, "left")
        return np.clip(inside, 0, None) / s.size

    in_a, in_b = share(a), share(b)
    valid = lows <= highs
    fpr = np.concatenate([in_b[valid], 1 - in_b[valid]])  # S, then its complement
    fnr = np.concatenate([1 - in_a[valid], in_a[valid]])
    if bool(((fpr == 0) & (fnr == 0)).any()):
        return EPSILON_CAP  # perfectly separable: ε = ∞, capped
    keep = (fpr > 0) & (fnr > 0)
    if not keep.any():
        return 0.0
    fpr, fnr = fpr[keep], fnr[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        eps1 = np.log(1 - delta - fpr) - np.log(fnr)
        eps2 = np.log(1 - delta - fnr) - np.log(fpr)
    eps = np.fmax(eps1, eps2)  # nan only where both are
    if np.isnan(eps).all():
        return 0.0
    return float(np.clip(np.nanmax(eps), 0.0, EPSILON_CAP))


def example_points(epsilon: float, models: int) -> float:
    """The challenge's points for one example: 1, 1/2, 1/4, ... per 0.5-wide ε bin
    up to ``ceil(ln(models - 1))``, 0 beyond."""
    top = math.ceil(math.log(models - 1)) if models > 2 else 0
    bins = round(top / BIN_WIDTH)
    index = math.floor(epsilon / BIN_WIDTH)
    return 0.5**index if index < bins else 0.0


def forget_quality(unlearned: np.ndarray, retrained: np.ndarray) -> tuple[float, np.ndarray]:
    """F from φ of shape [models, forget examples] per side, and each example's ε."""
    models = min(unlearned.shape[0], retrained.shape[0])
    eps = np.array(
        [example_epsilon(unlearned[:, i], retrained[:, i]) for i in range(unlearned.shape[1])]
    )
    points = [example_points(e, models) for e in eps]
    return float(np.mean(points)) if points else float("nan"), eps


def challenge_score(sides: Sides, task: Task, suffix: str = "") -> dict[str, float]:
    """The forget quality and the utility-adjusted score of ``sides.unlearned``
    against ``sides.other`` (retrained, or naive models), names ending in ``suffix``."""
    s = task.splits
    x, y = task.x[s.forget], task.y[s.forget]
    unlearned = np.stack([model_phi(m, x, y).numpy() for m in sides.unlearned])
    other = np.stack([model_phi(m, x, y).numpy() for m in sides.other])
    quality, _ = forget_quality(unlearned, other)

    def mean_accuracy(models: Sequence[torch.nn.Module], split: torch.Tensor) -> float:
        xs, ys = task.x[split], task.y[split]
        return float(np.mean([accuracy(m, xs, ys) for m in models]))

    ratio = 1.0
    for split in (s.retain, s.test):
        ours, theirs = mean_accuracy(sides.unlearned, split), mean_accuracy(sides.other, split)
        ratio *= ours / max(theirs, 1e-12)
    return {
        f"unlearning_forget_quality{suffix}": quality,
        f"unlearning_score{suffix}": quality * ratio,
    }


def warn_few_models(models: int) -> None:
    model_count.warn_few_models(
        log,
        "unlearning_score",
        models,
        f"per side: an example's ε is resolved only up to ceil(ln({models - 1})) and the "
        f"score is very noisy; use at least {FEW_MODELS} (the challenge used 512)",
    )


class UnlearningScore:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = resolve_params(PARAMS, params)
        warn_few_models(self.params["models"])

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> Evaluation:
        make_replicates = inputs.require_replicates("unlearning_score")
        if inputs.task.splits.forget.numel() == 0:
            return Evaluation(metrics={})
        mine = make_replicates(self.params["models"], LABEL)
        sides = standard(make_replicates, mine)
        metrics = challenge_score(sides, inputs.task)
        used = sides.replicates
        if inputs.naive is not None:  # the method defines naive: also against its own
            own = naive(make_replicates, mine)
            if own is not None:
                metrics.update(challenge_score(own, inputs.task, "_naive"))
                used = distinct(used, own.replicates)
        metrics["unlearning_score_sample_passes"] = float(sum(r.work for r in used))
        return Evaluation(metrics=metrics)


def create(params: Mapping[str, Any]) -> UnlearningScore:
    return UnlearningScore(params)


PARAMS = (
    Param(
        "models",
        FEW_MODELS,
        "replicates N per side (unlearned and retrained models, each from its own "
        "training seed; cost: N originals, method runs and retrainings per method); "
        "fewer than 8 warns; the challenge used 512",
        minimum=3,
    ),
)

METRICS = (
    Metric(
        "unlearning_score",
        "higher",
        "",
        "NeurIPS 2023 challenge score: forget quality x retain and test accuracy ratios of "
        "the method's replicates to retrained ones. Not 1 for a method indistinguishable "
        "from retraining: retrain's own row, scored against independent retrain "
        "replicates, shows the ceiling at this N (simulated: 0.17 with 8 models a side, "
        "lower with more)",
    ),
    Metric(
        "unlearning_forget_quality",
        "higher",
        "",
        "NeurIPS 2023 challenge forget quality F: mean over forget examples of points "
        "2^-bin(ε), ε from the best attack telling unlearned from retrained replicates "
        "(retrain's row: the ceiling at this N, against independent retrain replicates)",
        role="forgetting",
    ),
    Metric(
        "unlearning_score_naive",
        "higher",
        "",
        "the challenge score against the method's own naive retraining (independent "
        "replicates of its procedure without the forget set); only for methods with naive",
    ),
    Metric(
        "unlearning_forget_quality_naive",
        "higher",
        "",
        "forget quality F against the method's own naive retraining; only for methods with naive",
    ),
    Metric(
        "unlearning_score_sample_passes",
        "none",
        "samples",
        "work of the replicates the score rests on (originals, method runs, retrainings, "
        "naive retrainings)",
        role="cost",
    ),
)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="unlearning_score",
            create=create,
            metrics=METRICS,
            params=PARAMS,
            description=__doc__ or "",
        )
    ]
