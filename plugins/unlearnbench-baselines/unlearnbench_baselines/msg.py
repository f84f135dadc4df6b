"""``msg`` (MSG, Masked Small Gradients): re-initialise low-gradient conv weights, fine-tune.

The second-place solution of the NeurIPS 2023 Machine Unlearning challenge,
named MSG by DeepUnlearn (Cadet et al. 2024), which found it, tuned, among the
two best methods. Gradients are accumulated at the trained model: ``+CE`` over
a random retain subset as large as the forget set, ``−CE`` over the forget set.
In every convolution, the ``init_rate`` share of weights with the *smallest*
accumulated gradient magnitude is re-initialised (Kaiming-normal, fan-out,
ReLU gain) and the model is fine-tuned on the retain set with those weights'
gradients at full strength and every other conv weight's gradient ×0.1.

Source: xcadet/deepunlearn ``munl/unlearning/kgltop2.py``
(``get_grads_for_snip``, ``re_init_model_snip_ver2_little_grad``,
``MaskConv2d``/``Masker``, ``LinearAnnealingLR``, ``KGLTop2.unlearn``), commit
``d3dacb6a92299177357ae5b3c78db059ac2c211d``; ``munl/settings.py`` names it
"MSG". Defaults there: ``init_rate`` 0.3, 5 epochs, SGD lr 1e-3, momentum 0.9,
weight decay 5e-4, the learning rate rising linearly over the first
``(epochs + 1) // 2`` epochs and falling linearly after (per epoch), batches
of 64 (here: the task recipe's; the retain subset's gradient keeps the
reference's 64).

Choices: the reference touches ``nn.Conv2d`` only; here any ``ConvNd`` (the
1-D CNN of MNIST-1D), and ``layers = "conv_and_linear"`` adds linear layers,
so the method is more than fine-tuning on an MLP, where with the default
nothing is re-initialised. The mask multiplies the gradient, as the
reference's ``Masker`` does, so weight decay still acts on every weight. The
gradients are taken in eval mode (no dropout noise); the retain subset, the
batch order and the new weights come from the deletion's seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.seeding import generator
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    EpochLoop,
    PostHocMethod,
    UnlearnStep,
    batches,
    optimizer_params,
)

NAME = "msg"
SOURCE = "DeepUnlearn kgltop2 defaults"
SNIP_RETAIN_BATCH = 64  # get_grads_for_snip's retain DataLoader
PARAMS = (
    Param(
        "init_rate",
        0.3,
        f"share of each layer's weights re-initialised ({SOURCE}); tuned over [0.05, 0.9]",
        minimum=0.0,
        maximum=1.0,
        tunable=True,
        search_range=(0.05, 0.9),
    ),
    Param(
        "layers",
        "conv",
        "layers whose small-gradient weights are re-initialised (reference: Conv2d only)",
        choices=("conv", "conv_and_linear"),
    ),
    *optimizer_params(
        lr=1e-3, epochs=5, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
    ),
)


def chosen_layers(model: nn.Module, layers: str) -> list[nn.Module]:
    kinds: tuple[type, ...] = (nn.modules.conv._ConvNd,)
    if layers == "conv_and_linear":
        kinds += (nn.Linear,)
    return [m for m in model.modules() if isinstance(m, kinds)]


def snip_gradients(
    model: nn.Module, task: Task, step: UnlearnStep, batch_size: int
) -> tuple[int, int]:
    """Leave ``+CE`` (retain subset) ``−CE`` (forget) summed batch gradients in
    ``.grad``; returns the retain and forget examples used."""
    x, y = task.x, task.y
    count = step.forget.numel()
    perm = torch.randperm(step.retain.numel(), generator=generator(step.seed, "msg-subset"))
    subset = step.retain[perm[:count].to(step.retain.device)]
    model.eval()
    model.zero_grad(set_to_none=True)
    for idx in batches(subset, (*step.seed, "msg-retain"), 0, SNIP_RETAIN_BATCH):
        F.cross_entropy(model(x[idx]), y[idx]).backward()
    for idx in batches(step.forget, (*step.seed, "msg-forget"), 0, batch_size):
        (-F.cross_entropy(model(x[idx]), y[idx])).backward()
    return subset.numel(), count


@torch.no_grad()
def reinit_small_gradients(
    layers: list[nn.Module], rate: float, seed: object
) -> dict[int, torch.Tensor]:
    """Re-initialise each layer's ``rate`` smallest-|grad| weights; returns the
    gradient masks (1 re-initialised, 0.1 kept) by ``id`` of the weight."""
    gen = generator(seed, "msg-init")
    masks: dict[int, torch.Tensor] = {}
    for module in layers:
        weight = cast(torch.Tensor, module.weight)
        if weight.grad is None:
            continue
        chosen = torch.zeros_like(weight, dtype=torch.bool)
        k = round(rate * chosen.numel())
        top = torch.topk(-weight.grad.abs().view(-1), k=k)
        chosen.view(-1)[top.indices] = True
        fresh = torch.empty(weight.shape)
        nn.init.kaiming_normal_(fresh, mode="fan_out", nonlinearity="relu", generator=gen)
        weight[chosen] = fresh.to(weight.device)[chosen]
        mask = chosen.float()
        mask[mask == 0] += 0.1
        masks[id(weight)] = mask
    return masks


def linear_annealing(epoch: int, epochs: int) -> float:
    """The reference's ``LinearAnnealingLR`` factor for 0-based ``epoch``."""
    count, rise, total = epoch + 1, (epochs + 1) // 2, epochs + 1
    if count <= rise:
        return count / rise
    return (total - count) / (total - rise)


class GradientMaskedLoop(EpochLoop):
    """The epoch loop with each masked weight's gradient multiplied by its mask."""

    masks: dict[int, torch.Tensor]

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in self.model.parameters():
            mask = self.masks.get(id(p))
            if mask is not None and p.grad is not None:
                p.grad.mul_(mask)
        self.opt.step()


class MaskedSmallGradients(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        p, model, x, y = self.params, step.model, task.x, task.y
        size = task.recipe.batch_size
        snip_retain, snip_forget = snip_gradients(model, task, step, size)
        layers = chosen_layers(model, p["layers"])
        masks = reinit_small_gradients(layers, p["init_rate"], step.seed)
        model.zero_grad(set_to_none=True)
        loop = GradientMaskedLoop(step, task, p, NAME)
        loop.masks = masks
        for epoch in loop.epochs():
            for group in loop.opt.param_groups:
                group["lr"] = p["lr"] * linear_annealing(epoch, p["epochs"])
            for idx in batches(step.retain, step.seed, epoch, size):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                loop.descend(loss, retain=idx.numel())
        loop.retain_passes += snip_retain
        loop.forget_passes += snip_forget
        step.work += snip_retain + snip_forget
        return loop.finish()


def create(params: Mapping[str, Any]) -> MaskedSmallGradients:
    return MaskedSmallGradients(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
