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

import torch.nn.functional as F
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task
from unlearnbench.training import cycled_batches

from unlearnbench_baselines.common import (
    EpochLoop,
    PostHocMethod,
    UnlearnStep,
    batches,
    optimizer_params,
)

NAME = "neggrad_plus"
SOURCE = "Kurmanji et al. 2023 reference code"
PARAMS = (
    Param(
        "beta",
        0.95,
        f"weight of the retain loss; 1 - beta weighs the forget ascent ({SOURCE})",
        minimum=0.0,
        maximum=1.0,
        tunable=True,
    ),
    *optimizer_params(
        lr=0.01, epochs=10, optimizer="sgd", momentum=0.0, weight_decay=0.0, source=SOURCE
    ),
)


class NegGradPlus(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        model, x, y = step.model, task.x, task.y
        beta, size = self.params["beta"], task.recipe.batch_size
        loop = EpochLoop(step, task, self.params, NAME)
        forget_stream = cycled_batches(step.forget, (*step.seed, "forget"), size)
        for epoch in loop.epochs():
            for idx in batches(step.retain, step.seed, epoch, size):
                fidx = next(forget_stream)
                loss = beta * F.cross_entropy(model(x[idx]), y[idx]) - (
                    1.0 - beta
                ) * F.cross_entropy(model(x[fidx]), y[fidx])
                loop.descend(loss, retain=idx.numel(), forget=fidx.numel(), weighted=False)
        return loop.finish()


def create(params: Mapping[str, Any]) -> NegGradPlus:
    return NegGradPlus(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
