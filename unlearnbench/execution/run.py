"""One path from a suite to a results store, for the CLI, tests and benchmarks.

:func:`prepare_run` checks everything a run needs (the suite against the
registry and the real data, the device, the executor's options, the output
folder) and writes nothing; ``executor="auto"`` is resolved by
:mod:`unlearnbench.execution.executor_choice`. :meth:`PreparedRun.check_resume`
refuses an existing store whose finished cells this run would mix with (another
device type, or CPU cells at another torch thread count), and
:meth:`PreparedRun.run` runs the plan's pending cells into the store.
:func:`run_suite` does all three: what a library user, a test or a benchmark
calls. ``unlearnbench run`` calls the steps apart, to print between them and
write the leaderboards after (the reports sit above the execution core).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.devices import resolve_device
from unlearnbench.execution.executor_choice import (
    AUTO,
    ExecutorChoice,
    choose_run_executor,
    choose_tune_executor,
)
from unlearnbench.execution.executors import EXECUTORS, Executor, ExecutorOptions, run_plan
from unlearnbench.execution.plan import Component, Plan, build_plan, check_feasible
from unlearnbench.execution.provenance import cpu_capability
from unlearnbench.execution.store import STORE_FILE, ResultStore
from unlearnbench.execution.suite import Suite, SuiteError, load_suite
from unlearnbench.execution.task_runner import Runner, RunSummary
from unlearnbench.execution.tuning import add_tuned_cells, check_tuning
from unlearnbench.host.registry import Registry
from unlearnbench.specs import DatasetArrays, UnlearnbenchError


class RunRefused(UnlearnbenchError):
    """A run that must not start: an output folder that cannot be one, or a store
    whose finished cells it would mix with. The message says the way out."""


@dataclass
class PreparedRun:
    """A suite checked and planned, with its runner and executor; nothing written yet.

    ``choice`` is what ``executor="auto"`` chose, and why (``None``: named);
    ``allow_mixed_threads``, ``allow_mixed_devices`` and ``allow_mixed_cpus`` lift
    :meth:`check_resume`'s refusals."""

    suite: Suite
    plan: Plan
    out: Path
    device: torch.device
    runner: Runner
    executor: Executor
    choice: ExecutorChoice | None = None
    allow_mixed_threads: bool = False
    allow_mixed_devices: bool = False
    allow_mixed_cpus: bool = False

    @property
    def store_path(self) -> Path:
        return self.out / STORE_FILE

    def check_resume(self, store: ResultStore) -> None:
        """Refuse (:class:`RunRefused`) to add cells computed on another device type,
        or CPU cells computed with another torch thread count or CPU kernel set
        (``cpu_capability``), than the finished cells of this plan in ``store``:
        results depend on all three, and a leaderboard that mixes them would not be
        one computation. Nothing pending: nothing to mix."""
        cells = {cell.cell_id for _, cell in self.plan.cells()}
        if not cells - store.finished():
            return
        if not self.allow_mixed_devices:
            _check_device_types(store, cells, self.device)
        if not self.allow_mixed_threads and self.device.type == "cpu":
            _check_thread_counts(store, cells, self.executor)
        if not self.allow_mixed_cpus and self.device.type == "cpu":
            _check_cpu_capabilities(store, cells)

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
    allow_mixed_threads: bool = False,
    allow_mixed_devices: bool = False,
    allow_mixed_cpus: bool = False,
) -> PreparedRun:
    """Check a suite (a file or a parsed :class:`Suite`) and build what runs it.

    ``registry_factory`` builds the registry in worker processes and Ray tasks
    (it must be picklable there: :class:`unlearnbench.host.manager.RegistryFactory`);
    the local executor needs none. ``executor="auto"`` picks ``local`` or
    ``processes`` (:mod:`~unlearnbench.execution.executor_choice`). A data set that
    cannot be loaded (files or an optional package missing) is a :class:`SuiteError`
    naming it; an ``out`` that cannot be a folder is :class:`RunRefused`. Nothing is
    written: the artifact cache under ``out`` is created when the first artifact is.
    """
    if executor not in EXECUTORS and executor != AUTO:
        raise ValueError(f"unknown executor {executor!r}; choose from {sorted(EXECUTORS)}")
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    check_out_folder(Path(out))
    choice = None
    if executor == AUTO:
        choice = choose_run_executor(
            suite, registry, out, device=device, workers=workers, threads=threads
        )
        executor, threads = choice.executor, choice.threads
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
    allow = {
        "allow_mixed_threads": allow_mixed_threads,
        "allow_mixed_devices": allow_mixed_devices,
        "allow_mixed_cpus": allow_mixed_cpus,
    }
    return PreparedRun(suite, plan, Path(out), resolved, runner, built, choice, **allow)


def check_out_folder(out: Path, what: str = "the output folder") -> None:
    """``out`` must be a folder, or creatable as one (checked, not created);
    :class:`RunRefused` otherwise, naming it as ``what``."""
    if out.exists() and not out.is_dir():
        raise RunRefused(f"{what} {out} is a file, not a folder; give a folder for the results")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise RunRefused(f"{what} {out} cannot be created: {parent} is a file")
            break


def _check_device_types(store: ResultStore, cells: set[str], device: torch.device) -> None:
    """Cells recorded on another device type (``cuda`` vs ``cpu``): the cell id has
    no device, so they would mix silently on one board."""
    counts = store.device_types(cells)
    other = {d: n for d, n in counts.items() if d != device.type}
    if not other:
        return
    recorded = ", ".join(f"{n} on {d}" for d, n in sorted(other.items()))
    usual = max(other, key=lambda d: other[d])
    raise RunRefused(
        f"{store.path} holds finished cells of this suite computed on another device type "
        f"({recorded}); this run would use {device.type}. Results differ across device "
        f"types, so resuming would mix two computations in one leaderboard. Resume with "
        f"--device {usual}, run into another --out, or pass --allow-mixed-devices to mix "
        f"them (the board then shows each row's device)."
    )


def _check_thread_counts(store: ResultStore, cells: set[str], executor: Executor) -> None:
    """CPU cells recorded with another torch thread count than ``executor``'s."""
    threads = executor.threads
    counts = store.thread_counts(cells, "cpu")
    if not counts or set(counts) == {threads}:
        return
    recorded = ", ".join(f"{n} with {t}" for t, n in sorted(counts.items()))
    usual = max(counts, key=lambda t: counts[t])
    raise RunRefused(
        f"{store.path} holds finished cells of this suite computed on the CPU with another "
        f"torch thread count ({recorded} threads); this run would use {threads} "
        f"({executor.name} executor). CPU results depend on the thread count, so resuming "
        f"would mix two computations in one leaderboard. Resume with --threads-per-worker "
        f"{usual} (with --executor processes, also --workers so that workers x threads fit "
        f"the cores), run into another --out, or pass --allow-mixed-threads to mix them."
    )


def _check_cpu_capabilities(store: ResultStore, cells: set[str]) -> None:
    """CPU cells recorded with another CPU kernel set than this host's: the trained
    models (the original, the shadow and reference models every cell shares) differ
    across hosts, so new cells would be measured against other models than the old."""
    here = cpu_capability()
    counts = store.cpu_capabilities(cells)
    other = {c: n for c, n in counts.items() if c != here}
    if not other:
        return
    recorded = ", ".join(f"{n} with {c}" for c, n in sorted(other.items()))
    raise RunRefused(
        f"{store.path} holds finished cells of this suite computed on a CPU with other "
        f"kernels ({recorded}); this host uses {here}. CPU results depend on the kernels "
        f"(the shared original model itself differs), so resuming would measure new cells "
        f"against other models than the old ones in one leaderboard. Run into another "
        f"--out (a fresh run), or pass --allow-mixed-cpus to mix them."
    )


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
    ``threads``, ``workers``, ``registry_factory``, ``cell_timeout``,
    ``allow_mixed_threads``, ...). A store whose finished cells this run would
    mix with is refused before anything runs (:meth:`PreparedRun.check_resume`).
    Leaderboards are not written here: see
    :func:`unlearnbench.reports.write.write_leaderboards`.
    """
    prepared = prepare_run(suite, out, registry, **options)  # type: ignore[arg-type]
    prepared.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with ResultStore(prepared.store_path) as store:
        prepared.check_resume(store)
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
    executor: str = "local",
    threads: int = 0,
    workers: int = 0,
    **options: object,
) -> PreparedRun:
    """:func:`~unlearnbench.execution.run.prepare_run` for ``tune``: the suite's
    default cells (``tuned = true`` is what the studies are for, so it is
    ignored here), every tuning check done, nothing written. ``executor``,
    ``threads``, ``workers`` and ``options`` are :func:`prepare_run`'s executor
    options (``address``, ``gpus_per_task``, ``registry_factory``): the trials run
    on that executor; ``"auto"`` weighs studies and trials, not tasks."""
    suite = tuning_suite(suite if isinstance(suite, Suite) else load_suite(suite))
    choice = None
    if executor == AUTO:
        choice = choose_tune_executor(
            suite, registry, out, device=device, workers=workers, threads=threads
        )
        executor, threads = choice.executor, choice.threads
    prepared = prepare_run(
        suite,
        out,
        registry,
        device=device,
        executor=executor,
        threads=threads,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )
    prepared.choice = choice
    check_tuning(prepared, registry)
    return prepared
