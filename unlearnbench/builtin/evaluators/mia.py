"""``mia``: membership inference with one shadow model (seed 000, Salem et al.'s adversary 1).

As the seed paper (GAN unlearning, sections 2.5 and 3.1) measures deletion: a
shadow model trained on ``splits.shadow_in`` (by default the way the method
trains, ``shadow="method"``) and its outputs on members and non-members train an
attack MLP on the ``top_k`` largest posteriors; applied to the evaluated model,
its false-negative rate on the forget set (``mia_fnr``) is the measure: high,
close to retrain's, after a good deletion. It also reports the attack's TNR on
non-members and TPR on the retain set (to tell "forgot" from "calls everything
non-member"), the gap to the reference, and ``mia_strength`` (the attack's AUC
on the model unlearned from; below 0.6 boards mark its numbers as measuring
nothing). Every choice where the paper is vague, and why: docs/evaluators.md, ``mia``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.builtin.evaluators.strength import (
    cached_strength,
    membership_auc,
    strength_metric,
)
from unlearnbench.seeding import derive_seed, generator
from unlearnbench.specs import EvaluationInputs, MethodContext, resolve_params
from unlearnbench.task import Task
from unlearnbench.training import predict_proba

PARAMS = (
    Param("top_k", 3, "number of largest posteriors, sorted, fed to the attack model", minimum=1),
    Param(
        "features",
        "posteriors",
        "attack features: raw sorted posteriors (paper) or their logarithms",
        choices=("posteriors", "log"),
    ),
    Param(
        "shadow",
        "method",
        "shadow model: trained by the method's own procedure where it owns its training "
        "(method), or always by the task's recipe (standard)",
        choices=("method", "standard"),
    ),
    Param("hidden", 64, "hidden units of the attack MLP (ML-Leaks: 64)", minimum=1),
    Param("attack_steps", 500, "full-batch Adam steps training the attack model", minimum=1),
    Param(
        "attack_lr",
        0.01,
        "learning rate of the attack model",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    Param(
        "holdout",
        0.3,
        "share of shadow members/non-members held out to measure attack accuracy (0: train acc)",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    ),
)

METRICS = (
    Metric(
        "mia_fnr",
        "none",  # judged by closeness to retrain (see mia_fnr_gap), not maximised
        "fraction",
        "share of the forget set the attack calls non-member, FN/(TP+FN) (seed 000); "
        "higher = more forgotten; retrain's value is the target, and overshooting it is a tell too",
        role="attack",
        mia_gap=1,  # the Avg. Gap's attack term where mia_efficacy is not measured
    ),
    Metric(
        "mia_fnr_gap",
        "lower",
        "fraction",
        "|mia_fnr of the evaluated model - mia_fnr of the reference (retrain)|",
        role="attack",
    ),
    Metric(
        "mia_nonmember_tnr",
        "none",
        "fraction",
        "share of held-out non-members (splits.nonmember) the attack calls non-member",
        role="attack",
    ),
    Metric(
        "mia_retain_tpr",
        "none",
        "fraction",
        "share of retained training points the attack calls member",
        role="attack",
    ),
    Metric(
        "mia_attack_accuracy",
        "none",
        "fraction",
        "attack accuracy on held-out shadow members/non-members (training accuracy "
        "when holdout = 0); near 0.5 means the attack is weak",
    ),
    strength_metric("mia_strength", "shadow-model attack"),
)

_FLOOR = 1e-12


def attack_features(probs: torch.Tensor, top_k: int, kind: str) -> torch.Tensor:
    """The ``top_k`` largest posteriors of each row, sorted descending (or their logs)."""
    k = min(top_k, probs.shape[1])
    top = probs.topk(k, dim=1).values
    return top.clamp_min(_FLOOR).log() if kind == "log" else top


class AttackMLP(nn.Module):
    """Binary attack model: standardised features -> one member logit."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net((feats - self.mean) / self.std).squeeze(1)

    @torch.no_grad()
    def is_member(self, feats: torch.Tensor) -> torch.Tensor:
        self.eval()
        return self(feats) > 0.0


def check_shadow_splits(task: Task) -> None:
    if task.splits.shadow_in.numel() < 2 or task.splits.shadow_out.numel() < 2:
        raise ValueError(
            "the mia evaluator needs splits.shadow_in and splits.shadow_out of at least 2 "
            f"points each (got {task.splits.shadow_in.numel()} and "
            f"{task.splits.shadow_out.numel()})"
        )


def shadow_model(task: Task, ctx: MethodContext) -> nn.Module:
    """The shadow model: the target's architecture and recipe, trained on shadow_in (cached)."""
    check_shadow_splits(task)

    def build() -> dict[str, Any]:
        model = task.new_model("shadow")
        ctx.train(model, task.splits.shadow_in, seed_label="shadow")
        return {"state_dict": model.state_dict()}

    value = ctx.cached("mia-shadow", {}, build)
    model = task.new_model("shadow")
    model.load_state_dict(value["state_dict"])
    model.eval()
    return model


def _balanced_split(
    members: torch.Tensor, nonmembers: torch.Tensor, holdout: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equal numbers of members and non-members (seeded subsample of the larger),
    split into a training and a held-out part.

    Returns (train features, train labels, held-out features, held-out labels).
    """
    n = min(members.shape[0], nonmembers.shape[0])
    n_out = min(round(holdout * n), n - 1)
    train_x, train_y, test_x, test_y = [], [], [], []
    for label, feats in ((1.0, members), (0.0, nonmembers)):
        perm = torch.randperm(feats.shape[0], generator=generator(seed, "mia-split", label))
        chosen = feats[perm[:n].to(feats.device)]
        labels = torch.full((n,), label, device=feats.device)
        train_x.append(chosen[n_out:])
        train_y.append(labels[n_out:])
        test_x.append(chosen[:n_out])
        test_y.append(labels[:n_out])
    return torch.cat(train_x), torch.cat(train_y), torch.cat(test_x), torch.cat(test_y)


def train_attack(
    feats: torch.Tensor, labels: torch.Tensor, params: Mapping[str, Any], seed: int
) -> AttackMLP:
    """Fit the attack MLP full-batch with Adam; deterministic for ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "mia-attack-init"))
        model = AttackMLP(feats.shape[1], params["hidden"]).to(feats.device)
    model.mean.copy_(feats.mean(0))
    model.std.copy_(
        feats.std(0).clamp_min(1e-6) if feats.shape[0] > 1 else torch.ones_like(model.std)
    )
    opt = torch.optim.Adam(model.net.parameters(), lr=params["attack_lr"])
    model.train()
    for _ in range(params["attack_steps"]):
        loss = F.binary_cross_entropy_with_logits(model(feats), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return model


def attack_model(
    task: Task, ctx: MethodContext, params: Mapping[str, Any]
) -> tuple[AttackMLP, float]:
    """The attack model trained on the standard shadow model's outputs, and its
    accuracy (cached)."""
    top_k = params["top_k"]
    n_features = min(top_k, task.num_classes)

    def build() -> dict[str, Any]:
        model, acc = fit_attack(shadow_model(task, ctx), task, params)
        return {"state_dict": model.state_dict(), "accuracy": acc}

    value = ctx.cached("mia-attack", dict(params), build)
    model = AttackMLP(n_features, params["hidden"]).to(task.device)
    model.load_state_dict(value["state_dict"])
    model.eval()
    return model, float(value["accuracy"])


def fit_attack(shadow: nn.Module, task: Task, params: Mapping[str, Any]) -> tuple[AttackMLP, float]:
    """The attack model trained on ``shadow``'s outputs on shadow_in (members) and
    shadow_out (non-members), and its held-out accuracy."""
    top_k, kind = params["top_k"], params["features"]
    s = task.splits
    members = attack_features(predict_proba(shadow, task.x[s.shadow_in]), top_k, kind)
    nonmembers = attack_features(predict_proba(shadow, task.x[s.shadow_out]), top_k, kind)
    tx, ty, hx, hy = _balanced_split(members, nonmembers, params["holdout"], task.seed)
    model = train_attack(tx, ty, params, task.seed)
    ex, ey = (hx, hy) if hy.numel() else (tx, ty)
    return model, float((model.is_member(ex).float() == ey).float().mean())


def member_scores(
    model: nn.Module, attack: AttackMLP, x: torch.Tensor, params: Mapping[str, Any]
) -> torch.Tensor:
    """The attack's member logit for each row of ``x``, from ``model``'s posteriors."""
    feats = attack_features(predict_proba(model, x), params["top_k"], params["features"])
    with torch.no_grad():
        return attack(feats)


def member_rate(
    model: nn.Module, attack: AttackMLP, x: torch.Tensor, params: Mapping[str, Any]
) -> float:
    """Share of ``x`` the attack calls member, from ``model``'s posteriors (nan if empty)."""
    if x.shape[0] == 0:
        return float("nan")
    feats = attack_features(predict_proba(model, x), params["top_k"], params["features"])
    return float(attack.is_member(feats).float().mean())


class MembershipInference:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = resolve_params(PARAMS, params)  # the declared bounds

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        task = inputs.task
        s = task.splits
        # the attack's own parameters: cache keys stay those of before ``shadow`` existed
        params = {k: v for k, v in self.params.items() if k != "shadow"}
        shadow = None
        if self.params["shadow"] == "method" and inputs.trained_on is not None:
            check_shadow_splits(task)
            shadow = inputs.trained_on(s.shadow_in, "mia-shadow")
        if shadow is None:  # the standard shadow, attack and strength: once per task
            attack, acc = attack_model(task, ctx, params)
            strength = cached_strength(
                task,
                ctx,
                "mia-strength",
                params,
                lambda: membership_auc(
                    member_scores(inputs.original, attack, task.x[s.target], params),
                    member_scores(inputs.original, attack, task.x[s.nonmember], params),
                ),
            )
        else:  # calibrated on the method's own procedure: measured on its own model
            attack, acc = fit_attack(shadow, task, params)
            strength = membership_auc(
                member_scores(inputs.trained, attack, task.x[s.target], params),
                member_scores(inputs.trained, attack, task.x[s.nonmember], params),
            )
        forget_x = task.x[s.forget]
        fnr = 1.0 - member_rate(inputs.unlearned, attack, forget_x, self.params)
        ref_fnr = 1.0 - member_rate(inputs.reference, attack, forget_x, self.params)
        return {
            "mia_fnr": fnr,
            "mia_fnr_gap": abs(fnr - ref_fnr),
            "mia_nonmember_tnr": 1.0
            - member_rate(inputs.unlearned, attack, task.x[s.nonmember], self.params),
            "mia_retain_tpr": member_rate(inputs.unlearned, attack, task.x[s.retain], self.params),
            "mia_attack_accuracy": acc,
            "mia_strength": strength,
        }


def create(params: Mapping[str, Any]) -> MembershipInference:
    return MembershipInference(params)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="mia", create=create, metrics=METRICS, params=PARAMS, description=__doc__ or ""
        )
    ]
