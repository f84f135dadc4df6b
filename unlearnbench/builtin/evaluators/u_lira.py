"""``u_lira``: U-LiRA, the likelihood-ratio attack adapted to unlearning.

Source: Hayes, Shumailov, Triantafillou, Khalifa, Papernot, "Inexact
unlearning needs more careful evaluations to avoid a false sense of privacy"
(2024), Section 4 (U-LiRA). LiRA (``lira``, Carlini et al. 2022) asks "was
this point trained on?"; after unlearning the right question is "was this
point trained on *and then unlearned* by this method, or never trained on?".
The shadow models must therefore be the method's own outputs.

The attack. N replicates of the cell (``inputs.replicates``, each with its own
training seed, shared with ``unlearning_score``): each trains an original on
the target set, unlearns the forget set with the method under test
(``unlearned``), and retrains without it (``retrained``). For each forget
point the logit-scaled confidence φ = log(p_y / (1 - p_y)) (as in ``lira``)
over the N unlearned replicates is the "in" Gaussian N(μ_in, σ_in²), over the
N retrained replicates the "out" Gaussian; a model's φ on the point is
scored by the log likelihood ratio log N(φ; μ_in, σ_in²) - log N(φ; μ_out,
σ_out²) (higher: looks unlearned rather than never trained on). With few
replicates the variances are pooled over the forget points per side
(``fixed_variance``, default, as LiRA's paper advises below about 64 models).

What is reported. Positives: the cell's unlearned model on each forget point;
negatives: the cell's reference (retrain) on the same points. Neither model
is a replicate (their seed is the task's), so the attack is tested on models
it never saw. ``u_lira_auc`` (ROC AUC) and ``u_lira_tpr_at_1fpr``; the
target is the value of a model compared with itself, AUC 0.5 and TPR at 1% FPR
0, and the ``_gap`` metrics are the distances to it. A method whose outputs on
the forget set cannot be told from retraining's scores near 0.5; one that
leaves a trace, high.

Retrain's own row. Its unlearned and retrained replicates would be the same
models (both Gaussians one, every score 0) and its positives and negatives the
same model: AUC exactly 0.5, whatever the noise of 20 forget points and N
models. Instead its "out" Gaussian comes from retrain replicates of another
label (``"replicate-independent"``, other training randomisations) and its
positives from one more of those: the row shows the gap that a method exactly
as good as retraining gets at this N (the floor), not 0. See
``replicate_sides.py``.

The method's own naive retraining. SISA and DeepObliviate (methods that define
``naive``) are exact, or close, under their own training procedure, not
against standard retraining. For them ``u_lira_naive_auc`` and
``u_lira_naive_tpr_at_1fpr`` (and their gaps to 0.5 and 0) repeat the attack
with the ``naive`` models of independent replicates as the "out" side and one
more of them as the negatives (independent because SISA's unlearning gives
its naive model bit for bit from the same ``fit``). Methods without ``naive``
have no such metric. Role-less, like ``naive_consistency``, so boards do not
rank them.
``u_lira_strength``: the same attack with the replicates' *originals* as the
"in" side, the task's original against its reference: how well U-LiRA tells
"trained on" from "never trained on" at all on this task (below 0.6 the
attack measures nothing and leaderboards say so).

Cost and limits: the replicates (``models`` = 8 by default: N originals, N
method runs, N retrainings per method, cached; see ``unlearning_score``);
retrain's row adds N + 1 independent originals and retrainings, a method with
``naive`` N + 1 independent replicates with their naive models.
The forget set is small (20 points in the default suite), so the AUC moves in
steps of 1/(20 x 20) and the TPR at 1% FPR is that at FPR 0; read them
across seeds. Below 8 replicates the evaluator warns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve
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
