"""``l1_sparse`` (ℓ1-sparse MU): fine-tune on retain with a decaying ℓ1 penalty.

Jia et al. 2023 ("Model Sparsity Can Simplify Machine Unlearning"),
sparsity-aware unlearning: minimise ``CE(retain) + γ_t·‖θ‖₁`` from the trained
model, with ``γ_t`` decaying linearly from ``gamma`` in the first epoch to 0
(``γ_t = gamma·(1 − t/epochs)`` for epoch ``t`` counted from 0, as the
reference's ``FT_l1``). The penalty covers every parameter, biases included,
as the reference's ``l1_regularization``.

Optimiser defaults from the reference command (Unlearn-Sparse ``README``:
``--unlearn FT_prune --unlearn_lr 0.01 --unlearn_epochs 10``; SGD with
momentum 0.9 and weight decay 5e-4). The reference leaves the penalty weight
to the user (``--alpha ${alpha}``; third-party CIFAR-10 scripts such as
JingWu321/Scissorhands pass 1e-4 for an 11M-weight ResNet-18); ``gamma``
5e-4 is our default: the penalty sums |w| over all weights, and our models
have 10-100x fewer, so a larger weight keeps the penalty of the order of the
retain loss.
Treat it as a parameter to sweep. Batches use the task recipe's batch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    PostHocMethod,
    UnlearnStep,
    descend_each_batch,
    optimizer_params,
)

NAME = "l1_sparse"
SOURCE = "Unlearn-Sparse reference FT_prune"
PARAMS = (
    Param(
        "gamma",
        5e-4,
        "initial weight of the l1 penalty, decayed linearly to 0 (our default); "
        "tuned on a log scale over [1e-5, 1e-2]",
        minimum=0.0,
        tunable=True,
        log=True,
        search_range=(1e-5, 1e-2),
    ),
    *optimizer_params(
        lr=0.01, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
    ),
)


class L1Sparse(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        model, p = step.model, self.params

        def loss(idx: torch.Tensor, epoch: int) -> torch.Tensor:
            weight = p["gamma"] * (1.0 - epoch / p["epochs"])
            value = F.cross_entropy(model(task.x[idx]), task.y[idx])
            if weight > 0:
                value = value + weight * sum(w.abs().sum() for w in model.parameters())
            return value

        return descend_each_batch(step, task, p, NAME, "retain", loss)


def l1_norm(model: torch.nn.Module) -> float:
    """``‖θ‖₁`` over every parameter (what the penalty shrinks)."""
    with torch.no_grad():
        return float(sum(w.abs().sum() for w in model.parameters()))


def create(params: Mapping[str, Any]) -> L1Sparse:
    return L1Sparse(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
