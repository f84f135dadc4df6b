"""``salun`` (SalUn): random-label unlearning restricted to salient weights.

Fan et al. 2024 ("SalUn: Empowering Machine Unlearning via Gradient-based
Weight Saliency"). The saliency of a weight is the magnitude of the gradient
of the forget loss at the trained model, ``|∇θ CE(forget; θ₀)|`` (summed over
the forget batches, model in eval mode). One global threshold keeps the most
salient ``1 − sparsity`` share of all weights (biases included); only those
are updated, by the ``random_label`` loop (random labels on forget mixed with
true labels on retain, one shuffled stream; see that module for why the
stream is mixed). The other weights stay exactly at their trained values:
their gradient is masked, and since momentum and weight decay would still
move them they are restored after every step (the reference does the same,
``_restore_masked_params``).

Defaults: sparsity 0.5 (the hard mask ``with_0.5.pt`` / ``hard_0.5.pt`` of
OPTML-Group Unlearn-Saliency ``generate_mask.py``, the paper's median
threshold); lr 0.013, 10 epochs: its ``Classification/README.md`` example
for ResNet-18 on CIFAR-10, 10 % (4,500 points) forgotten (``main_random.py
--unlearn RL --unlearn_epochs 10 --unlearn_lr 0.013``); SGD with momentum 0.9
and weight decay 5e-4 (``arg_parser.py``). The first README gave lr 0.1,
our earlier default; at 0.1 with forget-only batches SalUn fell to chance
(0.10 test accuracy) on the MNIST-1D backdoor request. The reference's mask
script takes optimiser steps while it accumulates the gradient; here the
gradient is taken at the trained model without changing it, as the paper's
definition says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import PostHocMethod, UnlearnStep
from unlearnbench_baselines.random_label import RL_PARAMS, relabel_training

NAME = "salun"
PARAMS = (
    Param(
        "sparsity",
        0.5,
        "share of weights frozen: the mask keeps the 1 - sparsity most salient (reference 0.5)",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        tunable=True,
        search_range=(0.1, 0.9),
    ),
    *(
        replace(p, default=0.013, help="learning rate (Unlearn-Saliency README, CIFAR-10 example)")
        if p.name == "lr"
        else p
        for p in RL_PARAMS
    ),
)


def saliency_mask(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    forget: torch.Tensor,
    *,
    sparsity: float,
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """``{parameter name: 0/1 mask}`` keeping the top ``1 - sparsity`` gradient magnitudes."""
    was_training = model.training
    model.eval()
    params = dict(model.named_parameters())
    grads = {name: torch.zeros_like(p) for name, p in params.items()}
    for begin in range(0, forget.numel(), batch_size):
        idx = forget[begin : begin + batch_size]
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        for name, p in params.items():
            if p.grad is not None:
                grads[name] += p.grad
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    flat = torch.cat([g.abs().flatten() for g in grads.values()])
    keep = round((1.0 - sparsity) * flat.numel())
    chosen = torch.zeros_like(flat)
    if keep > 0:
        chosen[torch.topk(flat, keep, sorted=False).indices] = 1.0
    masks, start = {}, 0
    for name, g in grads.items():
        masks[name] = chosen[start : start + g.numel()].view_as(g)
        start += g.numel()
    return masks


class SalUn(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        mask = saliency_mask(
            step.model,
            task.x,
            task.y,
            step.forget,
            sparsity=self.params["sparsity"],
            batch_size=task.recipe.batch_size,
        )
        step.work += step.forget.numel()  # the saliency gradient: one pass per forget point
        return relabel_training(step, task, self.params, NAME, mask=mask)


def create(params: Mapping[str, Any]) -> SalUn:
    return SalUn(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
