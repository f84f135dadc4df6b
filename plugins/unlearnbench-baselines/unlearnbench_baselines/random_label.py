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
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    EpochLoop,
    PostHocMethod,
    UnlearnStep,
    batches,
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


class MaskedLoop(EpochLoop):
    """The epoch loop with only weights where ``mask`` is 1 ever changing. The
    gradient is masked and, because momentum and weight decay would still move
    masked weights, those weights are put back to their starting values after
    every step."""

    def __init__(
        self,
        step: UnlearnStep,
        task: Task,
        params: Mapping[str, Any],
        method: str,
        mask: dict[str, torch.Tensor],
    ) -> None:
        super().__init__(step, task, params, method)
        self.mask = mask
        self.frozen = {name: p.detach().clone() for name, p in self.model.named_parameters()}

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                p.grad.mul_(self.mask[name])
        self.opt.step()
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(torch.where(self.mask[name].bool(), p, self.frozen[name]))


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
    loop = (
        EpochLoop(step, task, params, method)
        if mask is None
        else MaskedLoop(step, task, params, method, mask)
    )
    for epoch in loop.epochs():
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
            loop.descend(F.cross_entropy(model(x[idx]), target), forget=idx.numel())
        for idx in batches(step.retain, step.seed, epoch, size):
            loop.descend(F.cross_entropy(model(x[idx]), y[idx]), retain=idx.numel())
    return loop.finish()


class RandomLabel(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        return relabel_training(step, task, self.params, NAME)


def create(params: Mapping[str, Any]) -> RandomLabel:
    return RandomLabel(params)


SPEC = MethodSpec(name=NAME, create=create, params=RL_PARAMS, description=__doc__ or "")
