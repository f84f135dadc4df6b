"""``lira``: the likelihood-ratio membership attack (LiRA) on the forget set.

Carlini et al., S&P 2022: K reference models train on seeded complementary halves
of a pool holding every scored point (:mod:`.lira_reference`); per point, Gaussians
of the logit-scaled confidence φ over the models that trained on it and over the
others score the evaluated model's φ (online likelihood ratio or offline test).
Reported: forget points against held-out non-members (AUC, TPR at low FPR, gaps
to retrain) and ``lira_strength`` on the original. Variants, defaults, costs and
the measurements behind K = 16: docs/lira.md (``unlearnbench show lira``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators import model_count
from unlearnbench.builtin.evaluators.lira_description import DESCRIPTION
from unlearnbench.builtin.evaluators.lira_reference import (
    SIZE_CHOICES,
    STACKED_CHOICES,
    cached_reference,
    model_phi,
    use_stacked,
)
from unlearnbench.builtin.evaluators.model_count import FEW_MODELS
from unlearnbench.builtin.evaluators.strength import (
    cached_strength,
    membership_auc,
    strength_metric,
)
from unlearnbench.specs import Evaluation, EvaluationInputs, resolve_params
from unlearnbench.task import MethodContext, Task

log = logging.getLogger(__name__)

_MIN_SD = 1e-6
_FPRS = {"lira_tpr_at_1fpr": 0.01, "lira_tpr_at_0_1fpr": 0.001}


class Gaussians:
    """Per-pool-point in/out means and deviations of φ, from the reference models."""

    def __init__(self, reference: Mapping[str, torch.Tensor], fixed_variance: bool) -> None:
        self.pool = reference["pool"]
        phi, keep = reference["phi"].double(), reference["keep"].bool()
        self.mu_in, self.sd_in = moments(phi, keep, fixed_variance)
        self.mu_out, self.sd_out = moments(phi, ~keep, fixed_variance)

    def positions(self, points: torch.Tensor) -> torch.Tensor:
        """Where ``points`` sit in the (sorted) pool; every one must be there."""
        points = points.detach().cpu()
        pos = torch.searchsorted(self.pool, points).clamp(max=max(self.pool.numel() - 1, 0))
        if points.numel() and not bool((self.pool[pos] == points).all()):
            raise ValueError("lira: a scored point is not in the reference models' pool")
        return pos

    def score(self, phi: torch.Tensor, points: torch.Tensor, variant: str) -> torch.Tensor:
        """LiRA's membership score of observed ``phi`` on ``points`` (higher = member)."""
        pos = self.positions(points)
        mu_out, sd_out = self.mu_out[pos], self.sd_out[pos]
        if variant == "offline":
            return (phi - mu_out) / sd_out
        return log_normal(phi, self.mu_in[pos], self.sd_in[pos]) - log_normal(phi, mu_out, sd_out)


def moments(
    phi: torch.Tensor, mask: torch.Tensor, fixed_variance: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each point's mean of ``phi`` over the models in ``mask``, and its deviation:
    the unbiased per-point one, or (``fixed_variance``, or a point with fewer than
    two models) the pooled within-point deviation over the pool."""
    weight = mask.double()
    count = weight.sum(0)
    if bool((count == 0).any()):
        raise ValueError("lira: a pool point has no reference model on one side (in/out)")
    mean = (phi * weight).sum(0) / count
    squares = (((phi - mean) ** 2) * weight).sum(0)
    pooled = squares.sum() / (count - 1).sum().clamp_min(1.0)
    if fixed_variance:
        var = pooled.expand_as(mean)
    else:
        var = torch.where(count >= 2, squares / (count - 1).clamp_min(1.0), pooled)
    return mean, var.sqrt().clamp_min(_MIN_SD)


def log_normal(x: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return -torch.log(sd) - 0.5 * ((x - mu) / sd) ** 2 - 0.5 * math.log(2 * math.pi)


def lira_scores(
    model: torch.nn.Module, task: Task, points: torch.Tensor, gauss: Gaussians, variant: str
) -> torch.Tensor:
    """LiRA's membership score of ``model`` on ``points`` (indices into ``task.x``)."""
    phi = model_phi(model, task.x[points], task.y[points])
    return gauss.score(phi, points, variant)


def lira_attack(
    model: torch.nn.Module, task: Task, gauss: Gaussians, variant: str
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """ROC of LiRA's score: forget (positives) against ``splits.nonmember``."""
    s = task.splits
    if s.forget.numel() == 0 or s.nonmember.numel() == 0:
        return {}, {}
    pos = lira_scores(model, task, s.forget, gauss, variant)
    neg = lira_scores(model, task, s.nonmember, gauss, variant)
    scores = torch.cat([pos, neg]).numpy()
    labels = np.concatenate([np.ones(pos.numel()), np.zeros(neg.numel())])
    from sklearn.metrics import roc_auc_score, roc_curve  # lazy: sklearn takes ~0.9 s to import

    fpr, tpr, _ = roc_curve(labels, scores)
    metrics = {"lira_auc": float(roc_auc_score(labels, scores))}
    for name, level in _FPRS.items():
        metrics[name] = float(tpr[fpr <= level].max())
    return metrics, {"roc_fpr": fpr.tolist(), "roc_tpr": tpr.tolist()}


def warn_few_models(models: int) -> None:
    """Log once per process and K that K reference models give noisy statistics."""
    model_count.warn_few_models(
        log,
        "lira",
        models,
        f"reference models: each per-point Gaussian rests on about {models // 2} values, so "
        "the AUC and above all the low-FPR TPRs are noisy; use at least "
        f"{FEW_MODELS} (the paper's attack keeps gaining up to a few dozen)",
    )


class Lira:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = resolve_params(PARAMS, params)  # the declared bounds
        warn_few_models(self.params["models"])

    def gaussians(self, task: Task, ctx: MethodContext) -> tuple[Gaussians, dict[str, Any]]:
        """The per-point Gaussians (reference models cached per task) and the key
        of what they depend on."""
        models = self.params["models"]
        stacked = use_stacked(self.params["stacked"], task.new_model(("lira", 0)), task)
        size = self.params["size"]
        reference = cached_reference(task, ctx, models, stacked, size)
        key = {
            "models": models,
            "stacked": stacked,
            "size": size,
            "variant": self.params["variant"],
            "fixed_variance": self.params["fixed_variance"],
        }
        return Gaussians(reference, self.params["fixed_variance"]), key

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> Evaluation:
        task, variant = inputs.task, self.params["variant"]
        s = task.splits
        if s.forget.numel() == 0 or s.nonmember.numel() == 0:
            return Evaluation(metrics={}, series={})
        gauss, key = self.gaussians(task, ctx)
        metrics, series = lira_attack(inputs.unlearned, task, gauss, variant)
        reference, _ = lira_attack(inputs.reference, task, gauss, variant)
        for name in list(metrics):
            metrics[f"{name}_gap"] = abs(metrics[name] - reference[name])
        metrics["lira_strength"] = cached_strength(
            task,
            ctx,
            "lira-strength",
            key,
            lambda: membership_auc(
                lira_scores(inputs.original, task, s.target, gauss, variant),
                lira_scores(inputs.original, task, s.nonmember, gauss, variant),
            ),
        )
        return Evaluation(metrics=metrics, series=series)


def create(params: Mapping[str, Any]) -> Lira:
    return Lira(params)


PARAMS = (
    Param(
        "models",
        16,
        "reference models K, each trained on a random half of the pool (cost: K trainings "
        "per task); fewer than 8 warns",
        minimum=4,
    ),
    Param(
        "size",
        "target",
        "each reference model's training set: target = as many points as the original's "
        "(the pool is the scored points topped up to twice that from the shadow splits); "
        "half_pool = half of target, nonmember, shadow_in and shadow_out together",
        choices=SIZE_CHOICES,
    ),
    Param(
        "variant",
        "online",
        "online: likelihood ratio of the in and out Gaussians; offline: one-sided test "
        "against the out Gaussian",
        choices=("online", "offline"),
    ),
    Param(
        "fixed_variance",
        True,
        "one global in and out variance instead of per-example ones (better with few models)",
    ),
    Param(
        "stacked",
        "auto",
        "train the K models at once with torch.func "
        "(auto: MLPs <= 20k parameters on CPU, any model on CUDA)",
        choices=STACKED_CHOICES,
    ),
)


def _attack_metric(name: str, unit: str, help_text: str) -> tuple[Metric, Metric]:
    return (
        Metric(name, "none", unit, help_text, role="attack"),  # judged by closeness to retrain
        Metric(
            f"{name}_gap",
            "lower",
            unit,
            f"|{name} of the evaluated model - that of the reference (retrain)|",
            role="attack",
        ),
    )


METRICS = (
    *_attack_metric(
        "lira_auc",
        "AUC",
        "ROC AUC of LiRA telling forget from non-member points (0.5 = cannot)",
    ),
    *_attack_metric(
        "lira_tpr_at_1fpr",
        "fraction",
        "share of the forget set LiRA detects at a 1% false-positive rate on non-members",
    ),
    *_attack_metric(
        "lira_tpr_at_0_1fpr",
        "fraction",
        "share of the forget set LiRA detects at a 0.1% false-positive rate on non-members",
    ),
    strength_metric("lira_strength", "likelihood-ratio attack (LiRA)"),
)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="lira",
            create=create,
            metrics=METRICS,
            params=PARAMS,
            description=DESCRIPTION,
        )
    ]
