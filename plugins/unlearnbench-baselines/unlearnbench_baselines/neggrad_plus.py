"""``neggrad_plus`` (NegGrad+): descend on retain while ascending on forget.

Kurmanji et al. 2023 ("Towards Unbounded Machine Unlearning"): every retain
batch is paired with the next batch of the forget set (cycled) and the model
minimises ``β·CE(retain) − (1 − β)·CE(forget)``. One epoch is one pass over
the retain set.

Defaults from the authors' code (meghdadk/SCRUB, ``small_scale_unlearning``
notebook: ``ng_alpha = 0.95``, ``ng_epochs = 10``, ``ng_lr = 0.01``, plain SGD
without momentum or weight decay). Their loop also adds an L2 penalty pulling
the weights towards the original; it is left out here (``weight_decay`` gives
the usual decay towards zero instead). Both batches use the task recipe's
batch size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import MethodContext, Task

from unlearnbench_baselines.common import (
    StreamState,
    batches,
    begin_step,
    build_optimizer,
    check_finite,
    check_optimizer_params,
    cycled_batches,
    finish_step,
    fit_original,
    optimizer_params,
)

NAME = "neggrad_plus"
SOURCE = "Kurmanji et al. 2023 reference code"
PARAMS = (
    Param("beta", 0.95, f"weight of the retain loss; 1 - beta weighs the forget ascent ({SOURCE})"),
    *optimizer_params(
        lr=0.01, epochs=10, optimizer="sgd", momentum=0.0, weight_decay=0.0, source=SOURCE
    ),
)


class NegGradPlus:
    def __init__(self, params: Mapping[str, Any]) -> None:
        check_optimizer_params(NAME, params)
        if not 0.0 <= params["beta"] <= 1.0:
            raise ValueError(f"{NAME}: beta must be in [0, 1], got {params['beta']}")
        self.params = dict(params)

    def fit(self, task: Task, ctx: MethodContext) -> StreamState:
        return fit_original(task, ctx)

    def unlearn(
        self, state: StreamState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        step = begin_step(state, forget, task, NAME)
        model, p, x, y = step.model, self.params, task.x, task.y
        beta, size = p["beta"], task.recipe.batch_size
        opt = build_optimizer(model, task, p)
        forget_stream = cycled_batches(step.forget, (*step.seed, "forget"), size)
        model.train()
        retain_passes = forget_passes = 0
        for epoch in range(p["epochs"]):
            total = torch.zeros((), device=task.device)
            for idx in batches(step.retain, step.seed, epoch, size):
                fidx = next(forget_stream)
                loss = beta * F.cross_entropy(model(x[idx]), y[idx]) - (
                    1.0 - beta
                ) * F.cross_entropy(model(x[fidx]), y[fidx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += loss.detach()
                retain_passes += idx.numel()
                forget_passes += fidx.numel()
            check_finite(total, NAME, epoch, p["lr"])
        return finish_step(step, retain_passes=retain_passes, forget_passes=forget_passes)


def create(params: Mapping[str, Any]) -> NegGradPlus:
    return NegGradPlus(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
