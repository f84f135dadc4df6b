"""Trials and references as jobs: what a worker of any executor (or this process)
runs, given only picklable job records, so a study's trials give the same
outcome on every executor. The parent asks and tells (:mod:`.loop`).
See docs/tuning.md ("Running, on any executor").
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.cell import run_method
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.isolation import TaskDataChanged
from unlearnbench.execution.limits import CellTimeout, time_limit
from unlearnbench.execution.plan import Component, TaskPlan
from unlearnbench.execution.suite import TuningOptions
from unlearnbench.execution.task_runner import Runner
from unlearnbench.execution.tuning.validation import (
    ValidationData,
    avg_gap,
    measure,
    validation_data,
)
from unlearnbench.execution.tuning.workcap import CappedContext, WorkCapExceeded
from unlearnbench.seeding import derive_seed, seed_torch
from unlearnbench.specs import MethodSpec


@dataclass(frozen=True)
class ReferenceJob:
    """Measure a task's reference on its validation data (once per task)."""

    task: TaskPlan
    tuning: TuningOptions


@dataclass(frozen=True)
class Reference:
    """The reference's measurements, and the validation task's split sizes (for the
    method's own parameter check, made in the parent before a trial is handed out)."""

    measurement: dict[str, float]
    sizes: dict[str, int]


@dataclass(frozen=True)
class TrialJob:
    """One trial as a worker runs it: the study's method with resolved parameters.

    ``seed`` seeds torch's global RNG before the trial, so a method drawing from
    it gets the same numbers in any process, after any other trial.
    """

    task: TaskPlan
    method: Component
    params: dict[str, Any]
    reference: dict[str, float]
    tuning: TuningOptions
    seed: int


@dataclass(frozen=True)
class TrialOutcome:
    """A trial's result: ``state`` is ``complete``, ``pruned`` or ``failed``."""

    state: str
    value: float | None = None
    gaps: dict[str, float] = field(default_factory=dict)
    work: float = 0.0
    reason: str = ""


VALIDATION_KEPT = 4  # tasks' validation data a worker keeps built
_VALIDATION: weakref.WeakKeyDictionary[Runner, dict[tuple[str, int], ValidationData]] = (
    weakref.WeakKeyDictionary()
)


def _validation(runner: Runner, plan: TaskPlan, seed: int) -> ValidationData:
    """A task's validation data, built once per runner (the last few tasks are kept)."""
    kept = _VALIDATION.setdefault(runner, {})
    key = (plan.key, seed)
    if key not in kept:
        if len(kept) >= VALIDATION_KEPT:
            kept.pop(next(iter(kept)))
        kept[key] = validation_data(runner.build_task(plan), seed)
    return kept[key]


def run_reference(runner: Runner, job: ReferenceJob) -> Reference:
    """The reference method run on the validation task (retrained without ``V``),
    measured; its models come from the artifact cache when another process built them."""
    data = _validation(runner, job.task, job.tuning.seed)
    seed_torch(derive_seed(job.tuning.seed, job.task.key, "tuning-reference"), runner.device)
    ctx = TaskContext(data.task, runner.cache)
    spec: MethodSpec = runner.registry.get("method", job.task.reference.name)  # type: ignore[assignment]
    outcome = run_method(spec, job.task.reference, data.task, ctx)
    return Reference(measure(outcome.model, data), data.task.splits.sizes())


TRIAL_LIMIT = "the per-trial time limit"


def run_trial(runner: Runner, job: TrialJob) -> TrialOutcome:
    """One trial in whichever process runs it: over the cap it is pruned, an
    exception (a diverged loss) or a non-finite objective fails it."""
    spec: MethodSpec = runner.registry.get("method", job.method.name)  # type: ignore[assignment]
    limit = runner.cell_timeout  # tune --trial-timeout
    try:
        data = _validation(runner, job.task, job.tuning.seed)
        seed_torch(job.seed, runner.device)
        started = time.monotonic()
        with time_limit(limit, TRIAL_LIMIT, "--trial-timeout"):
            value, gaps, work = evaluate_params(
                spec, job.method, job.params, data, job.reference, runner.cache, job.tuning
            )
    except CellTimeout as exc:  # too slow: the trial fails (and counts), the study goes on
        return TrialOutcome("failed", reason=f"the trial {exc}")
    except TaskDataChanged as exc:  # the trial fails; the next ones get fresh data
        runner.refresh_task_data(job.task.dataset)
        _VALIDATION.pop(runner, None)
        return TrialOutcome("failed", reason=str(exc))
    except WorkCapExceeded as exc:
        return TrialOutcome("pruned", reason=str(exc))
    except Exception as exc:  # a diverged trial fails (and counts), the study goes on
        return TrialOutcome("failed", reason=f"{type(exc).__name__}: {exc}")
    elapsed = time.monotonic() - started
    if limit and elapsed > limit:  # its plugin kept the alarm out
        return TrialOutcome(
            "failed", reason=f"the trial ran {elapsed:.1f} s, past {TRIAL_LIMIT} of {limit:g} s"
        )
    if not math.isfinite(value):
        return TrialOutcome("failed", reason=f"the objective is {value}")
    return TrialOutcome("complete", value, gaps, work)


def evaluate_params(
    spec: MethodSpec,
    component: Component,
    params: dict[str, Any],
    data: ValidationData,
    reference: dict[str, float],
    cache: ArtifactCache,
    tuning: TuningOptions,
) -> tuple[float, dict[str, float], float]:
    """One trial: fit, then the capped unlearning stream on ``V``; the Avg. Gap,
    the gaps, and the unlearning work. Raises :class:`WorkCapExceeded`."""
    task = data.task
    ctx = CappedContext(task, cache, tuning.max_sample_passes)
    method = spec.create(params)
    state = method.fit(task, ctx)
    ctx.start_cap()
    result = None
    for forget in task.forget_steps:
        result = method.unlearn(state, forget, task, ctx)
        state = result.state
    assert result is not None
    value, gaps = avg_gap(measure(result.model, data), reference)
    return value, gaps, ctx.capped_work
