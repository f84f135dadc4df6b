"""What CF-k and EU-k share: the last ``k`` layers of a model and the
reference's training loop for them (Goel et al. 2022).

Source: shash42/Evaluating-Inexact-Unlearning, ``src/methods.py``
(``getRetrainLayers``, ``resetFinalResnet``), ``src/models.py`` (``_reinit``)
and ``src/learn.py`` (``train_loop``, ``train``), commit
``e315401512b436c76576530dc73bc99f56793e87``. Layers are the convolutions and
linear layers in module order; counting ``k`` of them from the end, every
normalisation layer met on the way is included (the reference walks the
reversed list of Conv2d / BatchNorm2d / Linear and stops right after the
``k``-th conv or linear). Here any ``ConvNd`` and any batch, layer or group norm
count, so the 1-D CNN and the MLPs work too. Only those layers train; all
others are frozen. Training is the reference's ``train_loop``: SGD over the
trainable weights (lr ``maxlr`` 0.1, momentum 0.9, weight decay 5e-5),
``CosineAnnealingWarmRestarts(T_0=1, T_mult=2, eta_min=minlr 0.005)`` stepped
once per epoch, gradients clipped to norm 10, the whole model in train mode
(frozen batch norms still update their running statistics, as there). Batches
use the task recipe's batch size (the reference: 64).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import Param, Unlearned
from unlearnbench.seeding import generator
from unlearnbench.task import Task

from unlearnbench_baselines.common import EpochLoop, UnlearnStep, batches, optimizer_params

COUNTED = (nn.modules.conv._ConvNd, nn.Linear)
ATTACHED = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
SOURCE = "Goel et al. 2022 reference train_loop"


def k_param(help_extra: str) -> Param:
    return Param(
        "k",
        1,
        "layers (conv or linear, counted from the output) that are trained; the reference "
        f"sweeps k = 1, 3, 5, 7 (minL 1, maxL 7){help_extra}; tuned over [1, 7]",
        minimum=1,
        tunable=True,
        search_range=(1, 7),
    )


def training_params(epochs: int, epochs_source: str) -> tuple[Param, ...]:
    base = optimizer_params(
        lr=0.1, epochs=epochs, optimizer="sgd", momentum=0.9, weight_decay=5e-5, source=SOURCE
    )
    return (
        *(
            dataclasses.replace(p, help=p.help.replace(f"({SOURCE})", f"({epochs_source})"))
            if p.name == "epochs"
            else p
            for p in base
        ),
        Param(
            "min_lr",
            0.005,
            f"eta_min of the warm-restart cosine schedule ({SOURCE}: minlr)",
            minimum=0.0,
        ),
        Param(
            "clip",
            10.0,
            f"gradient norm clipping ({SOURCE}); 0 turns it off",
            minimum=0.0,
        ),
    )


def last_k_layers(model: nn.Module, k: int) -> list[nn.Module]:
    """The last ``k`` conv/linear layers and the norms between them, output first."""
    layers = [m for m in model.modules() if isinstance(m, COUNTED + ATTACHED)]
    chosen: list[nn.Module] = []
    counted = 0
    for module in reversed(layers):
        chosen.append(module)
        if isinstance(module, COUNTED):
            counted += 1
        if counted >= k:
            break
    return chosen


@torch.no_grad()
def reinitialise(layers: list[nn.Module], seed: object) -> None:
    """The reference's ``_reinit``, output layer first: Kaiming-normal weights and
    zero biases for conv/linear, weight 1 and bias 0 for norms. Drawn on CPU
    from ``seed``, so every device gets the same weights."""
    gen = generator(seed, "reinit")
    for module in layers:
        weight = getattr(module, "weight", None)
        bias = getattr(module, "bias", None)
        if isinstance(module, COUNTED) and weight is not None:
            fresh = torch.empty(weight.shape)
            nn.init.kaiming_normal_(fresh, generator=gen)
            weight.copy_(fresh)
        elif weight is not None:
            weight.fill_(1.0)
        if bias is not None:
            bias.zero_()


def train_last_k(
    step: UnlearnStep,
    task: Task,
    params: Mapping[str, Any],
    method: str,
    layers: list[nn.Module],
) -> Unlearned:
    """Train only ``layers`` on the retain set with the reference's loop."""
    model, x, y = step.model, task.x, task.y
    trainable = {id(p) for m in layers for p in m.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    loop = EpochLoop(step, task, params, method)
    schedule = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        loop.opt, T_0=1, T_mult=2, eta_min=params["min_lr"]
    )
    clip = params["clip"]
    for epoch in loop.epochs():
        for idx in batches(step.retain, step.seed, epoch, task.recipe.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loop.opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), clip)
            loop.opt.step()
            loop.step.work += idx.numel()
            loop.total += loss.detach() * idx.numel()
            loop.retain_passes += idx.numel()
        schedule.step()
    for p in model.parameters():
        p.requires_grad_(True)
    return loop.finish()
