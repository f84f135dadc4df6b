"""``retrain``: exact unlearning, the reference every method is measured against.

Trains a fresh model from the task's shared initialisation on ``retain`` with
the same recipe and seed as the original model. Because batch orders are drawn
over the target set and the forgotten points are dropped afterwards, retrain
sees the original's batches minus the deleted points. In a request stream each
deletion retrains from scratch on everything deleted so far removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from unlearnbench import MethodSpec, Unlearned, hookimpl
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task


class Retrain:
    def fit(self, task: Task, ctx: MethodContext) -> torch.Tensor:
        return task.splits.target.new_empty(0)  # nothing forgotten yet

    def unlearn(
        self, state: torch.Tensor, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        removed = torch.cat([state, forget])
        model = task.new_model("init")
        stats = ctx.train(model, task.splits.target, exclude=removed)
        return Unlearned(
            model=model,
            state=removed,
            costs={"retrain_sample_epochs": float(stats.sample_epochs), "prediction_cost": 1.0},
        )


def create(params: Mapping[str, Any]) -> Retrain:
    return Retrain()


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [MethodSpec(name="retrain", create=create, description=__doc__ or "")]
