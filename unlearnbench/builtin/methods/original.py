"""``original``: do nothing. The floor: the model trained with the forget set in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from unlearnbench import MethodSpec, Unlearned, hookimpl
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task


class Original:
    def fit(self, task: Task, ctx: MethodContext) -> nn.Module:
        return ctx.original()

    def unlearn(
        self, state: nn.Module, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        return Unlearned(
            model=state,
            state=state,
            costs={"retrain_sample_epochs": 0.0, "prediction_cost": 1.0},
        )


def create(params: Mapping[str, Any]) -> Original:
    return Original()


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [MethodSpec(name="original", create=create, description=__doc__ or "")]
