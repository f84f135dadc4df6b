"""One path from a suite to a results store, for the CLI, tests and benchmarks.

:func:`prepare_run` checks everything a run needs (the suite against the
registry and the real data, the device, the executor's options) and writes
nothing; :meth:`PreparedRun.run` then runs the plan's pending cells into a
results store. :func:`run_suite` does both and opens the store itself: what a
library user, a test or a benchmark calls. ``unlearnbench run`` calls the two
steps apart, because between them it checks the output folder and an existing
store, and after them writes the leaderboards (the reports sit above the
execution core, which never imports them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.devices import resolve_device
from unlearnbench.execution.executors import EXECUTORS, Executor, ExecutorOptions, run_plan
from unlearnbench.execution.plan import Component, Plan, build_plan, check_feasible
from unlearnbench.execution.task_runner import Runner, RunSummary
from unlearnbench.execution.store import STORE_FILE, ResultStore
from unlearnbench.execution.suite import Suite, SuiteError, load_suite
from unlearnbench.execution.tuning import add_tuned_cells, check_tuning
from unlearnbench.host.registry import Registry
from unlearnbench.specs import DatasetArrays


@dataclass
class PreparedRun:
    """A suite checked and planned, with its runner and executor; nothing written yet."""

    suite: Suite
    plan: Plan
    out: Path
    device: torch.device
    runner: Runner
    executor: Executor

    @property
    def store_path(self) -> Path:
        return self.out / STORE_FILE

    def run(self, store: ResultStore, *, progress: bool = False) -> RunSummary:
        """Run the plan's cells not yet ``ok`` in ``store`` (the only writer of it)."""
        return run_plan(self.executor, self.plan, store, progress=progress)


@dataclass
class RunResult:
    """What :func:`run_suite` did: the prepared run (suite, plan, ``out``, device),
    its summary, and the seconds the run took (checks and data loading excluded)."""

    prepared: PreparedRun
    summary: RunSummary
    seconds: float

    @property
    def plan(self) -> Plan:
        return self.prepared.plan

    @property
    def store_path(self) -> Path:
        return self.prepared.store_path


def prepare_run(
    suite: Suite | Path | str,
    out: Path | str,
    registry: Registry,
    *,
    registry_factory: Callable[[], Registry] | None = None,
    executor: str = "local",
    device: str = "auto",
    threads: int = 0,
    workers: int = 0,
    address: str | None = None,
    gpus_per_task: float | None = None,
    cell_timeout: float | None = None,
) -> PreparedRun:
    """Check a suite (a file or a parsed :class:`Suite`) and build what runs it.

    ``registry_factory`` builds the registry in worker processes and Ray tasks
    (it must be picklable there: :class:`unlearnbench.host.manager.RegistryFactory`);
    the local executor needs none. A data set that cannot be loaded (files or an
    optional package missing) is a :class:`SuiteError` naming it. Nothing is
    written: the artifact cache under ``out`` is created when the first artifact is.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; choose from {sorted(EXECUTORS)}")
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    plan = build_plan(suite, registry)
    if suite.tuning is not None and suite.tuning.tuned:  # <label>[tuned] cells, from the studies
        add_tuned_cells(plan, registry, Path(out))
    resolved = resolve_device(device)
    cache = ArtifactCache(Path(out) / "cache")  # creates nothing until something is written
    runner = Runner(
        registry,
        cache,
        resolved,
        cell_timeout=cell_timeout,
        provenance_extra={"executor": executor},
    )

    options = ExecutorOptions(
        runner,
        registry_factory or (lambda: registry),
        str(cache.root),
        threads=threads,
        workers=workers,
        address=address,
        gpus_per_task=gpus_per_task,
    )
    # built before any data is loaded: the local executor sets this process's torch
    # threads, and a data set's normalisation (a torch mean) depends on them, as it
    # does in a worker, which loads its data at its own thread count
    built = EXECUTORS[executor](options)

    def load(component: Component) -> DatasetArrays:
        try:
            data = runner.load_dataset(component)
        except (OSError, ImportError) as exc:  # missing files, a missing optional package
            raise SuiteError(
                "", f"data set {component.label!r} could not be loaded: {exc}"
            ) from None
        check_dataset(component.label, data)
        return data

    check_feasible(plan, load, suite)
    return PreparedRun(suite, plan, Path(out), resolved, runner, built)


def check_dataset(label: str, data: DatasetArrays) -> None:
    """Refuse a data set whose values no cell could use, naming it and the first bad
    example: non-finite features (training would "diverge" on them), or labels
    outside ``[0, num_classes)`` (an ``IndexError`` in every cell). Raises
    :class:`SuiteError`."""
    import torch

    x, y = data.x, data.y
    if x.shape[0] != y.shape[0]:
        raise SuiteError(
            "", f"data set {label!r} has {x.shape[0]} examples but {y.shape[0]} labels"
        )
    if x.is_floating_point() or x.is_complex():
        bad = ~torch.isfinite(x.reshape(x.shape[0], -1)).all(dim=1)
        if bool(bad.any()):
            first = int(bad.nonzero()[0, 0])
            raise SuiteError(
                "",
                f"data set {label!r} has non-finite features (NaN or infinity) in "
                f"{int(bad.sum())} of its {x.shape[0]} examples (the first: example {first}); "
                "fix the data set's loader or its files",
            )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise SuiteError("", f"data set {label!r} has labels of type {y.dtype}; expected integers")
    outside = (y < 0) | (y >= data.num_classes)
    if bool(outside.any()):
        first = int(outside.nonzero()[0, 0])
        raise SuiteError(
            "",
            f"data set {label!r} has labels outside [0, num_classes={data.num_classes}) in "
            f"{int(outside.sum())} examples (the first: example {first}, label "
            f"{int(y[first])}); fix the data set's loader or its num_classes",
        )


def run_suite(
    suite: Suite | Path | str,
    out: Path | str,
    registry: Registry,
    *,
    progress: bool = False,
    **options: object,
) -> RunResult:
    """Check and run a suite into ``out`` (results store, artifact cache); resumes.

    ``options`` are :func:`prepare_run`'s (``executor``, ``device``,
    ``threads``, ``workers``, ``registry_factory``, ``cell_timeout``, ...).
    Leaderboards are not written here: see
    :func:`unlearnbench.reports.write.write_leaderboards`.
    """
    prepared = prepare_run(suite, out, registry, **options)  # type: ignore[arg-type]
    prepared.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ResultStore(prepared.store_path) as store:
        summary = prepared.run(store, progress=progress)
    return RunResult(prepared, summary, time.perf_counter() - start)


def tuning_suite(suite: Suite) -> Suite:
    """The suite whose default cells ``tune`` studies: its ``[tuning]`` table is
    required, and ``tuned = true`` (what the studies are for) is off."""
    if suite.tuning is None:
        raise SuiteError("tuning", "the suite has no [tuning] table (trials, max_sample_passes)")
    return replace(suite, tuning=replace(suite.tuning, tuned=False))


def prepare_tuning(
    suite: Suite | Path | str,
    out: Path | str,
    registry: Registry,
    *,
    device: str = "auto",
    **options: object,
) -> PreparedRun:
    """:func:`~unlearnbench.execution.run.prepare_run` for ``tune``: the suite's
    default cells (``tuned = true`` is what the studies are for, so it is
    ignored here), every tuning check done, nothing written. ``options`` are
    :func:`prepare_run`'s executor options (``executor``, ``threads``,
    ``workers``, ``address``, ``gpus_per_task``, ``registry_factory``): the
    trials run on that executor."""
    suite = tuning_suite(suite if isinstance(suite, Suite) else load_suite(suite))
    prepared = prepare_run(suite, out, registry, device=device, **options)  # type: ignore[arg-type]
    check_tuning(prepared, registry)
    return prepared
