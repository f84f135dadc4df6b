"""``lira``: the likelihood-ratio membership attack (LiRA) on the forget set.

Source: Carlini, Chien, Nasr, Song, Terzis, Tramèr, "Membership Inference
Attacks From First Principles", IEEE S&P 2022, Section IV (Algorithm 1:
online attack; the offline variant; logit scaling; fixed vs per-example
variance) and Section VI (ablations: number of shadow models, variance).

The attack. K reference ("shadow") models with the task's architecture and
recipe are trained on seeded complementary halves of a pool that contains every
scored point, so each point is "in" (trained on) for exactly half of them and
"out" for the rest. Each trains on as many points as the original model
(``size = "target"``, default: the pool is ``target ∪ nonmember`` topped up to
twice the target's size from ``shadow_in ∪ shadow_out``; a task with fewer
points there is refused), because the distance between a point's in and out
confidence depends on the training set's size; ``size = "half_pool"`` trains
on halves of all of ``target ∪ nonmember ∪ shadow_in ∪ shadow_out`` (the
earlier default, larger training sets than the target's). See
``lira_reference.py``. For each point and model the logit-scaled confidence
of the true label is recorded::

    φ = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j     (from logits z, stably)

and two Gaussians are fitted per point: N(μ_in, σ_in²) over the models that
trained on it, N(μ_out, σ_out²) over the others. The evaluated model's φ on a
point is then scored

- ``variant = "online"`` (the paper's strongest, default): the log likelihood
  ratio ``log N(φ; μ_in, σ_in²) - log N(φ; μ_out, σ_out²)``;
- ``variant = "offline"``: the one-sided test against the out Gaussian only,
  ``Λ = Pr[Z < φ]`` for ``Z ~ N(μ_out, σ_out²)``; its ranking is that of
  ``(φ - μ_out) / σ_out``, which is what is scored (same ROC, no underflow);

higher = member. ``fixed_variance = true`` (default) replaces the per-point
variances by global ones, the pooled within-point variances of the in and of
the out φ over the whole pool (the paper: a global variance is better with
fewer than about 64 models; with K = 16 each per-point variance would rest on
8 values). Per-point means are plain means (the paper's text; its code uses
medians). No query augmentation: training here uses none either.

What is reported for the evaluated model, forget points (positives) against
held-out non-members (``splits.nonmember``, negatives, in the pool so they
have in/out statistics too): ``lira_auc`` (ROC AUC), ``lira_tpr_at_1fpr`` and
``lira_tpr_at_0_1fpr`` (the TPR at 1% and 0.1% FPR, the low-false-positive
view the paper argues for; with fewer than 1,000 non-members 0.1% FPR is
reached only at FPR 0: the share of forget points scored above every
non-member), each with a ``_gap`` to the reference's (retrain's) value, and
the ROC curve as the series ``roc_fpr`` / ``roc_tpr``. For a model that never
saw the forget set the AUC is about 0.5 (forget and non-member points are then
exchangeable); none of these is better high or low: retrain's value is the
target, judged by the gaps. ``lira_strength``: the same score's AUC on the
*original* model, its members (``splits.target``) against
``splits.nonmember``; below 0.6 the attack measures nothing on this task and
leaderboards say so. The label each point was trained with is used (backdoor
requests: the poisoned label).

Defaults and cost. ``models = 16``: K trainings of the task's recipe on as
many points as the target set each, once per task (cached with ``ctx.cached`` as
the K x N matrix of φ and the in/out mask, a few hundred KB, and shared by every
cell, method and request of the task; the work counts toward the first cell
that builds it). On the default suite (MNIST-1D, MLP [128, 64], 1,200 target
points, 40 epochs) that is 16 x 1,200 x 40 = 768k sample-passes, 16 original
trainings (with ``size = "half_pool"``: 16 x 1,600 x 40 = 1.0M); measured
with ``half_pool`` on the shared 2-core CPU at one thread: 5-6 s stacked (16 s
one by one), then 0.02 s per cell, see ``benchmarks/lira_stacked.py``. K = 16
because the attack has saturated there on that task: with ``half_pool`` models
the original's ``lira_strength`` was 0.81 / 0.83 / 0.85 / 0.85 / 0.86 with K
= 4 / 8 / 16 / 32 / 64 (TPR at 1% FPR on 200 forget points 0.08 / 0.14 / 0.21
/ 0.23 / 0.23), against 0.62 for the ``mia`` shadow attack. Models of the
target's size leave it where it was: on the audit suite's task (100 points
forgotten, K = 16) ``lira_strength`` 0.852 / 0.855 on seeds 0 / 1 against
0.851 / 0.842 with ``half_pool``, the original's ``lira_auc_gap`` 0.360 /
0.346 against 0.356 / 0.321.
Sizing K: the work is K x (pool / 2) x epochs sample-passes, linear in K;
stacked on CPU the wall time grows more slowly (4.6 / 5.1 / 7.5 s for K = 8 /
16 / 32 on the task above). The attack's power grows with K and flattens past
a few dozen models (paper, Section VI): take 16-32 for a CPU suite, 64 or more
(and then ``fixed_variance = false``, the per-point variances the paper uses
with many models) where a GPU makes them cheap. Below 8 models the per-point
Gaussians are too noisy for the low-FPR numbers and the evaluator warns.
``stacked = "auto"`` trains the K models at once with ``torch.func`` (MLPs on
CPU, any supported model on CUDA; ``"on"`` forces it, ``"off"`` trains one by
one through ``ctx.train``); both give the same statistics up to float rounding
(on the CPU here they were bit for bit the same in every measurement).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators import model_count
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
        "train the K models at once with torch.func (auto: MLPs on CPU, any model on CUDA)",
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
            description=__doc__ or "",
        )
    ]
