"""The :class:`unlearnbench.specs.MethodContext` the host gives every plugin.

A :class:`TaskContext` holds one task's shared training loop (``ctx.train``),
its original model (trained once, cached), the artifact cache (``ctx.cached``)
and the count of the work done (sample-passes), which becomes a method's cost.
Running and evaluating a cell with it is :mod:`unlearnbench.execution.cell`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.isolation import TaskGuard
from unlearnbench.task import Task
from unlearnbench.training import TrainStats, check_learned, train_model

WORK_KEY = "_unlearnbench_sample_passes"  # the work an artifact's build counted, kept with it


class TaskContext:
    """The :class:`unlearnbench.specs.MethodContext` the host gives plugins."""

    def __init__(self, task: Task, cache: ArtifactCache, guard: TaskGuard | None = None) -> None:
        self.task = task
        self.cache = cache
        self.guard = guard or TaskGuard(task)  # checks plugins leave the task's data as it is
        self.device = task.device
        self.work = 0.0  # sample-passes counted so far (ctx.train, add_work, cached builds)

    def add_work(self, sample_passes: float) -> None:
        if not math.isfinite(sample_passes) or sample_passes < 0:
            raise ValueError(f"add_work needs a finite count >= 0, got {sample_passes!r}")
        self.work += float(sample_passes)

    def train(
        self,
        model: nn.Module,
        indices: torch.Tensor,
        *,
        seed_label: object = "train",
        epochs: int | None = None,
        exclude: torch.Tensor | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        labels: torch.Tensor | None = None,
    ) -> TrainStats:
        task = self.task
        stats = train_model(
            model,
            task.x,
            task.y if labels is None else labels,
            indices,
            task.recipe,
            seed=(task.seed, seed_label),
            epochs=epochs,
            exclude=exclude,
            optimizer=optimizer,
        )
        self.work += stats.sample_epochs
        return stats

    def cached(
        self, name: str, params: Mapping[str, Any], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The artifact, built or loaded; either way the work of building it is counted."""
        built = False

        def counted() -> dict[str, Any]:
            nonlocal built
            before = self.work
            value = dict(build())
            self.guard.check_before_caching(name)  # never cache what changed data built
            value[WORK_KEY] = self.work - before
            built = True
            return value

        # a shallow copy of the cache's value (which may be memoised), of the same type
        value = copy.copy(self.cache.get_or_build(self.artifact_parts(name, params), counted))
        work = float(value.pop(WORK_KEY, 0.0))
        if not built:
            self.work += work
        return value

    def artifact_parts(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """What an artifact's cache key is computed from: one training configuration
        on one kind of device (weights trained on CPU and on CUDA differ)."""
        return {
            "artifact": name,
            "params": dict(params),
            "train_key": self.task.train_key,
            "device": self.task.device.type,
        }

    def original(self) -> nn.Module:
        def build() -> dict[str, Any]:
            model = self.task.new_model("init")
            stats = self.train(model, self.task.splits.target)
            check_learned(model, self.task)  # a model at chance diverged: fail, don't cache
            return {"state_dict": model.state_dict(), "seconds": stats.seconds}

        value = self.cached("original", {}, build)
        return self.load_model(value["state_dict"])

    def load_model(self, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
        model = self.task.new_model("init")
        model.load_state_dict(state_dict)
        model.eval()
        return model
