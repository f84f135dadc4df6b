"""``ssd`` (SSD): dampen the weights far more important to the forget set than to the data.

Foster et al. 2024 ("Fast Machine Unlearning Without Retraining Through
Selective Synaptic Dampening"). No training: the importance of a weight over a
set is the mean, over the set's batches, of the squared gradient of the batch's
mean cross-entropy (a diagonal Fisher estimate), taken at the trained model in
eval mode. With ``[]_D`` the importance over the full training data still held
(this deletion's retain and forget sets) and ``[]_f`` over the forget set, every
weight with ``[]_f > alpha·[]_D`` is multiplied by ``min(lambda·[]_D / []_f,
1)``; all others stay as they are.

Source: if-loops/selective-synaptic-dampening, ``ssd.py``
(``ParameterPerturber.calc_importance`` and ``modify_weight``) and
``forget_random_strategies.py`` (``ssd_tuning``), commit
``77161ccaa655e78d2f6612253594b772e15427f5``. Defaults there: ``lambda``
(``dampening_constant``) 1, ``alpha`` (``selection_weighting``) 10 (their
ResNet-18 CIFAR value; 5 for ViT), ``exponent`` 1 and ``lower_bound`` 1 (fixed
here: the factor is never above 1). The tuning ranges are the authors' TPE
search, alpha in [0.1, 100] and lambda in [0.1, 5]. Batches use the task
recipe's batch size, in the seeded shuffled order (the reference's loaders
shuffle). SSD needs the full training set's importance; the reference notes it
can be computed once before any deletion, here it is computed per deletion so
the stream's later steps see only the data still held.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import PostHocMethod, UnlearnStep, batches, finish_step

NAME = "ssd"
SOURCE = "Foster et al. 2024 reference ssd_tuning"
PARAMS = (
    Param(
        "alpha",
        10.0,
        f"selection weighting: dampen where forget importance > alpha x full importance "
        f"({SOURCE}); tuned on a log scale over the authors' [0.1, 100]",
        minimum=0.0,
        exclusive_minimum=True,
        tunable=True,
        log=True,
        search_range=(0.1, 100.0),
    ),
    Param(
        "dampening",
        1.0,
        f"dampening constant lambda ({SOURCE}); tuned over the authors' [0.1, 5]",
        minimum=0.0,
        exclusive_minimum=True,
        tunable=True,
        search_range=(0.1, 5.0),
    ),
)


def importances(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    seed: object,
    batch_size: int,
) -> dict[str, torch.Tensor]:
    """Mean over batches of the squared gradient of each batch's mean loss."""
    was_training = model.training
    model.eval()
    params = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    count = 0
    for idx in batches(indices, seed, 0, batch_size):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        for name, p in params.items():
            if p.grad is not None:
                total[name] += p.grad.detach() ** 2
        count += 1
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {name: t / max(count, 1) for name, t in total.items()}


@torch.no_grad()
def dampen(
    model: nn.Module,
    full: Mapping[str, torch.Tensor],
    forget: Mapping[str, torch.Tensor],
    alpha: float,
    dampening: float,
) -> int:
    """Scale the selected weights in place; returns how many were selected."""
    selected = 0
    for name, p in model.named_parameters():
        chosen = forget[name] > alpha * full[name]
        factor = (dampening * full[name] / forget[name]).clamp(max=1.0)
        p.copy_(torch.where(chosen, p * factor, p))
        selected += int(chosen.sum())
    return selected


class SelectiveSynapticDampening(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        size = task.recipe.batch_size
        held = torch.cat([step.retain, step.forget])
        full = importances(step.model, task.x, task.y, held, (*step.seed, "full"), size)
        forget = importances(step.model, task.x, task.y, step.forget, (*step.seed, "forget"), size)
        dampen(step.model, full, forget, self.params["alpha"], self.params["dampening"])
        # one forward and backward pass per example of each importance
        step.work += held.numel() + step.forget.numel()
        return finish_step(
            step, retain_passes=step.retain.numel(), forget_passes=2 * step.forget.numel()
        )


def create(params: Mapping[str, Any]) -> SelectiveSynapticDampening:
    return SelectiveSynapticDampening(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
