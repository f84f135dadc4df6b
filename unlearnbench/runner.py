"""Executes a plan: builds each task once, runs its cells, writes each result.

The runner knows no plugin and no pluggy: it receives a registry of specs and
calls their factories. Per task it trains the shared artifacts once (the
original model, the reference run) through the artifact cache, then runs every
pending cell: ``fit``, the timed ``unlearn`` steps, the evaluators. A cell that
raises is recorded as failed with its traceback and the others go on. Cells
already recorded as ``ok`` are skipped, so re-running a suite resumes.

Executing a task is separate from storing its results: :meth:`Runner.run_task`
hands each finished cell's :class:`CellRecord` to an ``emit`` callback, so the
same code runs in this process (``emit`` writes to the store at once) and in
worker processes or Ray tasks (``emit`` sends the record to the parent, which
is the only writer; see :mod:`unlearnbench.executors`).

A per-cell time limit (``cell_timeout``) is enforced in-process with
``SIGALRM``: the cell is interrupted between Python bytecodes (after the
current torch operation) and recorded with status ``timeout``. That needs the
main thread of a POSIX process; elsewhere the limit is not enforced here (the
processes executor also kills a worker that does not come back).

The task's shared set-up (loading the data set, training the original and the
reference) is limited too, to ``SETUP_LIMIT_FACTOR`` times the per-cell limit
(it trains two models where a cell trains at most about one), but never to
less than ``SETUP_LIMIT_MIN_S`` (it also pays one-off costs a cell does not: a
fresh worker's first training, loading the data). If it runs past that, every
pending cell of the task is recorded as ``timeout`` with a message saying the
shared set-up ran past its limit. (Shadow models and other artifacts built
lazily inside a cell count against that cell's limit.)
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.cache import ArtifactCache, StaleArtifactError, content_key
from unlearnbench.plan import CellPlan, Component, Plan, TaskPlan
from unlearnbench.provenance import provenance
from unlearnbench.registry import Registry
from unlearnbench.specs import (
    ArchitectureSpec,
    DatasetArrays,
    DatasetSpec,
    Evaluation,
    EvaluationInputs,
    EvaluatorSpec,
    MethodSpec,
    combine_stream_costs,
)
from unlearnbench.store import CellRecord, MetricValue
from unlearnbench.task import Task, build_task
from unlearnbench.training import TrainStats, check_learned, train_model

log = logging.getLogger(__name__)
WORK_KEY = "_unlearnbench_sample_passes"  # the work an artifact's build counted, kept with it


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


class TaskContext:
    """The :class:`unlearnbench.task.MethodContext` the runner gives plugins."""

    def __init__(self, task: Task, cache: ArtifactCache) -> None:
        self.task = task
        self.cache = cache
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


class CellTimeout(BaseException):
    """Raised inside a cell that ran past its time limit.

    A ``BaseException``, so a plugin's ``except Exception`` cannot swallow it.
    """


SETUP_LIMIT_FACTOR = 2.0  # a task's shared set-up may take this many times --cell-timeout
SETUP_LIMIT_MIN_S = 60.0  # ... and at least this long
CELL_LIMIT = "the per-cell time limit"
SETUP_LIMIT = "its time limit"


def setup_limit(cell_timeout: float | None) -> float | None:
    """The time limit of a task's shared set-up for a per-cell limit (``None``: none)."""
    if cell_timeout is None:
        return None
    return max(SETUP_LIMIT_FACTOR * cell_timeout, SETUP_LIMIT_MIN_S)


def setup_timeout_message(seconds: float, how: str = "") -> str:
    """Why a task's cells were recorded ``timeout`` when its shared set-up ran too long."""
    return (
        f"the task's shared set-up (data set, original and reference models) ran past its "
        f"time limit of {seconds:g} s ({SETUP_LIMIT_FACTOR:g} x --cell-timeout, at least "
        f"{SETUP_LIMIT_MIN_S:g} s){how}; this cell never ran"
    )


@contextlib.contextmanager
def time_limit(seconds: float | None, what: str = CELL_LIMIT) -> Iterator[None]:
    """Raise :class:`CellTimeout` in this thread after ``seconds`` (main thread, POSIX).

    Where ``SIGALRM`` cannot be used (not the main thread, Windows) the body runs
    without a limit; a caller that needs a hard limit runs it in a killable process.
    ``what`` names the limit in the exception's message.
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        if seconds:
            log.warning(
                "the per-cell time limit needs SIGALRM in the main thread; not enforced here "
                "(use the processes executor for a hard limit)"
            )
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CellTimeout(f"ran past {what} of {seconds:g} s (--cell-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    timeout: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, record: CellRecord) -> None:
        """Count one written cell; failures and timeouts keep a one-line reason."""
        if record.status == "ok":
            self.ok += 1
            return
        if record.status == "timeout":
            self.timeout += 1
        else:
            self.failed += 1
        last = (record.error or "").strip().splitlines()
        self.failures.append(
            f"{record.dataset}/{record.architecture}/{record.method}/{record.request}/"
            f"seed {record.seed}: {record.status}: {last[-1] if last else ''}"
        )


Work = list[tuple[TaskPlan, list[CellPlan]]]


def pending_work(plan: Plan, done: set[str]) -> tuple[Work, int]:
    """The plan's tasks with their cells not yet ``ok``, and how many cells are skipped."""
    work: Work = []
    for task_plan in plan.tasks:
        cells = [c for c in task_plan.cells if c.cell_id not in done]
        if cells:
            work.append((task_plan, cells))
    pending = sum(len(cells) for _, cells in work)
    return work, plan.size - pending


Emit = Callable[[CellRecord], None]


class Runner:
    """Runs plans against one results store and one artifact cache.

    ``store`` may be ``None`` in a worker that only computes: it calls
    :meth:`run_task` and sends the records elsewhere. ``cell_timeout`` (seconds)
    limits each cell (method + evaluators); ``setup_timeout`` the task's shared
    set-up (default: :func:`setup_limit` of ``cell_timeout``). ``provenance_extra``
    is merged into every cell's provenance (the executor, the worker).
    """

    def __init__(
        self,
        registry: Registry,
        cache: ArtifactCache,
        device: torch.device,
        *,
        cell_timeout: float | None = None,
        setup_timeout: float | None = None,
        provenance_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.registry = registry
        self.cache = cache
        self.device = device
        self.cell_timeout = cell_timeout
        self.setup_timeout = setup_timeout if setup_timeout else setup_limit(cell_timeout)
        self._datasets: dict[str, DatasetArrays] = {}
        self._provenance = {
            **provenance(device),
            "executor": "local",
            "pid": os.getpid(),
            **(provenance_extra or {}),
        }

    def load_dataset(self, component: Component) -> DatasetArrays:
        """Load (once per process) the data set a component names."""
        key = content_key(component.ident())
        if key not in self._datasets:
            spec: DatasetSpec = self.registry.get("dataset", component.name)  # type: ignore[assignment]
            self._datasets[key] = spec.load(component.params)
        return self._datasets[key]

    def build_task(self, plan: TaskPlan) -> Task:
        data = self.load_dataset(plan.dataset)
        arch: ArchitectureSpec = self.registry.get("architecture", plan.architecture.name)  # type: ignore[assignment]
        params = plan.architecture.params
        return build_task(
            dataset=plan.dataset.label,
            architecture=plan.architecture.label,
            x=data.x,
            y=data.y,
            num_classes=data.num_classes,
            input_shape=data.input_shape,
            build_model=lambda: arch.build(data.input_shape, data.num_classes, params),
            sizes=plan.splits,
            request=plan.request,
            recipe=plan.recipe,
            seed=plan.seed,
            device=self.device,
            key=plan.key,
            train_key=plan.train_key,
            config=plan.config(),
        )

    def run_task(
        self,
        plan: TaskPlan,
        cells: list[CellPlan],
        emit: Emit,
        on_start: Callable[[CellPlan], None] | None = None,
    ) -> None:
        """Build the task's shared artifacts once, then run ``cells``; emit each record.

        ``on_start`` is called before each cell (a worker tells its parent which
        cell it is on, so a hard time limit can name it).
        """
        for record in self.iter_task(plan, cells, on_start):
            emit(record)

    def iter_task(
        self,
        plan: TaskPlan,
        cells: list[CellPlan],
        on_start: Callable[[CellPlan], None] | None = None,
    ) -> Iterator[CellRecord]:
        """:meth:`run_task` as a generator: yields each cell's record when it is done."""
        for event in self.iter_events(plan, cells):
            if isinstance(event, CellRecord):
                yield event
            elif on_start is not None:
                on_start(event)

    def iter_events(self, plan: TaskPlan, cells: list[CellPlan]) -> Iterator[CellPlan | CellRecord]:
        """Yields each cell's plan as it starts, then its record when it is done.

        (A cell whose task's set-up failed is only recorded, never started.)
        """
        limit = self.setup_timeout
        try:
            with time_limit(limit, SETUP_LIMIT):
                task, ctx, original, reference = self._set_up(plan)
        except CellTimeout:
            assert limit is not None
            for cell in cells:
                yield self._failure(plan, cell, setup_timeout_message(limit), status="timeout")
            return
        except Exception:
            error = "the task's shared set-up failed:\n" + traceback.format_exc()
            for cell in cells:
                yield self._failure(plan, cell, error)
            return
        for cell in cells:
            yield cell
            try:
                with time_limit(self.cell_timeout):
                    if cell.method.ident() == plan.reference.ident():
                        outcome = reference
                    else:
                        outcome = run_method(self._method_spec(cell.method), cell.method, task, ctx)
                    metrics, series = self._evaluate(plan, task, ctx, original, reference, outcome)
            except CellTimeout as exc:
                record = self._failure(plan, cell, f"the cell {exc}", status="timeout")
            except Exception:
                record = self._failure(plan, cell, traceback.format_exc())
            else:
                record = self._record(plan, cell, "ok", metrics=metrics, series=series)
            yield record

    def _set_up(self, plan: TaskPlan) -> tuple[Task, TaskContext, nn.Module, Outcome]:
        """The task, its context, its original model and its reference outcome.

        A cached artifact found stale on reading (:class:`StaleArtifactError`) has
        been discarded by then, so the set-up is tried once more and rebuilds it.
        """
        task = self.build_task(plan)
        ctx = TaskContext(task, self.cache)
        try:
            return task, ctx, ctx.original(), self._reference(task, ctx, plan.reference)
        except StaleArtifactError as exc:
            log.warning("%s; building it again", exc)
            return task, ctx, ctx.original(), self._reference(task, ctx, plan.reference)

    def _method_spec(self, component: Component) -> MethodSpec:
        return self.registry.get("method", component.name)  # type: ignore[return-value]

    def _reference(self, task: Task, ctx: TaskContext, ref: Component) -> Outcome:
        """The reference method's outcome for this task, run (and timed) in this run.

        The reference is not taken from the artifact cache: a speed-up divides
        the method's time by the reference's, and both must be measured at the
        same moment on the same machine (a cached retrain measured 13.5 s in
        one run and 3.6 s in another). Its shared inputs (the original model)
        still come from the cache.
        """
        outcome = run_method(self._method_spec(ref), ref, task, ctx)
        try:
            ctx.load_model(outcome.model.state_dict())
        except RuntimeError as exc:
            raise RuntimeError(
                f"the reference method {ref.name!r} must return a model of the task's "
                f"architecture: {exc}"
            ) from exc
        return outcome

    def _evaluate(
        self,
        plan: TaskPlan,
        task: Task,
        ctx: TaskContext,
        original: nn.Module,
        reference: Outcome,
        outcome: Outcome,
    ) -> tuple[list[MetricValue], dict[str, list[float]]]:
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
        )
        metrics: list[MetricValue] = []
        series = dict(outcome.series)
        for component in plan.evaluators:
            spec: EvaluatorSpec = self.registry.get("evaluator", component.name)  # type: ignore[assignment]
            declared = {m.name: m for m in spec.metrics}
            result = spec.create(component.params).evaluate(inputs, ctx)
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
                metrics.append(MetricValue(name, float(value), meta.direction, meta.unit, about))
            series.update({f"{component.name}.{k}": list(v) for k, v in extra.items()})
        reported = {m.name for m in metrics}
        metrics += [
            MetricValue(name, float(value), "none", "", {"evaluator": "", "role": "cost"})
            for name, value in outcome.costs.items()
            if name not in reported
        ]
        return metrics, series

    def record(self, plan: TaskPlan, cell: CellPlan, status: str, **extra: Any) -> CellRecord:
        """A cell's record with its full configuration and provenance."""
        return self._record(plan, cell, status, **extra)

    def _record(self, plan: TaskPlan, cell: CellPlan, status: str, **extra: Any) -> CellRecord:
        config = {**plan.config(), "method": cell.method.ident(), "label": cell.method.label}
        return CellRecord(
            cell_id=cell.cell_id,
            task_key=plan.key,
            dataset=plan.dataset.label,
            architecture=plan.architecture.label,
            method=cell.method.label,
            request=plan.request.label_text,
            seed=plan.seed,
            status=status,
            config=config,
            provenance={
                **self._provenance,
                **self._plugin_provenance(cell.method),
                "plugins": self._plugins_used(plan, cell),
                "seed": plan.seed,
                "task_key": plan.key,
                "train_key": plan.train_key,
                "torch_threads": torch.get_num_threads(),
            },
            **extra,
        )

    def _plugin_provenance(self, method: Component) -> dict[str, Any]:
        origin = self.registry.entry("method", method.name).origin
        return {
            "method_plugin": origin.plugin,
            "method_distribution": origin.distribution,
            "method_version": origin.version,
        }

    def _plugins_used(self, plan: TaskPlan, cell: CellPlan) -> dict[str, dict[str, str]]:
        """``kind:name`` -> plugin, distribution and version, for every component of the cell."""
        used: list[tuple[Any, Component]] = [
            ("dataset", plan.dataset),
            ("architecture", plan.architecture),
            ("method", cell.method),
            ("method", plan.reference),
            *(("evaluator", e) for e in plan.evaluators),
        ]
        out = {}
        for kind, component in used:
            try:
                origin = self.registry.entry(kind, component.name).origin
            except Exception:  # a plugin missing from this registry: say so, don't fail
                out[f"{kind}:{component.name}"] = {
                    "plugin": "?",
                    "distribution": "?",
                    "version": "",
                }
                continue
            out[f"{kind}:{component.name}"] = {
                "plugin": origin.plugin,
                "distribution": origin.distribution,
                "version": origin.version,
            }
        return out

    def _failure(
        self, plan: TaskPlan, cell: CellPlan, error: str, status: str = "failed"
    ) -> CellRecord:
        log.error("cell %s (%s) %s:\n%s", cell.method.label, plan.dataset.label, status, error)
        return self._record(plan, cell, status, error=error)


def run_method(spec: MethodSpec, component: Component, task: Task, ctx: TaskContext) -> Outcome:
    """``fit`` then the timed ``unlearn`` over the request's stream of deletions.

    Costs of a stream are combined by :func:`unlearnbench.specs.combine_stream_costs`
    (summed, or by name suffix: max, mean or last). Series of later steps get
    a ``@step<i>`` suffix.
    """
    method = spec.create(component.params)
    work_start = ctx.work
    start = time.perf_counter()
    state = method.fit(task, ctx)
    if task.device.type == "cuda":  # fit's queued GPU work belongs to fit, not unlearn
        torch.cuda.synchronize(task.device)
    fit_seconds = time.perf_counter() - start
    fit_work = ctx.work - work_start
    naive, naive_work = None, 0.0
    naive_of = getattr(method, "naive", None)
    if callable(naive_of):  # before unlearn, which may update the stored state
        before = ctx.work
        naive = naive_of(state, task.splits.forget, task, ctx).model
        naive.eval()
        naive_work = ctx.work - before
    step_costs: list[dict[str, float]] = []
    series: dict[str, list[float]] = {}
    seconds = 0.0
    result = None
    work_start = ctx.work
    for step, forget in enumerate(task.forget_steps):
        start = time.perf_counter()
        result = method.unlearn(state, forget, task, ctx)
        if task.device.type == "cuda":
            torch.cuda.synchronize(task.device)
        seconds += time.perf_counter() - start
        state = result.state
        step_costs.append(result.costs)
        suffix = f"@step{step}" if step else ""
        series.update({f"{name}{suffix}": list(map(float, v)) for name, v in result.series.items()})
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
