"""``random_label`` (RL): train on the forget set with random labels, and on retain.

Each epoch makes one pass over the forget set with uniformly random labels,
then one pass over the retain set with the true labels, as the CIFAR-10 branch
of SalUn's ``RL`` (Fan et al. 2024; the relabelling idea is Graves et al.
2021's "amnesiac" unlearning). Labels are redrawn every epoch from the task's
seed. The reference draws labels over all classes, so a random label can equal
the true one; ``exclude_true`` draws among the other classes instead.

Defaults from the OPTML-Group Unlearn-Saliency reference (its RL / SalUn
command: ``--unlearn_epochs 10 --unlearn_lr 0.1``; SGD with momentum 0.9 and
weight decay 5e-4). Batches use the task recipe's batch size. ``salun`` is
this same loop restricted to a weight-saliency mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import MethodContext, Task

from unlearnbench_baselines.common import (
    StreamState,
    UnlearnStep,
    batches,
    begin_step,
    build_optimizer,
    check_finite,
    check_optimizer_params,
    finish_step,
    fit_original,
    optimizer_params,
    random_labels,
)

NAME = "random_label"
SOURCE = "SalUn reference RL"
RL_PARAMS = (
    *optimizer_params(
        lr=0.1, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
    ),
    Param(
        "exclude_true",
        False,
        "draw random labels among the wrong classes only (reference: any class)",
    ),
)


def relabel_training(
    step: UnlearnStep,
    task: Task,
    params: Mapping[str, Any],
    method: str,
    mask: dict[str, torch.Tensor] | None = None,
) -> Unlearned:
    """The RL loop; with ``mask`` only weights where the mask is 1 ever change."""
    model, x, y = step.model, task.x, task.y
    size = task.recipe.batch_size
    opt = build_optimizer(model, task, params)
    frozen = _frozen_values(model, mask)
    model.train()
    retain_passes = forget_passes = 0
    for epoch in range(params["epochs"]):
        total = torch.zeros((), device=task.device)
        forget_batches = list(batches(step.forget, (*step.seed, "forget"), epoch, size))
        order = torch.cat(forget_batches)
        labels = random_labels(
            order.numel(),
            y[order],
            task.num_classes,
            (*step.seed, "labels", epoch),
            params["exclude_true"],
        )
        for idx, target in zip(forget_batches, labels.split(size), strict=True):
            total += _masked_step(model, opt, x[idx], target, mask, frozen) * idx.numel()
            forget_passes += idx.numel()
        for idx in batches(step.retain, step.seed, epoch, size):
            total += _masked_step(model, opt, x[idx], y[idx], mask, frozen) * idx.numel()
            retain_passes += idx.numel()
        check_finite(total, method, epoch, params["lr"])
    return finish_step(step, retain_passes=retain_passes, forget_passes=forget_passes)


def _frozen_values(
    model: nn.Module, mask: dict[str, torch.Tensor] | None
) -> dict[str, torch.Tensor]:
    if mask is None:
        return {}
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _masked_step(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    target: torch.Tensor,
    mask: dict[str, torch.Tensor] | None,
    frozen: dict[str, torch.Tensor],
) -> torch.Tensor:
    """One cross-entropy step. Under a mask the gradient is masked and, because
    momentum and weight decay would still move masked weights, those weights
    are put back to their starting values after the step."""
    loss = F.cross_entropy(model(x), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if mask is not None:
        for name, p in model.named_parameters():
            if p.grad is not None:
                p.grad.mul_(mask[name])
    opt.step()
    if mask is not None:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.where(mask[name].bool(), p, frozen[name]))
    return loss.detach()


class RandomLabel:
    def __init__(self, params: Mapping[str, Any]) -> None:
        check_optimizer_params(NAME, params)
        self.params = dict(params)

    def fit(self, task: Task, ctx: MethodContext) -> StreamState:
        return fit_original(task, ctx)

    def unlearn(
        self, state: StreamState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        step = begin_step(state, forget, task, NAME)
        return relabel_training(step, task, self.params, NAME)


def create(params: Mapping[str, Any]) -> RandomLabel:
    return RandomLabel(params)


SPEC = MethodSpec(name=NAME, create=create, params=RL_PARAMS, description=__doc__ or "")
