"""``mia_efficacy`` and ``loss_attack``: two standard membership attacks beside ``mia``.

Both attack the evaluated model directly (no shadow model); see
``EFFICACY_DOC`` and ``LOSS_DOC`` below, which are the evaluators' descriptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators.strength import (
    cached_strength,
    membership_auc,
    strength_metric,
)
from unlearnbench.seeding import generator
from unlearnbench.specs import Evaluation, EvaluationInputs, MethodContext, resolve_params
from unlearnbench.task import Task
from unlearnbench.training import predict_proba

if TYPE_CHECKING:
    from sklearn.svm import SVC

EFFICACY_DOC = """``mia_efficacy``: the population attack of the "Unlearn-Sparse" / SalUn protocol.

Jia et al. 2023, Fan et al. 2024. No shadow model: a support-vector
classifier (RBF kernel, ``C = 3``, ``gamma = "auto"``, as there) is fitted on
the *evaluated* model's outputs for retained training points (members, label
1) and test points (non-members, label 0), then applied to the forget set.
``mia_efficacy`` = share of the forget set predicted non-member: higher = more
forgotten; retrain's value is the target (``mia_efficacy_gap`` measures the
distance to it). Choices: the feature is the posterior of the true label
(``confidence``, the variant those papers report); ``entropy``, Song &
Mittal's modified entropy ``m_entropy``, or both (``confidence_entropy``) are
options. Members and non-members are balanced by a seeded subsample of the
larger set (the papers take as many retain points as test points), capped at
``max_points`` each to bound the SVC's quadratic cost on CPU. A model whose
features are the same for every point leaves the attack at chance: 0.5.

``mia_efficacy_strength``: the attack fitted the same way on the *original*
model, its decision score's ROC AUC on target points it was not fitted on
(members) against ``splits.nonmember``; below 0.6 its numbers measure nothing
and leaderboards say so.
"""

LOSS_DOC = """``loss_attack``: a loss-threshold membership attack on the forget set, with its ROC.

Thresholds the evaluated model's per-example cross-entropy: forget points
(positives) against held-out non-members (``splits.nonmember``, negatives),
lower loss = member. Reports the ROC AUC and the TPR at 1% FPR (the
low-false-positive view of Carlini et al. 2022) and returns the ROC curve as
the series ``roc_fpr`` / ``roc_tpr``. For a model that never saw the forget
set the AUC is about 0.5. Neither number is better high or low: retrain's value
is the target (a model that wrecks itself can score an AUC far below 0.5), so
both are judged by ``*_gap``, the distance to the reference's value. The loss
uses the label each point was trained with (for backdoor requests: the
poisoned label, so a model that never saw the poisoned points gives them a
*high* loss and an AUC far below 0.5; use ``backdoor`` there).
``loss_attack_strength``: the same threshold's AUC on the *original* model,
target (members) against ``splits.nonmember``; below 0.6 the attack measures
nothing and leaderboards say so. Losses are computed from
``unlearnbench.training.predict_proba``, so ensembles are attacked on their
mean posteriors.
"""

FEATURES = ("confidence", "entropy", "m_entropy", "confidence_entropy")
_FLOOR = 1e-30


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(_FLOOR).log()).sum(1)


def _modified_entropy(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Song & Mittal (2021): -(1-p_y) log p_y - sum_{i != y} p_i log(1-p_i)."""
    py = p.gather(1, y[:, None]).squeeze(1)
    others = -(p * (1 - p).clamp_min(_FLOOR).log())
    others = others.sum(1) - others.gather(1, y[:, None]).squeeze(1)
    return -(1 - py) * py.clamp_min(_FLOOR).log() + others


def population_features(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, kind: str
) -> np.ndarray:
    """Per-example attack features of ``model`` on ``(x, y)``, shape (n, d), as numpy."""
    p = predict_proba(model, x)
    conf = p.gather(1, y[:, None]).squeeze(1)
    columns = {
        "confidence": [conf],
        "entropy": [_entropy(p)],
        "m_entropy": [_modified_entropy(p, y)],
        "confidence_entropy": [conf, _entropy(p)],
    }[kind]
    return torch.stack(columns, dim=1).double().cpu().numpy()


def _subsample(indices: torch.Tensor, n: int, seed: int, label: str) -> torch.Tensor:
    perm = torch.randperm(indices.numel(), generator=generator(seed, "mia-efficacy", label))
    return indices[perm[:n].to(indices.device)]


def _efficacy_sets(task: Task, params: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The balanced retain (member) and test (non-member) points the SVC is fitted on."""
    s = task.splits
    n = min(s.retain.numel(), s.test.numel())
    if params["max_points"] > 0:
        n = min(n, params["max_points"])
    return _subsample(s.retain, n, task.seed, "retain"), _subsample(s.test, n, task.seed, "test")


def fit_efficacy_attack(model: nn.Module, task: Task, params: Mapping[str, Any]) -> SVC | None:
    """The SVC fitted on ``model``'s retain-vs-test features; None when they are constant."""
    members, nonmembers = _efficacy_sets(task, params)
    kind = params["features"]
    feats = np.concatenate(
        [
            population_features(model, task.x[members], task.y[members], kind),
            population_features(model, task.x[nonmembers], task.y[nonmembers], kind),
        ]
    )
    if np.ptp(feats, axis=0).max() == 0.0:
        # The model gives every point the same features: the attack has nothing to
        # learn and is at chance (balanced classes). SVC would return an arbitrary
        # constant instead.
        return None
    labels = np.concatenate([np.ones(members.numel()), np.zeros(nonmembers.numel())])
    from sklearn.svm import SVC  # lazy: sklearn takes ~0.9 s to import

    clf = SVC(C=params["C"], gamma="auto", kernel="rbf")
    clf.fit(feats, labels)
    return clf


def mia_efficacy(model: nn.Module, task: Task, params: Mapping[str, Any]) -> float:
    """Share of the forget set that an SVC fitted on retain-vs-test outputs calls non-member."""
    s = task.splits
    members, _ = _efficacy_sets(task, params)
    if members.numel() < 1 or s.forget.numel() == 0:
        return float("nan")
    clf = fit_efficacy_attack(model, task, params)
    if clf is None:
        return 0.5  # half the forget set "called non-member": chance
    forget = population_features(model, task.x[s.forget], task.y[s.forget], params["features"])
    return float(1.0 - clf.predict(forget).mean())


def efficacy_strength(original: nn.Module, task: Task, params: Mapping[str, Any]) -> float:
    """AUC of the attack fitted on the original, on target points it was not fitted on
    (members) against ``splits.nonmember``."""
    s = task.splits
    fitted, _ = _efficacy_sets(task, params)
    held_out = s.target[~torch.isin(s.target, fitted)]
    cap = params["max_points"] or held_out.numel()
    members = _subsample(held_out, cap, task.seed, "strength-members")
    nonmembers = _subsample(s.nonmember, cap, task.seed, "strength-nonmembers")
    clf = fit_efficacy_attack(original, task, params)
    if clf is None or members.numel() == 0 or nonmembers.numel() == 0:
        return 0.5 if clf is None else float("nan")
    kind = params["features"]

    def score(idx: torch.Tensor) -> torch.Tensor:
        feats = population_features(original, task.x[idx], task.y[idx], kind)
        return torch.from_numpy(clf.decision_function(feats))

    return membership_auc(score(members), score(nonmembers))


class MiaEfficacy:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = resolve_params(EFFICACY_PARAMS, params)  # the declared bounds

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        ours = mia_efficacy(inputs.unlearned, inputs.task, self.params)
        ref = mia_efficacy(inputs.reference, inputs.task, self.params)
        strength = cached_strength(
            inputs.task,
            ctx,
            "mia-efficacy-strength",
            self.params,
            lambda: efficacy_strength(inputs.original, inputs.task, self.params),
        )
        return {
            "mia_efficacy": ours,
            "mia_efficacy_gap": abs(ours - ref),
            "mia_efficacy_strength": strength,
        }


def per_example_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each example (no reduction), from the model's posteriors."""
    if x.shape[0] == 0:
        return torch.empty(0, device=x.device)
    p = predict_proba(model, x).double()
    return -p.gather(1, y[:, None]).squeeze(1).clamp_min(_FLOOR).log()


def loss_attack(
    model: nn.Module, task: Task, max_fpr: float = 0.01
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """ROC of "member when loss is low": forget (positive) vs nonmember (negative)."""
    s = task.splits
    pos = per_example_loss(model, task.x[s.forget], task.y[s.forget])
    neg = per_example_loss(model, task.x[s.nonmember], task.y[s.nonmember])
    if pos.numel() == 0 or neg.numel() == 0:
        return {}, {}
    scores = (-torch.cat([pos, neg])).double().cpu().numpy()
    labels = np.concatenate([np.ones(pos.numel()), np.zeros(neg.numel())])
    from sklearn.metrics import roc_auc_score, roc_curve  # lazy: sklearn takes ~0.9 s to import

    fpr, tpr, _ = roc_curve(labels, scores)
    tpr_low = float(tpr[fpr <= max_fpr].max())
    metrics = {
        "loss_attack_auc": float(roc_auc_score(labels, scores)),
        "loss_attack_tpr_at_1fpr": tpr_low,
    }
    return metrics, {"roc_fpr": fpr.tolist(), "roc_tpr": tpr.tolist()}


def loss_strength(original: nn.Module, task: Task) -> float:
    """AUC of the loss threshold on the original: target (members) against non-members."""
    s = task.splits
    return membership_auc(
        -per_example_loss(original, task.x[s.target], task.y[s.target]),
        -per_example_loss(original, task.x[s.nonmember], task.y[s.nonmember]),
    )


class LossAttack:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> Evaluation:
        metrics, series = loss_attack(inputs.unlearned, inputs.task)
        if not metrics:
            return Evaluation(metrics={}, series={})
        reference, _ = loss_attack(inputs.reference, inputs.task)
        for name in list(metrics):
            metrics[f"{name}_gap"] = abs(metrics[name] - reference[name])
        metrics["loss_attack_strength"] = cached_strength(
            inputs.task,
            ctx,
            "loss-attack-strength",
            {},
            lambda: loss_strength(inputs.original, inputs.task),
        )
        return Evaluation(metrics=metrics, series=series)


def create_efficacy(params: Mapping[str, Any]) -> MiaEfficacy:
    return MiaEfficacy(params)


def create_loss(params: Mapping[str, Any]) -> LossAttack:
    return LossAttack()


EFFICACY_PARAMS = (
    Param("features", "confidence", "per-example attack feature(s)", choices=FEATURES),
    Param(
        "C",
        3.0,
        "SVC regularisation (SalUn / Unlearn-Sparse use 3)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    Param("max_points", 2500, "cap on members and on non-members fitted (0 = no cap)", minimum=0),
)

EFFICACY_METRICS = (
    Metric(
        "mia_efficacy",
        "none",  # judged by closeness to retrain (see mia_efficacy_gap), not maximised
        "fraction",
        "share of the forget set a retain-vs-test SVC attack calls non-member; "
        "higher = more forgotten; retrain's value is the target, and overshooting it is a tell too",
        role="attack",
        mia_gap=0,  # SalUn's own attack: the Avg. Gap's attack term when present
    ),
    Metric(
        "mia_efficacy_gap",
        "lower",
        "fraction",
        "|mia_efficacy of the evaluated model - that of the reference (retrain)|",
        role="attack",
    ),
    strength_metric("mia_efficacy_strength", "retain-vs-test SVC attack"),
)

LOSS_METRICS = (
    Metric(
        "loss_attack_auc",
        "none",  # judged by closeness to retrain: a wrecked model scores far below 0.5
        "AUC",
        "ROC AUC of a loss threshold telling forget from non-member points (0.5 = cannot)",
        role="attack",
    ),
    Metric(
        "loss_attack_auc_gap",
        "lower",
        "AUC",
        "|loss_attack_auc of the evaluated model - that of the reference (retrain)|",
        role="attack",
    ),
    Metric(
        "loss_attack_tpr_at_1fpr",
        "none",
        "fraction",
        "share of the forget set detected at a 1% false-positive rate on non-members",
        role="attack",
    ),
    Metric(
        "loss_attack_tpr_at_1fpr_gap",
        "lower",
        "fraction",
        "|loss_attack_tpr_at_1fpr of the evaluated model - that of the reference (retrain)|",
        role="attack",
    ),
    strength_metric("loss_attack_strength", "loss-threshold attack"),
)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="mia_efficacy",
            create=create_efficacy,
            metrics=EFFICACY_METRICS,
            params=EFFICACY_PARAMS,
            description=EFFICACY_DOC,
        ),
        EvaluatorSpec(
            name="loss_attack",
            create=create_loss,
            metrics=LOSS_METRICS,
            description=LOSS_DOC,
        ),
    ]
