"""What every executor shares: the work units, the claims, the one writer.

Executors are where a plan's cells run (here, in worker processes, on Ray).

All three run the same :meth:`Runner.run_task` on the same work unit, a task
with its pending cells, so a task's shared artifacts (the original model, the
reference run, shadow models) are built once per unit and the metrics do not
depend on the executor (only the timings do).

The parent process is the **only writer** of the results store: workers send
each cell's :class:`CellRecord` back as soon as the cell is done, and the
parent commits it in one SQLite transaction right away. One writer means no
lock contention between workers, no SQLite file on a cluster's network file
system, and a kill at any moment loses at most the cells still running.

- ``local``: this process (:mod:`.local`).
- ``processes``: long-lived spawned workers (:mod:`.processes`).
- ``ray``: one Ray task per work unit (:mod:`.ray`).

``tune`` needs smaller units whose order it decides (one trial per study at a
time, asked from Optuna by the parent once the study's previous trial is
told), so each executor also gives a :class:`JobPool` (:meth:`Executor.jobs`):
it runs single ``fn(runner, payload)`` jobs on the same workers and hands each
:class:`JobOutcome` back to the parent, which again is the only writer.

Workers build their own registry with a picklable ``registry_factory`` (the
execution core imports no plugin machinery; the CLI passes
:class:`unlearnbench.host.RegistryFactory`).

Two runs pointed at one results folder share the work instead of both doing
it: :func:`run_plan` claims each task with a lock file in ``<out>/.locks``
(held by the parent, the writer, until the task's records are committed), so
the other run waits for that task, re-reads the store and skips its finished
cells. A run that dies drops its claims with its process.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Generator, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from unlearnbench._files import remove_stale_temporaries
from unlearnbench.execution.cache import ArtifactCache, FileLock
from unlearnbench.execution.plan import CellPlan, Plan, TaskPlan
from unlearnbench.execution.store import CellRecord, ResultStore
from unlearnbench.execution.task_runner import Runner, RunSummary, Work, pending_work
from unlearnbench.host.registry import Registry
from unlearnbench.specs import UnlearnbenchError

log = logging.getLogger(__name__)

HARD_KILL_GRACE_S = 10.0  # after the in-worker limit, how long before the worker is killed
LOCKS_DIR = ".locks"  # in the results folder: which run is doing which task
CLAIM_BATCH = 256  # tasks claimed (lock files held open) at a time
CLAIM_POLL_S = 0.5  # how often to look for tasks another run has finished with


class ExecutorError(UnlearnbenchError, RuntimeError):
    """An executor could not start (no Ray, a worker that cannot build its registry)."""


@dataclass(frozen=True)
class ExecutorOptions:
    """What an executor is built from: the parent's runner, how workers build their
    registry, the artifact cache folder, and what the command line asked for.

    ``runner`` builds the records of cells whose worker was lost (its registry
    supplies their provenance). ``threads``: torch threads per worker, Ray task
    or (local) this process (0: automatic). ``workers``: the processes
    executor's worker count (0: one per GPU, else one per core). ``address``
    and ``gpus_per_task``: the Ray cluster and the GPUs each Ray task asks for.
    """

    runner: Runner
    registry_factory: Callable[[], Registry]
    cache_root: str
    threads: int = 0
    workers: int = 0
    address: str | None = None
    gpus_per_task: float | None = None


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs to build its own runner."""

    registry_factory: Callable[[], Registry]
    cache_root: str
    device: str
    threads: int
    cell_timeout: float | None
    executor: str
    worker: int = 0
    setup_timeout: float | None = None


def make_worker_runner(config: WorkerSetup) -> Runner:
    """A store-less runner with its own registry and torch thread count."""
    torch.set_num_threads(config.threads)
    registry = config.registry_factory()
    return Runner(
        registry,
        ArtifactCache(config.cache_root),
        torch.device(config.device),
        cell_timeout=config.cell_timeout,
        setup_timeout=config.setup_timeout,
        provenance_extra={"executor": config.executor, "worker": config.worker},
    )


Job = Callable[[Runner, Any], Any]
"""A job: a module-level function (pickled by name) of a worker's runner and a payload."""


@dataclass(frozen=True)
class JobOutcome:
    """What a job returned (``value``), or why it has no value (``error``: it raised,
    or its worker died)."""

    key: Hashable
    value: Any = None
    error: str | None = None


def call_job(key: Hashable, fn: Job, runner: Runner, payload: Any) -> JobOutcome:
    """Run one job; an exception becomes the outcome's ``error`` (its traceback)."""
    try:
        return JobOutcome(key, fn(runner, payload))
    except Exception:
        return JobOutcome(key, error=traceback.format_exc())


class JobPool(ABC):
    """Runs single jobs on an executor's workers, at most :attr:`free` more at a time.

    Use it as a context manager (workers start on entry, stop on exit).
    ``threads``: the torch threads each job runs with.
    """

    name: str = ""
    threads: int = 1

    def __enter__(self) -> JobPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def start(self) -> None:
        """Start the workers."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers; jobs still running are abandoned."""

    @property
    @abstractmethod
    def free(self) -> int:
        """How many more jobs may be submitted now."""

    @abstractmethod
    def submit(self, key: Hashable, fn: Job, payload: Any) -> None:
        """Start ``fn(runner, payload)``; its outcome comes back with ``key``."""

    @abstractmethod
    def wait(self, timeout: float) -> list[JobOutcome]:
        """The outcomes of jobs finished since the last call (waits up to ``timeout``
        seconds for one)."""


class Executor(Protocol):
    """Runs work units; ``threads`` is the torch thread count each of its cells uses."""

    name: str

    @property
    def threads(self) -> int:
        """The torch threads each cell runs with (CPU results depend on it)."""

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        """Run every (task, cells) unit and pass each finished record to ``sink``."""

    def jobs(self, parallel: int) -> JobPool:
        """A pool for single jobs (tune's trials), with at most ``parallel`` running."""


def run_plan(
    executor: Executor, plan: Plan, store: ResultStore, *, progress: bool = True
) -> RunSummary:
    """Run a plan's pending cells with ``executor``; the store is written here only.

    Tasks are claimed before they run (see :func:`claimed_work`), so another
    run on the same folder never computes a cell this one is computing.
    """
    summary = RunSummary()
    work, summary.skipped = pending_work(plan, store.finished())
    total = sum(len(cells) for _, cells in work)
    bar = tqdm(total=total, disable=not progress, unit="cell", dynamic_ncols=True)
    folder = store.path.parent
    remove_stale_temporaries(folder)

    def sink(record: CellRecord) -> None:
        if store.write(record):
            summary.add(record)
        else:  # another run recorded this cell as done meanwhile
            summary.skipped += 1
        bar.update(1)
        bar.set_postfix_str(f"{record.method} ({record.status})")

    def skip(count: int) -> None:  # cells another run finished while we waited for them
        summary.skipped += count
        bar.update(count)

    batches = claimed_work(work, store.finished, folder / LOCKS_DIR, skip)
    try:
        for units in batches:
            executor.execute(units, sink)
    finally:
        batches.close()  # releases the last batch's claims now, not at garbage collection
        bar.close()
        with contextlib.suppress(OSError):  # only when empty: another run may be using it
            (folder / LOCKS_DIR).rmdir()
    return summary


def claimed_work(
    work: Work,
    finished: Callable[[], set[str]],
    locks: Path,
    skip: Callable[[int], None],
) -> Generator[Work, None, None]:
    """Yield batches of ``work`` whose tasks this run holds the lock of, until none is left.

    A task whose lock another run holds is put aside and tried again later;
    once its lock is ours, its cells that are now ``ok`` in the store are
    dropped (``skip`` counts them). A batch's locks are held until the caller
    asks for the next batch, that is until its records are written, and their
    files are removed then. At most ``CLAIM_BATCH`` locks are held at a time.
    """
    waiting: deque[tuple[TaskPlan, list[CellPlan]]] = deque(work)
    told = False
    while waiting:
        held: list[tuple[TaskPlan, list[CellPlan], FileLock]] = []
        for _ in range(len(waiting)):
            if len(held) >= CLAIM_BATCH:
                break
            task, cells = waiting.popleft()
            lock = FileLock(locks / f"{task.key}.lock")
            if lock.acquire(blocking=False):
                held.append((task, cells, lock))
            else:
                waiting.append((task, cells))
        if not held:
            if not told:
                log.warning(
                    "another run is computing %d task(s) of this suite in this folder; "
                    "waiting for it to finish them",
                    len(waiting),
                )
                told = True
            time.sleep(CLAIM_POLL_S)
            continue
        try:
            done = finished()
            units: Work = []
            for task, cells, _ in held:
                pending = [c for c in cells if c.cell_id not in done]
                if len(pending) < len(cells):
                    skip(len(cells) - len(pending))
                if pending:
                    units.append((task, pending))
            if units:
                yield units
        finally:
            for _, _, lock in held:
                lock.release()
