"""``conv_transpose`` (CT, Convolution Transpose): transpose conv kernels, fine-tune on retain.

The fifth-place solution of the NeurIPS 2023 Machine Unlearning challenge,
named CT by DeepUnlearn (Cadet et al. 2024), which found it, tuned, among the
two best methods. Every 2-D convolution's kernels are transposed (the two
spatial axes swapped: what the network learned is scrambled but its weight
statistics are kept), and the model is fine-tuned on the retain set with SGD
and a cosine learning rate over the epochs.

Source: xcadet/deepunlearn ``munl/unlearning/kgltop5.py`` (``rotate_weight``:
``module.weight.swapaxes(2, 3)`` for every ``Conv2d``; ``KGLTop5.unlearn``),
commit ``d3dacb6a92299177357ae5b3c78db059ac2c211d``; ``munl/settings.py`` names
it "CT". Defaults there: 3 epochs, SGD lr 1e-3, momentum 0.9, weight decay
5e-4, ``CosineAnnealingLR(T_max=epochs)`` stepped per epoch, batches of 64
(here: the task recipe's).

Choices: a kernel with non-square spatial size cannot be transposed in place,
so such a layer is refused (the reference would fail the same way); 1-D
convolutions (MNIST-1D's CNN) have no second spatial axis, and here their
kernels are *reversed* along their length, the 1-D analogue (our extension;
``conv1d = "keep"`` leaves them as they are); 3-D kernels swap their last two
axes. A model without convolutions (an MLP) is only fine-tuned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, UnlearnbenchError, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    EpochLoop,
    PostHocMethod,
    UnlearnStep,
    batches,
    optimizer_params,
)

NAME = "conv_transpose"
SOURCE = "DeepUnlearn kgltop5 defaults"
PARAMS = (
    *optimizer_params(
        lr=1e-3, epochs=3, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
    ),
    Param(
        "conv1d",
        "reverse",
        "what 1-D convolution kernels get (no second axis to swap): reversed (ours) or kept",
        choices=("reverse", "keep"),
    ),
)


class NotTransposable(UnlearnbenchError, ValueError):
    """A convolution kernel whose last two axes differ in size."""


@torch.no_grad()
def transpose_kernels(model: nn.Module, conv1d: str) -> int:
    """Transpose (2-D, 3-D) or reverse (1-D) every convolution kernel in place;
    returns how many layers changed."""
    changed = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.modules.conv._ConvNd):
            continue
        weight = module.weight
        if weight.dim() == 3:
            if conv1d == "reverse":
                weight.copy_(weight.flip(2).clone())
                changed += 1
            continue
        if weight.shape[-1] != weight.shape[-2]:
            raise NotTransposable(
                f"{NAME}: layer {name!r} has a {tuple(weight.shape[-2:])} kernel; "
                "only square kernels can be transposed"
            )
        weight.copy_(weight.transpose(-1, -2).clone())
        changed += 1
    return changed


class ConvTranspose(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        p, model, x, y = self.params, step.model, task.x, task.y
        transpose_kernels(model, p["conv1d"])
        loop = EpochLoop(step, task, p, NAME)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(loop.opt, T_max=max(p["epochs"], 1))
        for epoch in loop.epochs():
            for idx in batches(step.retain, step.seed, epoch, task.recipe.batch_size):
                loop.descend(F.cross_entropy(model(x[idx]), y[idx]), retain=idx.numel())
            schedule.step()
        return loop.finish()


def create(params: Mapping[str, Any]) -> ConvTranspose:
    return ConvTranspose(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
