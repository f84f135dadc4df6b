"""The studies of a suite and where they are kept: one Optuna study per task and
tuned method, named by a hash of everything that changes its trials, stored in
``<out>/tuning.sqlite``.

The name is the study's identity: a changed task, seed, cap or space starts a new
study, an unchanged one resumes. See docs/tuning.md ("Seeds, resuming").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unlearnbench.execution.cache import content_key
from unlearnbench.execution.plan import Component, Plan, TaskPlan
from unlearnbench.execution.suite import SuiteError, TuningOptions
from unlearnbench.execution.tuning.space import (
    Dimension,
    entry_label,
    given_params,
    search_space,
)
from unlearnbench.host.registry import Registry
from unlearnbench.specs import MethodSpec

if TYPE_CHECKING:
    import optuna

    from unlearnbench.execution.run import PreparedRun

STORAGE_FILE = "tuning.sqlite"
TUNABLE_REQUESTS = ("random", "class")


@dataclass
class Study:
    """One study's identity: the task, the method component, its search space."""

    task: TaskPlan
    method: Component
    space: list[Dimension]
    name: str


@dataclass
class StudyResult:
    name: str
    method: str
    task: str
    trials: int
    pruned: int
    best_value: float | None
    best_params: dict[str, Any]
    defaults: dict[str, Any]
    default_value: float | None = None  # the defaults' Avg. Gap (trial 0), when in range


def plan_studies(plan: Plan, registry: Registry) -> list[Study]:
    """One study per (task, method with something to tune), checked before training.

    The reference method is never tuned. Raises :class:`SuiteError` on a bad
    space or on a request kind tuning does not support.
    """
    suite = plan.suite
    tuning = suite.tuning
    if tuning is None:
        raise SuiteError("tuning", "the suite has no [tuning] table (trials, max_sample_passes)")
    labels = {entry_label(suite, c.method) for t in plan.tasks for c in t.cells}
    for label in tuning.space:
        if label not in labels:
            raise SuiteError(
                f"tuning.space.{label}", f"names no method of the suite (methods: {sorted(labels)})"
            )
    studies = []
    for task in plan.tasks:
        for cell in task.cells:
            if cell.method.ident() == task.reference.ident():
                continue
            spec: MethodSpec = registry.get("method", cell.method.name)  # type: ignore[assignment]
            space = search_space(spec, cell.method, suite, given_params(suite, cell.method))
            if not space:
                continue
            if task.request.kind not in TUNABLE_REQUESTS:
                index = suite.requests.index(task.request)
                raise SuiteError(
                    f"requests[{index}]",
                    f"tuning supports {list(TUNABLE_REQUESTS)} requests, not "
                    f"{task.request.kind!r} (its forget set changes the training data)",
                )
            name = study_name(task, cell.method, space, tuning)
            studies.append(Study(task, cell.method, space, name))
    return studies


def study_name(
    task: TaskPlan, method: Component, space: Sequence[Dimension], tuning: TuningOptions
) -> str:
    ident = {
        "task": task.key,
        "method": method.ident(),
        "space": {d.param.name: d.describe() for d in space},
        "seed": tuning.seed,
        "cap": tuning.max_sample_passes,
    }
    repeat = f"/repeat {task.repeat}" if task.request.repeats > 1 else ""
    return (
        f"{method.label} | {task.dataset.label}/{task.architecture.label}/"
        f"{task.request.label_text}/seed {task.seed}{repeat} | {content_key(ident)[:16]}"
    )


def check_tuning(prepared: PreparedRun, registry: Registry) -> list[Study]:
    """Every tuning check that needs no training (space, request kinds)."""
    return plan_studies(prepared.plan, registry)


# --- the storage -------------------------------------------------------------------------


def storage_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / STORAGE_FILE}"


def open_storage(out: Path, *, create: bool) -> Any:
    """``<out>/tuning.sqlite`` as an Optuna storage; ``None`` when it does not exist
    and ``create`` is false (a read never creates it)."""
    import optuna

    path = Path(out) / STORAGE_FILE
    if not create and not path.exists():
        return None
    return optuna.storages.RDBStorage(storage_url(out))


def load_studies(out: Path, names: Sequence[str]) -> dict[str, optuna.Study]:
    """The named studies stored in ``out`` (reads only; a missing one is left out)."""
    import optuna

    storage = open_storage(out, create=False)
    if storage is None:
        return {}
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    return {
        name: optuna.load_study(study_name=name, storage=storage)
        for name in names
        if name in existing
    }


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that count: complete, pruned or failed, and not interrupted."""
    import optuna

    states = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    trials = study.get_trials(deepcopy=False, states=states)
    return [t for t in trials if not t.user_attrs.get("interrupted")]


def best_trial(complete: Sequence[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The finished trial of lowest objective (the first of ties), or ``None``."""
    scored = [t for t in complete if t.value is not None]
    return min(scored, key=lambda t: float(t.value or 0.0)) if scored else None
