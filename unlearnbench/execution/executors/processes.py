"""The ``processes`` executor: long-lived spawned worker processes.

Importing torch costs seconds and hundreds of MB, so there is never a process
per cell: ``workers x threads <= cores``, one worker per GPU on a multi-GPU
machine (:func:`unlearnbench.execution.devices.plan_workers`). A cell past its
limit is first interrupted in the worker (``SIGALRM``, the worker stays warm);
a worker that does not answer within a grace period is killed and replaced,
the cell is recorded as ``timeout`` and the rest of its task is re-queued. A
task's shared set-up past its own limit (``Runner.setup_timeout``) is handled
the same way, except that all the task's cells are recorded as ``timeout``
(the set-up would run as long again). A worker that dies (segfault, OOM kill)
fails its current cell the same way. Workers exit on their own when the parent
dies (a watchdog thread), so ``kill -9`` of a run leaves no orphans.

:class:`ProcessJobs` runs ``tune``'s trials on such workers, one job per
worker at a time; a worker that dies fails its job and is replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from typing import Any

from unlearnbench._exit import exit_without_teardown
from unlearnbench.execution.devices import plan_workers
from unlearnbench.execution.executors.base import (
    HARD_KILL_GRACE_S,
    ExecutorError,
    ExecutorOptions,
    Job,
    JobOutcome,
    JobPool,
    WorkerSetup,
    call_job,
    make_worker_runner,
)
from unlearnbench.execution.limits import setup_timeout_message
from unlearnbench.execution.plan import CellPlan, TaskPlan
from unlearnbench.execution.store import CellRecord
from unlearnbench.execution.task_runner import Runner, Work
from unlearnbench.host.registry import Registry

log = logging.getLogger(__name__)


def _exit_with_parent(parent_pid: int) -> None:
    """Exit this worker soon after its parent dies (even by ``kill -9``)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


PIPE_GONE = (BrokenPipeError, ConnectionResetError, EOFError)


def _run_then_exit(
    main: Callable[[Connection, WorkerSetup, int], None],
    conn: Connection,
    config: WorkerSetup,
    parent_pid: int,
) -> None:
    """A worker process's target: ``main`` (:func:`_worker_main` or
    :func:`_job_worker_main`, which tests also run in a thread of their own process),
    then exit without the interpreter's teardown: the worker holds nothing left to
    save (every artifact and record was written, atomically, before its last
    message), and its normal exit unloaded torch for about 1.2 s, which the parent
    waited out once per worker before writing the leaderboard. An exception still
    exits as usual, with its traceback and non-zero status."""
    main(conn, config, parent_pid)
    exit_without_teardown(0)


def _tell_to_stop(conns: list[Connection]) -> None:
    """Ask every worker to stop before waiting for any, so they exit side by side."""
    for conn in conns:
        with contextlib.suppress(OSError, ValueError):
            conn.send(None)


def _worker_main(conn: Connection, config: WorkerSetup, parent_pid: int) -> None:
    """A long-lived worker: receive (task, cells) units, send records back.

    When the pipe to the parent is gone (the parent was killed, or stopped
    listening) there is nobody left to send results to: the worker exits
    quietly instead of printing a ``BrokenPipeError`` traceback.
    """
    _exit_with_parent(parent_pid)
    _log_like_the_cli()
    with contextlib.suppress(*PIPE_GONE):
        _serve(conn, config)


def _spawn(
    ctx: Any, target: Callable[..., None], child: Connection, config: WorkerSetup, name: str
) -> Any:
    """Start a daemon worker on ``target`` with its end of the pipe; the parent keeps
    only its own end (closing the child's, so a dead worker reads as EOF)."""
    process = ctx.Process(target=target, args=(child, config, os.getpid()), name=name, daemon=True)
    process.start()
    child.close()
    return process


def _log_like_the_cli() -> None:
    """Log warnings in the CLI's format (a spawned worker starts with no logging set up)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _serve(conn: Connection, config: WorkerSetup) -> None:
    def run_unit(runner: Runner, unit: Any) -> None:
        task_plan, cells = unit
        runner.run_task(
            task_plan,
            cells,
            lambda record: conn.send(("record", record)),
            on_start=lambda cell: conn.send(("start", cell.cell_id)),
        )
        conn.send(("idle", None))

    _serve_messages(conn, config, run_unit)


def _serve_messages(
    conn: Connection, config: WorkerSetup, handle: Callable[[Runner, Any], None]
) -> None:
    """Build the worker's runner (or report why not), then ``handle`` every message
    until the parent sends ``None`` or the pipe closes."""
    try:
        runner = make_worker_runner(config)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        handle(runner, message)


SPLIT_MIN_CELLS = 4
""":func:`take_unit` splits the last unit in two when it has at least this many cells."""


def take_unit(
    queue: deque[tuple[TaskPlan, list[CellPlan]]], workers: int, split: set[str]
) -> tuple[TaskPlan, list[CellPlan]]:
    """The next unit for a free worker; the last one is split in two halves of its
    cells (once per task, at least :data:`SPLIT_MIN_CELLS` cells, two workers or more).

    Without it a run ends on one task alone on one core while the others idle: on
    the default suite (9 tasks, 2 workers) the last task kept one worker busy 3.8 s
    after the other had finished. Each half runs the task's set-up (the original
    and the shared artifacts load from the cache; the reference is retrained,
    about 0.6 s there); the second half goes to the first worker free, the other
    one if it finishes in time. Metrics do not depend on the split (timings aside;
    a sample-pass count summed from another start can differ in its 13th digit).
    """
    task, cells = queue.popleft()
    if not queue and workers > 1 and len(cells) >= SPLIT_MIN_CELLS and task.key not in split:
        split.add(task.key)
        half = (len(cells) + 1) // 2
        queue.append((task, cells[half:]))
        cells = cells[:half]
    return task, cells


@dataclass
class _Worker:
    index: int
    process: Any
    conn: Connection
    ready: bool = False
    task: TaskPlan | None = None
    remaining: list[CellPlan] = field(default_factory=list)
    current: str | None = None
    started: float = 0.0
    setup_started: float | None = None  # while the task's shared set-up runs


@dataclass
class ProcessExecutor:
    """Long-lived worker processes fed one (task, pending cells) unit at a time.

    ``runner`` is the parent's runner, used only to build the records of cells
    whose worker was killed or died (its registry supplies their provenance).
    """

    runner: Runner
    registry_factory: Callable[[], Registry]
    cache_root: str
    workers: int = 0
    threads: int = 0
    name: str = "processes"
    devices: list[str] = field(default_factory=list)
    kill_grace: float = HARD_KILL_GRACE_S

    def __post_init__(self) -> None:
        self.workers, self.threads, self.devices = plan_workers(
            self.runner.device, self.workers, self.threads
        )

    @classmethod
    def create(cls, options: ExecutorOptions) -> ProcessExecutor:
        """Workers and threads as the options ask, fitted to the cores (starts nothing)."""
        o = options
        return cls(o.runner, o.registry_factory, o.cache_root, o.workers, o.threads)

    def jobs(self, parallel: int) -> ProcessJobs:
        """Single jobs on ``min(workers, parallel)`` workers (each with its device)."""
        count = max(1, min(self.workers, parallel))
        config = WorkerSetup(
            registry_factory=self.registry_factory,
            cache_root=self.cache_root,
            device=self.devices[0],
            threads=self.threads,
            cell_timeout=None,
            executor=self.name,
        )
        return ProcessJobs(config, self.devices[:count])

    def _start(self, index: int) -> _Worker:
        ctx = get_context("spawn")  # fork after torch started its thread pools can hang
        parent, child = ctx.Pipe()
        config = WorkerSetup(
            registry_factory=self.registry_factory,
            cache_root=self.cache_root,
            device=self.devices[index],
            threads=self.threads,
            cell_timeout=self.runner.cell_timeout,
            setup_timeout=self.runner.setup_timeout,
            executor=self.name,
            worker=index,
        )
        process = _spawn(
            ctx,
            partial(_run_then_exit, _worker_main),
            child,
            config,
            f"unlearnbench-worker-{index}",
        )
        return _Worker(index, process, parent)

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        queue: deque[tuple[TaskPlan, list[CellPlan]]] = deque(work)
        pool = [self._start(i) for i in range(min(self.workers, len(queue)))]
        split: set[str] = set()  # tasks whose cells take_unit split between two units
        limit = self.runner.cell_timeout
        try:
            while queue or any(w.task is not None for w in pool):
                for worker in pool:
                    if worker.ready and worker.task is None and queue:
                        worker.task, cells = take_unit(queue, len(pool), split)
                        worker.remaining = list(cells)
                        worker.setup_started = time.monotonic()
                        worker.conn.send((worker.task, cells))
                conns = {w.conn: w for w in pool}
                for conn in wait(list(conns), timeout=0.25):
                    self._drain(conns[conn], sink)  # type: ignore[index]
                now = time.monotonic()
                for i, worker in enumerate(pool):
                    dead = not worker.process.is_alive()
                    late = (
                        limit is not None
                        and worker.current is not None
                        and now - worker.started > limit + self.kill_grace
                    ) or self._setup_late(worker, now)
                    if dead or late:
                        self._drain(worker, sink)
                        pool[i] = self._replace(worker, queue, sink, late)
        finally:
            _tell_to_stop([worker.conn for worker in pool])
            for worker in pool:
                self._stop(worker)

    def _setup_late(self, worker: _Worker, now: float) -> bool:
        """Whether the worker's task set-up ran past its limit and the grace period."""
        limit = self.runner.setup_timeout
        return (
            limit is not None
            and worker.setup_started is not None
            and now - worker.setup_started > limit + self.kill_grace
        )

    def _drain(self, worker: _Worker, sink: Callable[[CellRecord], None]) -> None:
        """Handle every message the worker has sent so far."""
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == "ready":
                    worker.ready = True
                elif kind == "start":
                    worker.current, worker.started = payload, time.monotonic()
                    worker.setup_started = None
                elif kind == "record":
                    worker.setup_started = None
                    sink(payload)
                    worker.remaining = [c for c in worker.remaining if c.cell_id != payload.cell_id]
                    worker.current = None
                elif kind == "idle":
                    worker.task, worker.remaining, worker.current = None, [], None
                    worker.setup_started = None
                elif kind == "error":
                    raise ExecutorError(f"worker {worker.index} could not start:\n{payload}")
        except (EOFError, OSError):
            pass  # the process is gone; the liveness check handles it

    def _replace(
        self,
        worker: _Worker,
        queue: deque[tuple[TaskPlan, list[CellPlan]]],
        sink: Callable[[CellRecord], None],
        late: bool,
    ) -> _Worker:
        """Kill a late or dead worker, record its current cell, re-queue the rest."""
        worker.process.kill()
        worker.process.join(5)
        code = worker.process.exitcode
        setup = self.runner.setup_timeout
        if late and worker.setup_started is not None and worker.task is not None and setup:
            how = " and did not stop; its worker process was killed and replaced"
            for cell in worker.remaining:  # a retry would run as long: not re-queued
                sink(
                    self.runner.record(
                        worker.task, cell, "timeout", error=setup_timeout_message(setup, how)
                    )
                )
        elif worker.task is not None and worker.remaining:
            task, remaining = worker.task, worker.remaining
            current = next((c for c in remaining if c.cell_id == worker.current), remaining[0])
            if late:
                error = (
                    f"the cell ran past the per-cell time limit of "
                    f"{self.runner.cell_timeout:g} s (--cell-timeout) and did not stop; "
                    f"its worker process was killed and replaced"
                )
                sink(self.runner.record(task, current, "timeout", error=error))
            else:
                error = f"the worker process running this cell died (exit code {code})"
                sink(self.runner.record(task, current, "failed", error=error))
            rest = [c for c in remaining if c.cell_id != current.cell_id]
            if rest:
                queue.appendleft((task, rest))
        elif not worker.ready:
            raise ExecutorError(f"worker {worker.index} died while starting (exit code {code})")
        return self._start(worker.index)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        """Wait for a worker told to stop (:func:`_tell_to_stop`); kill it if it does not."""
        worker.process.join(5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)
        worker.conn.close()


# --- single jobs (tune's trials) -------------------------------------------------------------


def _job_worker_main(conn: Connection, config: WorkerSetup, parent_pid: int) -> None:
    """A long-lived worker: receive ``(key, fn, payload)`` jobs, send outcomes back."""
    _exit_with_parent(parent_pid)
    _log_like_the_cli()
    with contextlib.suppress(*PIPE_GONE):
        _serve_jobs(conn, config)


def _serve_jobs(conn: Connection, config: WorkerSetup) -> None:
    def run_job(runner: Runner, job: Any) -> None:
        key, fn, payload = job
        conn.send(("done", call_job(key, fn, runner, payload)))

    _serve_messages(conn, config, run_job)


@dataclass
class _JobWorker:
    index: int
    process: Any
    conn: Connection
    ready: bool = False
    busy: bool = False
    key: Hashable = None


class ProcessJobs(JobPool):
    """One spawned worker per entry of ``devices``, each running one job at a time.

    A worker that dies (segfault, OOM kill) fails its job with its exit code and
    is replaced; one that cannot build its registry stops the pool
    (:class:`ExecutorError`).
    """

    name = "processes"

    def __init__(self, config: WorkerSetup, devices: list[str]) -> None:
        self.config = config
        self.devices = devices
        self.threads = config.threads
        self._workers: list[_JobWorker] = []

    def start(self) -> None:
        self._workers = [self._start(i) for i in range(len(self.devices))]

    def close(self) -> None:
        _tell_to_stop([worker.conn for worker in self._workers])
        for worker in self._workers:
            self._stop(worker)
        self._workers = []

    @property
    def free(self) -> int:
        return sum(not w.busy for w in self._workers)

    def submit(self, key: Hashable, fn: Job, payload: Any) -> None:
        worker = next(w for w in self._workers if not w.busy)
        worker.conn.send((key, fn, payload))  # read once the worker is ready
        worker.busy, worker.key = True, key

    def wait(self, timeout: float) -> list[JobOutcome]:
        done: list[JobOutcome] = []
        wait([w.conn for w in self._workers], timeout=timeout)
        for i, worker in enumerate(self._workers):
            self._drain(worker, done)
            if not worker.process.is_alive():
                self._drain(worker, done)  # what it sent just before it died
                self._workers[i] = self._replace(worker, done)
        return done

    def _start(self, index: int) -> _JobWorker:
        ctx = get_context("spawn")  # fork after torch started its thread pools can hang
        parent, child = ctx.Pipe()
        config = dataclasses.replace(self.config, device=self.devices[index], worker=index)
        target = partial(_run_then_exit, _job_worker_main)
        process = _spawn(ctx, target, child, config, f"unlearnbench-job-worker-{index}")
        return _JobWorker(index, process, parent)

    @staticmethod
    def _drain(worker: _JobWorker, done: list[JobOutcome]) -> None:
        try:
            while worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == "ready":
                    worker.ready = True
                elif kind == "done":
                    done.append(payload)
                    worker.busy, worker.key = False, None
                elif kind == "error":
                    raise ExecutorError(f"worker {worker.index} could not start:\n{payload}")
        except (EOFError, OSError):
            pass  # the process is gone; the liveness check handles it

    def _replace(self, worker: _JobWorker, done: list[JobOutcome]) -> _JobWorker:
        worker.process.join(5)
        code = worker.process.exitcode
        worker.conn.close()
        if not worker.ready:
            raise ExecutorError(f"worker {worker.index} died while starting (exit code {code})")
        if worker.busy:
            error = f"the worker process running this job died (exit code {code})"
            done.append(JobOutcome(worker.key, error=error))
        return self._start(worker.index)

    @staticmethod
    def _stop(worker: _JobWorker) -> None:
        worker.process.join(5 if not worker.busy else 0.1)  # a busy one is abandoned
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)
        worker.conn.close()
