"""Hostile fixture plugins: buggy code that must not poison anyone else's numbers.

Loaded like any local plugin, through ``UNLEARNBENCH_PLUGINS=
tests.plugins.hostile_plugins:HostilePlugin`` (worker processes inherit it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import torch

from unlearnbench import (
    DatasetArrays,
    DatasetSpec,
    EvaluatorSpec,
    MethodSpec,
    Metric,
    Param,
    Unlearned,
    hookimpl,
)
from unlearnbench.builtin.datasets.embedded import load_digits


class PoisonData:
    """Writes into the task's shared data in ``fit`` (``where``: "fit") or ``unlearn``,
    optionally (``cache``) while building a cached artifact from the changed data."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.where = str(params["where"])
        self.cache = bool(params["cache"])

    def _poison(self, task: Any, ctx: Any) -> None:
        task.x.mul_(0.0).add_(3.0)  # every feature the same: nothing can be learned
        task.y.fill_(0)
        if self.cache:

            def build() -> dict[str, Any]:
                model = task.new_model("poisoned")
                ctx.train(model, task.splits.target)
                return {"state_dict": model.state_dict()}

            ctx.cached("poisoned-model", {}, build)

    def fit(self, task: Any, ctx: Any) -> None:
        if self.where == "fit":
            self._poison(task, ctx)

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        if self.where == "unlearn":
            self._poison(task, ctx)
        return Unlearned(model=ctx.original(), costs={})


class Stubborn:
    """Unlearning that takes ``seconds`` and swallows every exception meanwhile, the
    time limit's included (``except BaseException``)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.seconds = float(params["seconds"])

    def fit(self, task: Any, ctx: Any) -> None:
        return None

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            with contextlib.suppress(BaseException):  # the time limit's exception too
                time.sleep(0.05)
        return Unlearned(model=ctx.original(), costs={})


class ZeroModels:
    """An evaluator that zeroes every model it is given (in place)."""

    def evaluate(self, inputs: Any, ctx: Any) -> dict[str, float]:
        with torch.no_grad():
            for model in (inputs.unlearned, inputs.original, inputs.reference):
                for p in model.parameters():
                    p.zero_()
        return {"zeroed": 1.0}


class NotFinite:
    """An evaluator whose metric is NaN (or ``value``)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.value = float(params["value"])

    def evaluate(self, inputs: Any, ctx: Any) -> dict[str, float]:
        return {"broken_metric": self.value, "fine_metric": 0.5}


def load_bad_digits(params: Mapping[str, Any]) -> DatasetArrays:
    """Digits with one bad value: ``nan`` features, or a label ``label``."""
    data = load_digits({})
    x, y = data.x.clone(), data.y.clone()
    if params["nan"]:
        x.view(x.shape[0], -1)[7, 3] = float("nan")
    if int(params["label"]) != 0:
        y[11] = int(params["label"])
    return DatasetArrays(x=x, y=y, num_classes=data.num_classes, input_shape=data.input_shape)


class HostilePlugin:
    """Methods that write into the task, evaluators that zero models or return NaN,
    and a data set with bad values."""

    __name__ = "hostile"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [
            MethodSpec(
                "poison_data",
                PoisonData,
                params=(
                    Param("where", "unlearn", "fit or unlearn", choices=("fit", "unlearn")),
                    Param("cache", False, "also cache a model built from the changed data"),
                    Param(
                        "knob",
                        0.5,
                        "does nothing (so that tune has a study of it)",
                        minimum=0.0,
                        maximum=1.0,
                        tunable=True,
                    ),
                ),
                description="Writes into task.x and task.y (test fixture).",
            ),
            MethodSpec(
                "stubborn",
                Stubborn,
                params=(
                    Param(
                        "seconds",
                        3.0,
                        "how long unlearning takes",
                        minimum=0.0,
                        maximum=10.0,
                        tunable=True,
                        search_range=(0.8, 1.0),
                    ),
                ),
                description="Catches BaseException, the time limit's too (test fixture).",
            ),
        ]

    @hookimpl
    def unlearnbench_evaluators(self) -> list[EvaluatorSpec]:
        return [
            EvaluatorSpec(
                "zero_models",
                lambda p: ZeroModels(),
                metrics=(Metric("zeroed", "none"),),
                description="Zeroes the models it is given (test fixture).",
            ),
            EvaluatorSpec(
                "not_finite",
                NotFinite,
                metrics=(Metric("broken_metric", "higher"), Metric("fine_metric", "higher")),
                params=(Param("value", float("nan"), "the broken metric's value"),),
                description="Returns a NaN metric (test fixture).",
            ),
        ]

    @hookimpl
    def unlearnbench_datasets(self) -> list[DatasetSpec]:
        return [
            DatasetSpec(
                "bad_digits",
                load_bad_digits,
                params=(
                    Param("nan", False, "one NaN feature"),
                    Param("label", 0, "a label written over one example's (0: none)"),
                ),
                description="Digits with a bad value (test fixture).",
            )
        ]
