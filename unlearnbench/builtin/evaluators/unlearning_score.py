"""``unlearning_score``: the NeurIPS 2023 Machine Unlearning challenge's score.

Triantafillou et al. (2024), Section 3, and the challenge's released evaluation
code (``google-deepmind/unlearning_evaluation``). Over N replicates of the cell
(``inputs.replicates``) each forget example's logit-scaled confidence under the
N unlearned and the N retrained models are two samples; the largest (ε, δ) bound
that decision rules separating them give earns the example points, their mean is
the forget quality F, and the score is F times the retain- and test-accuracy
ratios of the unlearned to the retrained replicates. Two samples of one
distribution already score far below 1 at small N, so retrain's row shows that
ceiling (against independent replicates), not 1; methods with ``naive`` also get
``unlearning_score_naive``. The ε formula, the rules scanned, the deviation from
the challenge (one original per replicate) and the cost: docs/evaluators.md.
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
