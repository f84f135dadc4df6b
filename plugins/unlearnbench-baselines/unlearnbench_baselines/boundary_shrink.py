"""``boundary_shrink`` (Boundary Shrink): relabel forgotten points with their nearest wrong class.

Chen et al. 2023 ("Boundary Unlearning: Rapid Forgetting of Deep Networks via
Shifting the Decision Boundary"). For each forgotten point a one-step FGSM
perturbation against a frozen copy of the trained model,
``x' = x + bound·sign(∇ₓ CE(f₀(x), y))``, crosses the nearest decision
boundary; the frozen model's prediction on ``x'`` is the point's new label,
and the model is fine-tuned on the *clean* forgotten points with those labels.

Choices: the reference hard-codes ``bound = 0.1`` for images in [0, 1] and
clamps and rounds ``x'`` to 8-bit pixels. Inputs here are normalised, so the
bound is taken relative to the spread of the input values, ``bound·(max(x) −
min(x))`` over the task's pool (the same 0.1 of the pixel range for
normalised images), and there is no clamping or rounding. The reference code
gives no command line for this method; ``lr`` 0.01 and 10 epochs are its
argument defaults (``--unlearn_lr``, ``--unlearn_epochs``), with its usual SGD
(momentum 0.9, weight decay 5e-4). Batches use the task recipe's batch size.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import MethodContext, Task

from unlearnbench_baselines.common import (
    StreamState,
    batches,
    begin_step,
    build_optimizer,
    check_finite,
    check_optimizer_params,
    finish_step,
    fit_original,
    optimizer_params,
)

NAME = "boundary_shrink"
SOURCE = "Unlearn-Saliency reference argument defaults"
PARAMS = (
    Param("bound", 0.1, "FGSM step as a share of the input value range (reference: 0.1)"),
    *optimizer_params(
        lr=0.01, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
    ),
)


def nearest_wrong_labels(
    frozen: nn.Module, x: torch.Tensor, y: torch.Tensor, step: float
) -> torch.Tensor:
    """The frozen model's labels for ``x`` pushed one FGSM step of size ``step``."""
    probe = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(frozen(probe), y), probe)
    with torch.no_grad():
        return frozen(x + step * grad.sign()).argmax(1)


class BoundaryShrink:
    def __init__(self, params: Mapping[str, Any]) -> None:
        check_optimizer_params(NAME, params)
        if params["bound"] <= 0:
            raise ValueError(f"{NAME}: bound must be > 0, got {params['bound']}")
        self.params = dict(params)

    def fit(self, task: Task, ctx: MethodContext) -> StreamState:
        return fit_original(task, ctx)

    def unlearn(
        self, state: StreamState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        step = begin_step(state, forget, task, NAME)
        model, p, x, y = step.model, self.params, task.x, task.y
        frozen = copy.deepcopy(model).eval()
        for weight in frozen.parameters():
            weight.requires_grad_(False)
        fgsm = p["bound"] * float(x.max() - x.min())
        opt = build_optimizer(model, task, p)
        passes = 0
        for epoch in range(p["epochs"]):
            total = torch.zeros((), device=task.device)
            for idx in batches(step.forget, step.seed, epoch, task.recipe.batch_size):
                target = nearest_wrong_labels(frozen, x[idx], y[idx], fgsm)
                model.train()
                loss = F.cross_entropy(model(x[idx]), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach() * idx.numel()
                passes += idx.numel()
            check_finite(total, NAME, epoch, p["lr"])
        return finish_step(step, retain_passes=0, forget_passes=passes)


def create(params: Mapping[str, Any]) -> BoundaryShrink:
    return BoundaryShrink(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
