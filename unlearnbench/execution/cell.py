"""One cell: a method's ``fit`` and timed ``unlearn`` on a task, then the evaluators.

:class:`TaskContext` is the :class:`unlearnbench.specs.MethodContext` the host
gives plugins (the shared training loop, the task's original model, cached
artifacts, work counting); :func:`run_method` runs a method over a request's
stream of deletions and times it; :func:`evaluate_cell` turns the outcome into
the cell's metrics. The runner (:mod:`unlearnbench.execution.runner`) does the
bookkeeping around them.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.execution.cache import ArtifactCache, content_key
from unlearnbench.execution.isolation import TaskGuard, private_inputs
from unlearnbench.execution.plan import Component
from unlearnbench.execution.store import MetricValue
from unlearnbench.host.registry import Registry
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import (
    Evaluation,
    EvaluationInputs,
    EvaluatorSpec,
    MethodSpec,
    Replicate,
    combine_stream_costs,
)
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


@dataclass
class Outcome:
    """A method's result on a task: the model, its costs, its curves, its times."""

    model: nn.Module
    costs: dict[str, float]
    series: dict[str, list[float]] = field(default_factory=dict)
    fit_seconds: float = 0.0
    unlearn_seconds: float = 0.0
    fit_work: float = 0.0  # sample-passes of fit (cached builds included)
    unlearn_work: float = 0.0  # sample-passes of the unlearning steps
    naive: nn.Module | None = None  # exact retraining under the method's own procedure
    naive_work: float = 0.0


def run_method(
    spec: MethodSpec,
    component: Component,
    task: Task,
    ctx: TaskContext,
    *,
    with_naive: bool = True,
) -> Outcome:
    """``fit`` then the timed ``unlearn`` over the request's stream of deletions.

    Costs of a stream are combined by :func:`unlearnbench.specs.combine_stream_costs`
    (summed, or by name suffix: max, mean or last). Series of later steps get
    a ``@step<i>`` suffix. ``with_naive = False`` skips the method's ``naive``
    retraining (replicates need only the unlearned model).
    """
    method = spec.create(component.params)
    work_start = ctx.work
    with ctx.guard.call("method", component.name):  # each call is checked, untimed
        start = time.perf_counter()
        state = method.fit(task, ctx)
        if task.device.type == "cuda":  # fit's queued GPU work belongs to fit, not unlearn
            torch.cuda.synchronize(task.device)
        fit_seconds = time.perf_counter() - start
    fit_work = ctx.work - work_start
    naive, naive_work = None, 0.0
    naive_of = getattr(method, "naive", None)
    if with_naive and callable(naive_of):  # before unlearn, which may update the stored state
        before = ctx.work
        with ctx.guard.call("method", component.name):
            naive = naive_of(state, task.splits.forget, task, ctx).model
        naive.eval()
        naive_work = ctx.work - before
    step_costs: list[dict[str, float]] = []
    series: dict[str, list[float]] = {}
    seconds = 0.0
    result = None
    work_start = ctx.work
    with ctx.guard.call("method", component.name):  # checked once, after the whole stream
        for step, forget in enumerate(task.forget_steps):
            start = time.perf_counter()
            result = method.unlearn(state, forget, task, ctx)
            if task.device.type == "cuda":
                torch.cuda.synchronize(task.device)
            seconds += time.perf_counter() - start
            state = result.state
            step_costs.append(result.costs)
            suffix = f"@step{step}" if step else ""
            series.update(
                {f"{name}{suffix}": list(map(float, v)) for name, v in result.series.items()}
            )
    assert result is not None  # forget_steps is never empty
    result.model.eval()
    return Outcome(
        result.model,
        combine_stream_costs(step_costs),
        series,
        fit_seconds,
        seconds,
        fit_work=fit_work,
        unlearn_work=ctx.work - work_start,
        naive=naive,
        naive_work=naive_work,
    )


def replicate_task(task: Task, label: object, index: int) -> Task:
    """Replicate ``index`` of ``label``: the task with its own training seed
    (initialisation, batch order, a method's own draws) but the same data, splits,
    forget set and request stream, which are never drawn again. Its ``key`` and
    ``train_key`` derive from the task's and the seed, so its original and every
    artifact built on it are cached apart from the task's own."""
    seed = derive_seed(task.seed, "replicate", label, index)
    return dataclasses.replace(
        task,
        seed=seed,
        key=content_key({"replicate_of": task.key, "seed": seed}),
        train_key=content_key({"replicate_of": task.train_key, "seed": seed}),
    )


class _NotArchitecture(Exception):
    """A replicate's model does not load into the task's architecture (an ensemble)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__("the model is not of the task's architecture")
        self.model = model


class Replicates:
    """The host's ``inputs.replicates(n, label)`` for one cell (see
    :class:`unlearnbench.specs.EvaluationInputs`).

    Replicate ``i`` runs on :func:`replicate_task` with its own
    :class:`TaskContext`: ``ctx.original()`` is that replicate's original; the
    method (``fit`` + every ``unlearn`` step, via :func:`run_method`, without its
    ``naive``) and the reference method are each run on it and their models'
    state dicts cached under ``(method ident, task key)`` and the replicate's
    training identity, so every evaluator, cell and re-run shares them. A model
    that is not of the task's architecture (an ensemble) cannot be rebuilt from a
    state dict: it is kept in memory for this cell only and rebuilt by the next.
    The work goes into :attr:`Replicate.work`, never into the cell's context or
    the method's costs.
    """

    def __init__(
        self,
        task: Task,
        cache: ArtifactCache,
        method: tuple[MethodSpec, Component],
        reference: tuple[MethodSpec, Component],
        guard: TaskGuard | None = None,
    ) -> None:
        self.task = task
        self.cache = cache
        self.method = method
        self.reference = reference
        self.guard = guard  # the cell's (a replicate shares its task's data)
        self._in_memory: dict[str, tuple[nn.Module, float]] = {}

    def __call__(self, n: int, label: object) -> list[Replicate]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"replicates needs a count >= 1, got {n!r}")
        return [self.one(label, i) for i in range(n)]

    def one(self, label: object, index: int) -> Replicate:
        task = replicate_task(self.task, label, index)
        ctx = TaskContext(task, self.cache, self.guard)
        original = ctx.original()
        unlearned = self._run(*self.method, task, ctx)
        if self.method[1].ident() == self.reference[1].ident():
            retrained = unlearned  # the reference itself: one run, not two
        else:
            retrained = self._run(*self.reference, task, ctx)
        return Replicate(original, unlearned, retrained, ctx.work)

    def _run(
        self, spec: MethodSpec, component: Component, task: Task, ctx: TaskContext
    ) -> nn.Module:
        params = {"method": component.ident(), "task": self.task.key}
        memo = content_key(ctx.artifact_parts("replicate-model", params))
        if memo in self._in_memory:
            model, work = self._in_memory[memo]
            ctx.add_work(work)
            return model

        def build() -> dict[str, Any]:
            outcome = run_method(spec, component, task, ctx, with_naive=False)
            state = outcome.model.state_dict()
            try:
                ctx.load_model(state)
            except RuntimeError:
                raise _NotArchitecture(outcome.model) from None
            return {"state_dict": state}

        before = ctx.work
        try:
            value = ctx.cached("replicate-model", params, build)
        except _NotArchitecture as exc:
            self._in_memory[memo] = (exc.model, ctx.work - before)
            return exc.model
        return ctx.load_model(value["state_dict"])


def evaluate_cell(
    registry: Registry,
    evaluators: Sequence[Component],
    task: Task,
    ctx: TaskContext,
    original: nn.Module,
    reference: Outcome,
    outcome: Outcome,
    replicates: Callable[[int, object], list[Replicate]] | None = None,
) -> tuple[list[MetricValue], dict[str, list[float]]]:
    """Run every evaluator on one cell; each metric carries its declared direction,
    unit and role, and the method's own cost counters follow as ``cost`` metrics.
    An evaluator returning a metric its spec does not declare fails the cell.
    ``replicates`` becomes ``inputs.replicates`` (a :class:`Replicates`)."""
    costs = {
        **outcome.costs,
        "unlearn_seconds": outcome.unlearn_seconds,
        "fit_seconds": outcome.fit_seconds,
        "reference_seconds": reference.unlearn_seconds,
        "unlearn_sample_passes": outcome.unlearn_work,
        "fit_sample_passes": outcome.fit_work,
        "reference_sample_passes": reference.unlearn_work,
    }
    if outcome.naive is not None:
        costs["naive_sample_passes"] = outcome.naive_work
    inputs = EvaluationInputs(
        task=task,
        original=original,
        unlearned=outcome.model,
        reference=reference.model,
        costs=costs,
        series=outcome.series,
        naive=outcome.naive,
        replicates=replicates,
    )
    metrics: list[MetricValue] = []
    series = dict(outcome.series)
    for component in evaluators:
        spec: EvaluatorSpec = registry.get("evaluator", component.name)  # type: ignore[assignment]
        declared = {m.name: m for m in spec.metrics}
        with ctx.guard.call("evaluator", component.name):  # on models of its own
            result = spec.create(component.params).evaluate(private_inputs(inputs), ctx)
        if isinstance(result, Evaluation):
            values, extra = result.metrics, result.series
        else:
            values, extra = dict(result), {}
        for name, value in values.items():
            if name not in declared:
                raise ValueError(
                    f"evaluator {component.name!r} returned metric {name!r}, which its "
                    f"spec does not declare (declared: {sorted(declared)})"
                )
            meta = declared[name]
            about: dict[str, Any] = {"evaluator": component.name, "role": meta.role}
            if meta.informative_above is not None:
                about["informative_above"] = meta.informative_above
            if not math.isfinite(float(value)):  # stored as NULL: say which and what it was
                about["not_finite"] = str(float(value))
            metrics.append(MetricValue(name, float(value), meta.direction, meta.unit, about))
        series.update({f"{component.name}.{k}": list(v) for k, v in extra.items()})
    reported = {m.name for m in metrics}
    metrics += [
        MetricValue(name, float(value), "none", "", {"evaluator": "", "role": "cost"})
        for name, value in outcome.costs.items()
        if name not in reported
    ]
    return metrics, series
