"""``random_label`` (RL): train on the forget set with random labels, mixed into retain.

Each epoch is one pass over the forget set (uniformly random labels, redrawn
every epoch from the task's seed) and the retain set (true labels), shuffled
together into one stream of batches: the ``ConcatDataset`` + shuffled
``DataLoader`` of the OPTML-Group reference ``RL`` (Unlearn-Sparse
``unlearn/RL.py``; Unlearn-Saliency ``Classification/unlearn/RL.py``, its
CIFAR-100 / TinyImageNet branch). The relabelling idea is Graves et al.
2021's "amnesiac" unlearning. The reference draws labels over all classes,
so a random label can equal the true one; ``exclude_true`` draws among the
other classes instead.

Why the mixed stream and not the forget-then-retain passes of the
Unlearn-Saliency CIFAR-10 branch (which this module followed before): with
separate passes every forget batch is the forget set alone, so a 1-point
request takes full-rate steps on one example's gradient, 64x the weight that example has in a
batch of 64. That, not the method, put RL at 0.14 test
accuracy on a 1-point MNIST-1D request. Mixed in, each forget point weighs
what any training point weighs in its batch, whatever the request's size;
with 4,500 forget points (the reference's setting) both orders are alike.

Defaults: lr 0.01, 10 epochs: Unlearn-Saliency ``Classification/arg_parser.py``
defaults (``--unlearn_lr 0.01``, ``--unlearn_epochs 10``; its README gives
no RL command of its own), with its SGD (momentum 0.9, weight decay 5e-4).
The earlier 0.1 was the first SalUn README's rate *for SalUn* (masked, half
the weights frozen), on CIFAR-10 / ResNet-18. Batches use the task recipe's
batch size. ``salun`` is this same loop restricted to a weight-saliency mask.
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
SOURCE = "Unlearn-Saliency arg_parser defaults"
RL_PARAMS = (
    *optimizer_params(
        lr=0.01, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
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
    model, x = step.model, task.x
    size = task.recipe.batch_size
    loop = (
        EpochLoop(step, task, params, method)
        if mask is None
        else MaskedLoop(step, task, params, method, mask)
    )
    is_forget = torch.zeros(task.y.numel(), dtype=torch.bool, device=task.y.device)
    is_forget[step.forget] = True
    both = torch.cat([step.forget, step.retain])
    for epoch in loop.epochs():
        labels = task.y.clone()
        labels[step.forget] = random_labels(
            step.forget.numel(),
            task.y[step.forget],
            task.num_classes,
            (*step.seed, "labels", epoch),
            params["exclude_true"],
        )
        for idx in batches(both, step.seed, epoch, size):
            forget = int(is_forget[idx].sum())
            loss = F.cross_entropy(model(x[idx]), labels[idx])
            loop.descend(loss, retain=idx.numel() - forget, forget=forget)
    return loop.finish()


class RandomLabel(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        return relabel_training(step, task, self.params, NAME)


def create(params: Mapping[str, Any]) -> RandomLabel:
    return RandomLabel(params)


SPEC = MethodSpec(name=NAME, create=create, params=RL_PARAMS, description=__doc__ or "")
