"""Executors: where a plan's cells run (here, in worker processes, on Ray).

All three run the same :meth:`Runner.run_task` on the same work unit, a task
with its pending cells, so a task's shared artifacts (the original model, the
reference run, shadow models) are built once per unit and the metrics do not
depend on the executor (only the timings do).

The parent process is the **only writer** of the results store: workers send
each cell's :class:`CellRecord` back as soon as the cell is done, and the
parent commits it in one SQLite transaction right away. One writer means no
lock contention between workers, no SQLite file on a cluster's network file
system, and a kill at any moment loses at most the cells still running.

- ``local``: this process. With a cell time limit the cell is interrupted
  in-process by ``SIGALRM`` (see :func:`unlearnbench.runner.time_limit`); a cell
  stuck inside one C call cannot be stopped there. Use ``processes`` for a hard
  limit.
- ``processes``: long-lived spawned workers (importing torch costs seconds and
  hundreds of MB, so never a process per cell), ``workers x threads <= cores``,
  one worker per GPU on a multi-GPU machine. A cell past its limit is first
  interrupted in the worker (``SIGALRM``, the worker stays warm); a worker that
  does not answer within a grace period is killed and replaced, the cell is
  recorded as ``timeout`` and the rest of its task is re-queued. A task's
  shared set-up past its own limit (``Runner.setup_timeout``) is handled the
  same way, except that all the task's cells are recorded as ``timeout`` (the
  set-up would run as long again). A worker that dies (segfault, OOM kill)
  fails its current cell the same way. Workers exit
  on their own when the parent dies (a watchdog thread), so ``kill -9`` of a
  run leaves no orphans.
- ``ray``: one Ray task per work unit (``num_cpus``, and ``num_gpus`` that may
  be fractional so small models share a GPU), streaming each record back as a
  generator item. The original model of each training configuration is built
  once by its own Ray task and handed *by value* (the checksummed artifact
  bytes, through Ray's object store) to the units that need it, so a cluster
  without a shared folder still builds it once; with a shared ``--out`` folder
  the artifact cache's file locks also share the other artifacts.

Workers build their own registry with a picklable ``registry_factory`` (the
runner imports no plugin machinery; the CLI passes :class:`RegistryFactory`).

Two runs pointed at one results folder share the work instead of both doing
it: :func:`run_plan` claims each task with a lock file in ``<out>/.locks``
(held by the parent, the writer, until the task's records are committed), so
the other run waits for that task, re-reads the store and skips its finished
cells. A run that dies drops its claims with its process.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from unlearnbench.cache import ArtifactCache, FileLock, content_key, remove_stale_temporaries
from unlearnbench.plan import CellPlan, Plan, TaskPlan
from unlearnbench.registry import Registry
from unlearnbench.runner import (
    SETUP_LIMIT,
    CellTimeout,
    Runner,
    RunSummary,
    TaskContext,
    Work,
    pending_work,
    setup_timeout_message,
    time_limit,
)
from unlearnbench.store import CellRecord, ResultStore

log = logging.getLogger(__name__)

EXECUTORS = ("local", "processes", "ray")
HARD_KILL_GRACE_S = 10.0  # after the in-worker limit, how long before the worker is killed
LOCKS_DIR = ".locks"  # in the results folder: which run is doing which task
CLAIM_BATCH = 256  # tasks claimed (lock files held open) at a time
CLAIM_POLL_S = 0.5  # how often to look for tasks another run has finished with


class ExecutorError(RuntimeError):
    """An executor could not start (no Ray, a worker that cannot build its registry)."""


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class RegistryFactory:
    """Builds the plugin registry in a worker: picklable, unlike a registry.

    ``extra_plugins`` are ``"module:attribute"`` names of in-process plugins
    (an attribute that is a class is instantiated), importable in the worker.
    """

    load_entry_points: bool = True
    extra_plugins: tuple[str, ...] = ()
    blocked: tuple[str, ...] | None = None

    def __call__(self) -> Registry:
        from unlearnbench.plugins import load_registry

        extra = []
        for name in self.extra_plugins:
            module_name, _, attr = name.partition(":")
            obj: Any = importlib.import_module(module_name)
            if attr:
                obj = getattr(obj, attr)
                obj = obj() if isinstance(obj, type) else obj
            extra.append(obj)
        registry, _ = load_registry(
            blocked=self.blocked,
            load_entry_points=self.load_entry_points,
            extra_plugins=extra,
        )
        return registry


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs to build its own runner."""

    registry_factory: Callable[[], Registry]
    cache_root: str
    device: str
    threads: int
    cell_timeout: float | None
    executor: str
    worker: int = 0
    setup_timeout: float | None = None


def make_worker_runner(config: WorkerConfig) -> Runner:
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


class Executor(Protocol):
    name: str

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        """Run every (task, cells) unit and pass each finished record to ``sink``."""


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


@dataclass
class LocalExecutor:
    """Every unit in this process, one after another (the default)."""

    runner: Runner
    name: str = "local"

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        for task_plan, cells in work:
            self.runner.run_task(task_plan, cells, sink)


# --------------------------------------------------------------------------- processes


def _exit_with_parent(parent_pid: int) -> None:
    """Exit this worker soon after its parent dies (even by ``kill -9``)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


PIPE_GONE = (BrokenPipeError, ConnectionResetError, EOFError)


def _worker_main(conn: Connection, config: WorkerConfig, parent_pid: int) -> None:
    """A long-lived worker: receive (task, cells) units, send records back.

    When the pipe to the parent is gone (the parent was killed, or stopped
    listening) there is nobody left to send results to: the worker exits
    quietly instead of printing a ``BrokenPipeError`` traceback.
    """
    _exit_with_parent(parent_pid)
    _log_like_the_cli()
    with contextlib.suppress(*PIPE_GONE):
        _serve(conn, config)


def _log_like_the_cli() -> None:
    """Log warnings in the CLI's format (a spawned worker starts with no logging set up)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def _serve(conn: Connection, config: WorkerConfig) -> None:
    try:
        runner = make_worker_runner(config)
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            unit = conn.recv()
        except (EOFError, OSError):
            return
        if unit is None:
            return
        task_plan, cells = unit
        runner.run_task(
            task_plan,
            cells,
            lambda record: conn.send(("record", record)),
            on_start=lambda cell: conn.send(("start", cell.cell_id)),
        )
        conn.send(("idle", None))


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

    def _start(self, index: int) -> _Worker:
        ctx = get_context("spawn")  # fork after torch started its thread pools can hang
        parent, child = ctx.Pipe()
        config = WorkerConfig(
            registry_factory=self.registry_factory,
            cache_root=self.cache_root,
            device=self.devices[index],
            threads=self.threads,
            cell_timeout=self.runner.cell_timeout,
            setup_timeout=self.runner.setup_timeout,
            executor=self.name,
            worker=index,
        )
        process = ctx.Process(
            target=_worker_main,
            args=(child, config, os.getpid()),
            name=f"unlearnbench-worker-{index}",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(index, process, parent)

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        queue: deque[tuple[TaskPlan, list[CellPlan]]] = deque(work)
        pool = [self._start(i) for i in range(min(self.workers, len(queue)))]
        limit = self.runner.cell_timeout
        try:
            while queue or any(w.task is not None for w in pool):
                for worker in pool:
                    if worker.ready and worker.task is None and queue:
                        worker.task, cells = queue.popleft()
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
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
        worker.process.join(5)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5)
        worker.conn.close()


def plan_workers(device: torch.device, workers: int, threads: int) -> tuple[int, int, list[str]]:
    """Worker count, torch threads per worker and each worker's device.

    On CUDA: one worker per GPU by default (``cuda:i``); more workers share GPUs
    round-robin. On CPU: ``workers x threads`` never exceeds the cores; with 0
    (auto) the workers get the cores evenly.
    """
    cores = available_cores()
    if device.type == "cuda" and device.index is None:
        gpus = max(1, torch.cuda.device_count())
        workers = workers or gpus
        devices = [f"cuda:{i % gpus}" for i in range(workers)]
    else:
        workers = workers or cores
        if workers > cores and device.type == "cpu":
            log.warning(
                "%d workers on %d cores would oversubscribe; using %d", workers, cores, cores
            )
            workers = cores
        devices = [str(device)] * workers
    max_threads = max(1, cores // workers)
    if threads > max_threads:
        log.warning(
            "%d workers x %d threads exceed %d cores; using %d threads per worker",
            workers,
            threads,
            cores,
            max_threads,
        )
    threads = min(threads, max_threads) if threads else max_threads
    return workers, threads, devices


# --------------------------------------------------------------------------- ray

_RAY_RUNNERS: dict[WorkerConfig, Runner] = {}


def _ray_runner(config: WorkerConfig) -> Runner:
    """One runner per Ray worker process and configuration (data sets stay loaded)."""
    if config not in _RAY_RUNNERS:
        _RAY_RUNNERS[config] = make_worker_runner(config)
    return _RAY_RUNNERS[config]


def _ray_original(
    config: WorkerConfig, task_plan: TaskPlan
) -> tuple[str, bytes, dict[str, Any]] | None:
    """Build (or load) a training configuration's original model; return its artifact.

    ``None`` if that ran past the set-up limit: each unit then tries within its
    own set-up limit, and records its cells as ``timeout`` saying so.
    """
    runner = _ray_runner(config)
    try:
        with time_limit(config.setup_timeout, SETUP_LIMIT):
            ctx = TaskContext(runner.build_task(task_plan), runner.cache)
            ctx.original()
    except CellTimeout:
        return None
    parts = ctx.artifact_parts("original", {})
    key = content_key(parts)
    data = runner.cache.read_verified(key)
    if data is None:  # pragma: no cover - only if the cache folder is unwritable
        raise ExecutorError(f"the original model {key} was built but cannot be read back")
    return key, data, parts


def _ray_unit(
    config: WorkerConfig,
    task_plan: TaskPlan,
    cells: list[CellPlan],
    original: tuple[str, bytes, dict[str, Any]] | None,
) -> Iterator[CellRecord | str]:
    """A Ray generator task: yields a cell's id as it starts, then its record when done."""
    runner = _ray_runner(config)
    if original is not None:
        runner.cache.put_verified(*original)
    for event in runner.iter_events(task_plan, cells):
        yield event if isinstance(event, CellRecord) else event.cell_id


@dataclass
class _Stream:
    """One running Ray unit: its generator, its task and the cells not yet recorded."""

    ref: Any
    task: TaskPlan
    remaining: list[CellPlan]
    current: str | None = None
    started: float = field(default_factory=time.monotonic)


@dataclass
class RayExecutor:
    """Units as Ray tasks on a local instance or the cluster at ``address``."""

    runner: Runner
    registry_factory: Callable[[], Registry]
    cache_root: str
    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float | None = None
    num_cpus: int | None = None
    name: str = "ray"
    kill_grace: float = HARD_KILL_GRACE_S

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                "the ray executor needs Ray: pip install 'unlearnbench[ray]'"
            ) from None
        started = not ray.is_initialized()
        if started:
            try:
                if self.address:
                    ray.init(address=self.address, log_to_driver=False)
                else:
                    ray.init(
                        num_cpus=self.num_cpus or available_cores(),
                        include_dashboard=False,
                        log_to_driver=False,
                    )
            except Exception as exc:  # a wrong address, a cluster that is down
                where = self.address or "a local instance"
                raise ExecutorError(f"could not start Ray on {where}: {exc}") from exc
        try:
            self._execute(ray, work, sink)
        finally:
            if started:
                ray.shutdown()

    def _execute(self, ray: Any, work: Work, sink: Callable[[CellRecord], None]) -> None:
        cuda = self.runner.device.type == "cuda"
        gpus = self.gpus_per_task if self.gpus_per_task is not None else (1.0 if cuda else 0.0)
        config = WorkerConfig(
            registry_factory=self.registry_factory,
            cache_root=self.cache_root,
            device="cuda" if cuda and gpus > 0 else "cpu",  # Ray sets CUDA_VISIBLE_DEVICES
            threads=max(1, int(self.cpus_per_task)),
            cell_timeout=self.runner.cell_timeout,
            setup_timeout=self.runner.setup_timeout,
            executor=self.name,
        )
        options = {"num_cpus": self.cpus_per_task, "num_gpus": gpus, "max_retries": 0}
        build_original = ray.remote(_ray_original).options(**options)
        run_unit = ray.remote(_ray_unit).options(num_returns="streaming", **options)
        originals: dict[str, Any] = {}
        streams: list[_Stream] = []

        def submit(task_plan: TaskPlan, cells: list[CellPlan]) -> None:
            if task_plan.train_key not in originals:
                originals[task_plan.train_key] = build_original.remote(config, task_plan)
            ref = run_unit.remote(config, task_plan, cells, originals[task_plan.train_key])
            streams.append(_Stream(ref, task_plan, list(cells)))

        for task_plan, cells in work:
            submit(task_plan, cells)
        limit = self.runner.cell_timeout
        while streams:
            ready, _ = ray.wait([s.ref for s in streams], num_returns=1, timeout=0.5)
            for ref in ready:
                stream = next(s for s in streams if s.ref is ref)
                try:
                    item = ray.get(next(stream.ref))
                except StopIteration:
                    streams.remove(stream)
                    continue
                except Exception as exc:  # the unit died (worker crash, original failed)
                    streams.remove(stream)
                    for cell in stream.remaining:
                        error = f"the Ray task running this cell failed: {exc}"
                        sink(self.runner.record(stream.task, cell, "failed", error=error))
                    continue
                if isinstance(item, str):
                    stream.current, stream.started = item, time.monotonic()
                    continue
                stream.remaining = [c for c in stream.remaining if c.cell_id != item.cell_id]
                stream.current = None
                sink(item)
            now = time.monotonic()
            for stream in list(streams):
                if limit is None or stream.current is None:
                    continue
                if now - stream.started > limit + self.kill_grace:
                    ray.cancel(stream.ref, force=True)  # kills the worker process
                    streams.remove(stream)
                    cell = next(c for c in stream.remaining if c.cell_id == stream.current)
                    error = (
                        f"the cell ran past the per-cell time limit of {limit:g} s "
                        f"(--cell-timeout) and did not stop; its Ray worker was killed"
                    )
                    sink(self.runner.record(stream.task, cell, "timeout", error=error))
                    rest = [c for c in stream.remaining if c is not cell]
                    if rest:
                        submit(stream.task, rest)
