"""One cell: a method's ``fit`` and timed ``unlearn`` on a task, then the evaluators.

:func:`run_method` runs a method over a request's stream of deletions and times
it, with the task's :class:`~unlearnbench.execution.context.TaskContext`;
:func:`evaluate_cell` turns the outcome into the cell's metrics (with the
replicates and trained-on models evaluators ask for). The task runner
(:mod:`unlearnbench.execution.task_runner`) does the bookkeeping around them.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.execution.cache import ArtifactCache, content_key
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.isolation import TaskGuard, private_inputs
from unlearnbench.execution.plan import Component
from unlearnbench.execution.store import MetricValue
from unlearnbench.host.registry import Registry
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import (
    RATIO_SUFFIXES,
    Evaluation,
    EvaluationInputs,
    EvaluatorSpec,
    MethodSpec,
    Replicate,
    ReplicateSource,
    combine_stream_costs,
)
from unlearnbench.task import Task


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
    trained: nn.Module | None = None  # the model the method unlearns from, if its own


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
    retraining (replicates need only the unlearned model). The method's
    ``trained`` model, where it defines one, is taken after ``fit`` and before
    the first ``unlearn`` and copied, so no later step can change it.
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
    trained_of = getattr(method, "trained", None)  # before unlearn, like naive; a snapshot
    trained = copy.deepcopy(trained_of(state, task, ctx)).eval() if callable(trained_of) else None
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
        trained=trained,
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
    """The host's ``inputs.replicates(n, label, naive=False)`` for one cell (see
    :class:`unlearnbench.specs.EvaluationInputs`).

    Replicate ``i`` runs on :func:`replicate_task` with its own
    :class:`TaskContext`: ``ctx.original()`` is that replicate's original; the
    method (``fit`` + every ``unlearn`` step, via :func:`run_method`, without its
    ``naive``) and the reference method are each run on it and their models'
    state dicts cached under ``(method ident, task key)`` and the replicate's
    training identity, so every evaluator, cell and re-run shares them. With
    ``naive=True`` the method's ``naive`` is run too (``fit``, then ``naive``
    on the request's whole forget set, as :func:`run_method` does), cached the
    same way apart: only evaluators that ask for it pay for it. A model that is
    not of the task's architecture (an ensemble) cannot be rebuilt from a state
    dict: it is kept in memory for this cell only and rebuilt by the next. The
    work goes into :attr:`Replicate.work`, never into the cell's context or the
    method's costs.
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

    def __call__(self, n: int, label: object, *, naive: bool = False) -> list[Replicate]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"replicates needs a count >= 1, got {n!r}")
        return [self.one(label, i, naive=naive) for i in range(n)]

    def one(self, label: object, index: int, *, naive: bool = False) -> Replicate:
        task = replicate_task(self.task, label, index)
        ctx = TaskContext(task, self.cache, self.guard)
        original = ctx.original()
        unlearned = self._run(*self.method, task, ctx)
        of_reference = self.method[1].ident() == self.reference[1].ident()
        # the reference itself: one run, not two
        retrained = unlearned if of_reference else self._run(*self.reference, task, ctx)
        naive_model = self._naive(task, ctx) if naive else None
        return Replicate(original, unlearned, retrained, ctx.work, naive_model, of_reference)

    def _run(
        self, spec: MethodSpec, component: Component, task: Task, ctx: TaskContext
    ) -> nn.Module:
        def make() -> nn.Module:
            return run_method(spec, component, task, ctx, with_naive=False).model

        return self._model("replicate-model", component, task, ctx, make)

    def _naive(self, task: Task, ctx: TaskContext) -> nn.Module | None:
        """The method's ``naive`` model on the replicate, or ``None`` without one."""
        spec, component = self.method
        method = spec.create(component.params)
        naive_of = getattr(method, "naive", None)
        if not callable(naive_of):
            return None

        def make() -> nn.Module:
            state = method.fit(task, ctx)
            model: nn.Module = naive_of(state, task.splits.forget, task, ctx).model
            return model.eval()

        return self._model("replicate-naive", component, task, ctx, make)

    def _model(
        self,
        name: str,
        component: Component,
        task: Task,
        ctx: TaskContext,
        make: Callable[[], nn.Module],
    ) -> nn.Module:
        params = {"method": component.ident(), "task": self.task.key}
        memo = content_key(ctx.artifact_parts(name, params))
        if memo in self._in_memory:
            model, work = self._in_memory[memo]
            ctx.add_work(work)
            return model

        def build() -> dict[str, Any]:
            model = make()
            state = model.state_dict()
            try:
                ctx.load_model(state)
            except RuntimeError:
                raise _NotArchitecture(model) from None
            return {"state_dict": state}

        before = ctx.work
        try:
            value = ctx.cached(name, params, build)
        except _NotArchitecture as exc:
            self._in_memory[memo] = (exc.model, ctx.work - before)
            return exc.model
        return ctx.load_model(value["state_dict"])


def counter_role(name: str) -> str:
    """A method's own counter is a ``cost``, or a ``speed`` (a ratio, aggregated
    geometrically) when its name ends like one (``block_speedup``)."""
    return "speed" if name.endswith(RATIO_SUFFIXES) else "cost"


def task_trained_on(task: Task, indices: torch.Tensor, label: object) -> Task:
    """``task`` with ``indices`` as its target set and nothing to forget, trained
    with its own seed (``derive_seed(task.seed, "trained-on", label)``); its
    ``key`` and ``train_key`` derive from the task's, the seed and the indices,
    so a method's artifacts built on it are cached apart from the task's own."""
    indices = indices.to(task.device)
    seed = derive_seed(task.seed, "trained-on", label)
    digest = hashlib.sha256(indices.long().cpu().numpy().astype("<i8").tobytes()).hexdigest()
    empty = indices.new_empty(0)
    splits = dataclasses.replace(task.splits, target=indices, forget=empty, retain=indices)
    return dataclasses.replace(
        task,
        splits=splits,
        forget_steps=[empty],
        seed=seed,
        key=content_key({"trained_on": task.key, "seed": seed, "indices": digest}),
        train_key=content_key({"trained_on": task.train_key, "seed": seed, "indices": digest}),
    )


class TrainedOn:
    """The host's ``inputs.trained_on(indices, label)`` for one cell (see
    :class:`unlearnbench.specs.EvaluationInputs`): the cell's method ``fit`` on
    :func:`task_trained_on` with its own :class:`TaskContext` (the method's
    artifacts cache the training; the work goes to :attr:`work`, never into the
    cell's costs), and its ``trained`` model; ``None`` for a method without one."""

    def __init__(self, task: Task, cache: ArtifactCache, method: tuple[MethodSpec, Component]):
        self.task = task
        self.cache = cache
        self.method = method
        self.work = 0.0
        self._models: dict[str, nn.Module] = {}

    def __call__(self, indices: torch.Tensor, label: object) -> nn.Module | None:
        spec, component = self.method
        method = spec.create(component.params)
        trained_of = getattr(method, "trained", None)
        if not callable(trained_of):
            return None
        task = task_trained_on(self.task, indices, label)
        if task.key not in self._models:
            ctx = TaskContext(task, self.cache)
            state = method.fit(task, ctx)
            self._models[task.key] = copy.deepcopy(trained_of(state, task, ctx)).eval()
            self.work += ctx.work
        return copy.deepcopy(self._models[task.key])


def evaluate_cell(
    registry: Registry,
    evaluators: Sequence[Component],
    task: Task,
    ctx: TaskContext,
    original: nn.Module,
    reference: Outcome,
    outcome: Outcome,
    replicates: ReplicateSource | None = None,
    trained_on: Callable[[torch.Tensor, object], nn.Module | None] | None = None,
) -> tuple[list[MetricValue], dict[str, list[float]]]:
    """Run every evaluator on one cell; each metric carries its declared direction,
    unit and role, and the method's own cost counters follow as ``cost`` metrics.
    An evaluator returning a metric its spec does not declare fails the cell.
    ``replicates`` becomes ``inputs.replicates`` (a :class:`Replicates`),
    ``trained_on`` ``inputs.trained_on`` (a :class:`TrainedOn`)."""
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
        trained=outcome.trained if outcome.trained is not None else original,
        trained_on=trained_on,
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
            about: dict[str, Any] = {"evaluator": component.name, **meta.meta()}
            if not math.isfinite(float(value)):  # stored as NULL: say which and what it was
                about["not_finite"] = str(float(value))
            metrics.append(MetricValue(name, float(value), meta.direction, meta.unit, about))
        series.update({f"{component.name}.{k}": list(v) for k, v in extra.items()})
    reported = {m.name for m in metrics}
    metrics += [
        MetricValue(name, float(value), "none", "", {"evaluator": "", "role": counter_role(name)})
        for name, value in outcome.costs.items()
        if name not in reported
    ]
    return metrics, series
