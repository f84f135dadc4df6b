"""``u_lira``: U-LiRA, the likelihood-ratio attack adapted to unlearning.

Hayes et al. (2024), Section 4: after unlearning, the question is "was this point
trained on and then unlearned by this method, or never trained on?", so the
shadow models are the method's own outputs. Over N replicates of the cell
(``inputs.replicates``, shared with ``unlearning_score``) a Gaussian of the
logit-scaled confidence per forget point is fitted to the unlearned and to the
retrained replicates; the cell's unlearned model (positives) and reference
(negatives) are scored by the likelihood ratio: ``u_lira_auc`` and
``u_lira_tpr_at_1fpr``, target 0.5 and 0 (their ``_gap`` metrics the distance).
Retrain's row shows the floor at this N, methods with ``naive`` also get
``u_lira_naive_*``, and ``u_lira_strength`` says whether the attack tells
anything at all. The attack, these rows, cost and limits: docs/evaluators.md, ``u_lira``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators import model_count
from unlearnbench.builtin.evaluators.lira import log_normal, moments
from unlearnbench.builtin.evaluators.lira_reference import model_phi
from unlearnbench.builtin.evaluators.model_count import FEW_MODELS
from unlearnbench.builtin.evaluators.replicate_sides import LABEL, naive, standard
from unlearnbench.builtin.evaluators.strength import INFORMATIVE_AUC
from unlearnbench.specs import Evaluation, EvaluationInputs, MethodContext, resolve_params
from unlearnbench.task import Task

log = logging.getLogger(__name__)


def gaussian(phi: torch.Tensor, fixed_variance: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point mean and deviation of ``phi`` [models, points] over every model: LiRA's
    moments with all models on one side (unbiased per point, or pooled)."""
    return moments(phi, torch.ones_like(phi, dtype=torch.bool), fixed_variance)


class Ratio:
    """The in/out Gaussians of φ on the forget set, and the score they give."""

    def __init__(
        self, ins: Sequence[nn.Module], outs: Sequence[nn.Module], task: Task, fixed: bool
    ) -> None:
        self.task = task
        self.mu_in, self.sd_in = gaussian(self._phi(ins), fixed)
        self.mu_out, self.sd_out = gaussian(self._phi(outs), fixed)

    def _phi(self, models: Sequence[nn.Module]) -> torch.Tensor:
        forget = self.task.splits.forget
        x, y = self.task.x[forget], self.task.y[forget]
        return torch.stack([model_phi(m, x, y) for m in models])

    def score(self, model: nn.Module) -> torch.Tensor:
        phi = self._phi([model])[0]
        return log_normal(phi, self.mu_in, self.sd_in) - log_normal(phi, self.mu_out, self.sd_out)


def attack(
    ratio: Ratio, positive: nn.Module, negative: nn.Module, prefix: str = "u_lira"
) -> dict[str, float]:
    """AUC and TPR at 1% FPR of ``positive``'s scores against ``negative``'s."""
    pos, neg = ratio.score(positive).numpy(), ratio.score(negative).numpy()
    scores = np.concatenate([pos, neg])
    labels = np.concatenate([np.ones(pos.size), np.zeros(neg.size)])
    from sklearn.metrics import roc_auc_score, roc_curve  # lazy: sklearn takes ~0.9 s to import

    fpr, tpr, _ = roc_curve(labels, scores)
    return {
        f"{prefix}_auc": float(roc_auc_score(labels, scores)),
        f"{prefix}_tpr_at_1fpr": float(tpr[fpr <= 0.01].max()),
    }


def with_gaps(
    ratio: Ratio, positive: nn.Module, negative: nn.Module, prefix: str = "u_lira"
) -> dict[str, float]:
    """:func:`attack` and each value's gap to the target, the value of ``negative``
    against itself (AUC 0.5, TPR at 1% FPR 0)."""
    metrics = attack(ratio, positive, negative, prefix)
    target = attack(ratio, negative, negative, prefix)
    for name in list(metrics):
        metrics[f"{name}_gap"] = abs(metrics[name] - target[name])
    return metrics


def warn_few_models(models: int) -> None:
    model_count.warn_few_models(
        log,
        "u_lira",
        models,
        f"replicates per side: the per-point Gaussians are noisy; use at least {FEW_MODELS}",
    )


class ULira:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = resolve_params(PARAMS, params)
        warn_few_models(self.params["models"])

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> Evaluation:
        make_replicates = inputs.require_replicates("u_lira")
        task = inputs.task
        if task.splits.forget.numel() == 0:
            return Evaluation(metrics={})
        fixed = self.params["fixed_variance"]
        mine = make_replicates(self.params["models"], LABEL)
        sides = standard(make_replicates, mine, spare=1)
        ratio = Ratio(sides.unlearned, sides.other, task, fixed)
        # retrain's row: an independent retrain as the positive, never the negative itself
        positive = sides.spare[0] if sides.spare else inputs.unlearned
        metrics = with_gaps(ratio, positive, inputs.reference)
        if inputs.naive is not None:  # the method defines naive: also against its own
            own = naive(make_replicates, mine, spare=1)
            if own is not None:
                against = Ratio(own.unlearned, own.other, task, fixed)
                metrics.update(with_gaps(against, inputs.unlearned, own.spare[0], "u_lira_naive"))
        retrained = [r.retrained for r in mine]  # the task's attack strength, on every row
        trained = Ratio([r.original for r in mine], retrained, task, fixed)
        metrics["u_lira_strength"] = attack(trained, inputs.original, inputs.reference)[
            "u_lira_auc"
        ]
        return Evaluation(metrics=metrics)


def create(params: Mapping[str, Any]) -> ULira:
    return ULira(params)


PARAMS = (
    Param(
        "models",
        FEW_MODELS,
        "replicates N (each: an original from its own seed, the method's unlearned model, "
        "a retrained one; cached and shared with unlearning_score); fewer than 8 warns",
        minimum=2,
    ),
    Param(
        "fixed_variance",
        True,
        "one in and one out variance pooled over the forget points (better with few replicates)",
    ),
)

METRICS = (
    Metric(
        "u_lira_auc",
        "none",
        "AUC",
        "ROC AUC of U-LiRA telling the unlearned model's forget points from retrain's "
        "(0.5 = cannot)",
        role="attack",
    ),
    Metric(
        "u_lira_auc_gap",
        "lower",
        "AUC",
        "|u_lira_auc - 0.5| (retrain's row: against an independent retrain, the floor at "
        "this number of replicates)",
        role="attack",
    ),
    Metric(
        "u_lira_tpr_at_1fpr",
        "none",
        "fraction",
        "share of the forget points U-LiRA flags at a 1% false-positive rate on retrain's",
        role="attack",
    ),
    Metric(
        "u_lira_tpr_at_1fpr_gap",
        "lower",
        "fraction",
        "|u_lira_tpr_at_1fpr - 0| (a model against itself)",
        role="attack",
    ),
    Metric(
        "u_lira_naive_auc",
        "none",
        "AUC",
        "U-LiRA telling the method's forget points from its own naive retraining's "
        "(independent replicates; only for methods with naive; 0.5 = cannot)",
    ),
    Metric("u_lira_naive_auc_gap", "lower", "AUC", "|u_lira_naive_auc - 0.5|"),
    Metric(
        "u_lira_naive_tpr_at_1fpr",
        "none",
        "fraction",
        "share of the forget points U-LiRA flags at 1% FPR against the method's own naive "
        "retraining (only for methods with naive)",
    ),
    Metric("u_lira_naive_tpr_at_1fpr_gap", "lower", "fraction", "|u_lira_naive_tpr_at_1fpr - 0|"),
    Metric(
        "u_lira_strength",
        "higher",
        "AUC",
        "ROC AUC of U-LiRA (originals as the in side) telling the original's forget points "
        f"from retrain's; below {INFORMATIVE_AUC} the attack's metrics measure nothing",
        role="attack_strength",
        informative_above=INFORMATIVE_AUC,
    ),
)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="u_lira",
            create=create,
            metrics=METRICS,
            params=PARAMS,
            description=__doc__ or "",
        )
    ]
