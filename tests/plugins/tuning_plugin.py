"""A tiny tunable method for the tuning tests: fine-tune the original on retain.

``epochs`` (1..4) and ``lr`` (log) are tunable, so its work per trial is
``epochs x |retain|`` sample-passes, which makes the work cap testable. Every
task it is handed is appended to :data:`SEEN`, so a test can check what a
method could read during tuning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from unlearnbench import MethodSpec, Param, Unlearned, hookimpl

SEEN: list[Any] = []


class Finetune:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def fit(self, task: Any, ctx: Any) -> Any:
        SEEN.append(task)
        return ctx.original()  # the shared training: fit's work, outside the unlearning cap

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        model = state
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=self.params["lr"])
        ctx.train(
            model,
            task.splits.retain,
            seed_label="tuning-fixture",
            epochs=self.params["epochs"],
            optimizer=optimizer,
        )
        return Unlearned(model=model)


class TuningPlugin:
    __name__ = "tuning_fixture"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        params = (
            Param("epochs", 1, "fine-tuning epochs", minimum=1, maximum=4, tunable=True),
            Param("lr", 0.01, "SGD rate", minimum=1e-4, maximum=0.3, tunable=True, log=True),
            Param("note", "a", "not tunable", choices=("a", "b")),
        )
        return [
            MethodSpec("tiny_finetune", Finetune, params=params, description="Tunable fine-tuning.")
        ]
