"""Runs a plan's tasks: builds each task once, runs its cells, records each result.

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
is the only writer; see :mod:`unlearnbench.execution.executors`).

Time limits live in :mod:`unlearnbench.execution.limits` (a cell that ends past
its limit, because its plugin kept the alarm out, is recorded ``timeout``); one
cell's work (fit, unlearn, evaluate) in :mod:`unlearnbench.execution.cell`; the
context plugins receive in :mod:`unlearnbench.execution.context`. Tasks
get a copy of the loaded data; a plugin that writes into it fails its cell
(:mod:`unlearnbench.execution.isolation`) and the next cells get a fresh copy.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.execution.cache import ArtifactCache, StaleArtifactError, content_key
from unlearnbench.execution.cell import (
    Outcome,
    Replicates,
    TrainedOn,
    evaluate_cell,
    run_method,
)
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.isolation import TaskDataChanged
from unlearnbench.execution.limits import (
    SETUP_LIMIT,
    CellTimeout,
    overrun_message,
    setup_limit,
    setup_timeout_message,
    time_limit,
)
from unlearnbench.execution.plan import CellPlan, Component, Plan, TaskPlan
from unlearnbench.execution.provenance import provenance
from unlearnbench.execution.store import CellRecord
from unlearnbench.host.registry import Registry
from unlearnbench.specs import ArchitectureSpec, DatasetArrays, DatasetSpec, MethodSpec
from unlearnbench.task import Task, build_task

log = logging.getLogger(__name__)


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
    """The plan's tasks with their cells not yet ``ok``, and how many cells are skipped.

    Ordered by :func:`builders_first`, so workers start on the tasks that build
    shared artifacts and end on those that load them."""
    work: Work = []
    for task_plan in plan.tasks:
        cells = [c for c in task_plan.cells if c.cell_id not in done]
        if cells:
            work.append((task_plan, cells))
    pending = sum(len(cells) for _, cells in work)
    return builders_first(work), plan.size - pending


def builders_first(work: Work) -> Work:
    """``work`` with the first task of each ``train_key`` ahead of the others (each
    part in plan order).

    Tasks of one ``train_key`` share the original, the shadow models and every
    method's fitted state: the first to run builds them (about twice a later
    one's work on the default suite), a later one loads them. Builders first
    means workers running side by side build different artifacts instead of one
    waiting on the other's lock, and the run ends on short tasks, not on a
    builder alone on one core while the other cores idle (the default suite's
    backdoor tasks, one train_key each, came last in plan order). Results do not
    depend on the order; only which worker runs what.
    """
    seen: set[str] = set()
    builders: Work = []
    loaders: Work = []
    for unit in work:
        key = unit[0].train_key
        (loaders if key in seen else builders).append(unit)
        seen.add(key)
    return builders + loaders


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
        self._task_data: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
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

    def task_data(self, component: Component) -> tuple[torch.Tensor, torch.Tensor]:
        """The data set's features and labels on this runner's device, as the tasks
        get them: a copy, so the loaded data (and a loader's own cache) stays as it was
        loaded, and :meth:`refresh_task_data` can replace a copy a plugin wrote into."""
        key = content_key(component.ident())
        if key not in self._task_data:
            data = self.load_dataset(component)
            x, y = data.x.to(self.device, copy=True), data.y.to(self.device, copy=True)
            self._task_data[key] = (x, y)
        return self._task_data[key]

    def refresh_task_data(self, component: Component) -> None:
        """Drop the tasks' copy of a data set (a plugin changed it): the next task
        built on it gets a fresh copy of the loaded data."""
        self._task_data.pop(content_key(component.ident()), None)

    def build_task(self, plan: TaskPlan) -> Task:
        data = self.load_dataset(plan.dataset)
        x, y = self.task_data(plan.dataset)
        arch: ArchitectureSpec = self.registry.get("architecture", plan.architecture.name)  # type: ignore[assignment]
        params = plan.architecture.params
        return build_task(
            dataset=plan.dataset.label,
            architecture=plan.architecture.label,
            x=x,
            y=y,
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
            repeat=plan.repeat,
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
            started = time.monotonic()
            try:
                with time_limit(self.cell_timeout):
                    if cell.method.ident() == plan.reference.ident():
                        outcome = reference
                    else:
                        outcome = run_method(self._method_spec(cell.method), cell.method, task, ctx)
                    method = (self._method_spec(cell.method), cell.method)
                    replicates = Replicates(
                        task,
                        self.cache,
                        method,
                        (self._method_spec(plan.reference), plan.reference),
                        ctx.guard,
                    )
                    metrics, series = evaluate_cell(
                        self.registry,
                        plan.evaluators,
                        task,
                        ctx,
                        original,
                        reference,
                        outcome,
                        replicates,
                        TrainedOn(task, self.cache, method),
                    )
            except CellTimeout as exc:
                record = self._failure(plan, cell, f"the cell {exc}", status="timeout")
            except TaskDataChanged as exc:
                record = self._failure(plan, cell, self._changed_message(exc))
                self.refresh_task_data(plan.dataset)  # a fresh copy for the next cells
                task = self.build_task(plan)
                ctx = TaskContext(task, self.cache)
            except Exception:
                record = self._failure(plan, cell, traceback.format_exc())
            else:
                elapsed = time.monotonic() - started
                if self.cell_timeout and elapsed > self.cell_timeout:  # the alarm was kept out
                    message = overrun_message(elapsed, self.cell_timeout)
                    record = self._failure(plan, cell, message, status="timeout")
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

    def _changed_message(self, exc: TaskDataChanged) -> str:
        """The cell's error for a plugin that wrote into the task: the plugin named."""
        try:
            origin = str(self.registry.entry(exc.kind, exc.name).origin)  # type: ignore[arg-type]
        except Exception:  # not in this registry: the message names the component anyway
            origin = "an unknown plugin"
        return f"{traceback.format_exc()}{exc} [{exc.kind} {exc.name!r} is from {origin}]"

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
