"""``finetune`` (FT): fine-tune the trained model on the retain set only.

The forgotten points are simply no longer trained on; "catastrophic
forgetting" is supposed to wash their influence out (Warnecke et al. 2023;
the FT baseline of Jia et al. 2023 and Fan et al. 2024).

Defaults: lr 0.01, 10 epochs: OPTML-Group Unlearn-Saliency
``Classification/README.md`` (Unlearn-Sparse's too): ``--unlearn FT
--unlearn_lr 0.01 --unlearn_epochs 10``, for CIFAR-10 / ResNet-18; SGD with
momentum 0.9 and weight decay 5e-4 (``arg_parser.py`` defaults). The
reference trains the original for 182 epochs, so 10 FT epochs are ~5 % of a
retrain; on the tiny tasks here (30-60 recipe epochs) the same 10 epochs are
a larger share: lower ``epochs`` to keep the ratio. Batches use the task
recipe's batch size and the shared training loop
(``unlearnbench.training.train_model``), so the batch order is seeded like
every other training in the task. The reference's MultiStep schedule (decay at
epochs 91 and 136) never fires within 10 epochs and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import MethodSpec, Unlearned
from unlearnbench.task import Task
from unlearnbench.training import train_model

from unlearnbench_baselines.common import (
    PostHocMethod,
    UnlearnStep,
    build_optimizer,
    finish_step,
    optimizer_params,
)

NAME = "finetune"
SOURCE = "Unlearn-Sparse/SalUn reference FT"
PARAMS = optimizer_params(
    lr=0.01, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=5e-4, source=SOURCE
)


class FineTune(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        stats = train_model(
            step.model,
            task.x,
            task.y,
            step.retain,
            task.recipe,
            seed=step.seed,
            epochs=self.params["epochs"],
            optimizer=build_optimizer(step.model, task, self.params),
        )
        step.work += stats.sample_epochs
        return finish_step(step, retain_passes=stats.sample_epochs, forget_passes=0)


def create(params: Mapping[str, Any]) -> FineTune:
    return FineTune(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
