"""The ``ray`` executor: one Ray task per work unit, on a local instance or a cluster.

Each unit gets ``num_cpus``, and ``num_gpus`` that may be fractional so small
models share a GPU, and streams each record back as a generator item. The
original model of each training configuration is built once by its own Ray
task and handed *by value* (the checksummed artifact bytes, through Ray's
object store) to the units that need it, so a cluster without a shared folder
still builds it once; with a shared ``--out`` folder the artifact cache's file
locks also share the other artifacts. Ray itself is imported only when the
executor runs (an optional extra).

:class:`RayJobs` runs ``tune``'s trials as one Ray task per trial.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench.execution.cache import content_key
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.devices import available_cores
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
from unlearnbench.execution.limits import SETUP_LIMIT, CellTimeout, time_limit
from unlearnbench.execution.plan import CellPlan, TaskPlan
from unlearnbench.execution.store import CellRecord
from unlearnbench.execution.task_runner import Runner, Work
from unlearnbench.host.registry import Registry

_RAY_RUNNERS: dict[WorkerSetup, Runner] = {}


def _ray_runner(config: WorkerSetup) -> Runner:
    """One runner per Ray worker process and configuration (data sets stay loaded)."""
    if config not in _RAY_RUNNERS:
        _RAY_RUNNERS[config] = make_worker_runner(config)
    return _RAY_RUNNERS[config]


def _ray_original(
    config: WorkerSetup, task_plan: TaskPlan
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
    config: WorkerSetup,
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


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[Any]:
    """The ``ray`` module, initialised (a local instance, or the cluster at
    ``address``) unless it already is, and shut down after if started here."""
    try:
        import ray
    except ImportError:
        raise ExecutorError("the ray executor needs Ray: pip install 'unlearnbench[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=num_cpus or available_cores(),
                    include_dashboard=False,
                    log_to_driver=False,
                )
        except Exception as exc:  # a wrong address, a cluster that is down
            where = address or "a local instance"
            raise ExecutorError(f"could not start Ray on {where}: {exc}") from exc
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


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

    @classmethod
    def create(cls, options: ExecutorOptions) -> RayExecutor:
        """One CPU per task unless ``options.threads`` says more (starts nothing)."""
        return cls(
            options.runner,
            options.registry_factory,
            str(Path(options.cache_root).resolve()),
            address=options.address,
            cpus_per_task=float(options.threads or 1),
            gpus_per_task=options.gpus_per_task,
        )

    @property
    def threads(self) -> int:
        """The torch threads each Ray worker sets."""
        return max(1, int(self.cpus_per_task))

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        with ray_session(self.address, self.num_cpus) as ray:
            self._execute(ray, work, sink)

    def jobs(self, parallel: int) -> RayJobs:
        """Single jobs as Ray tasks with this executor's resources (``parallel`` is
        what the cluster's CPUs and GPUs allow)."""
        config, options = self._resources()
        return RayJobs(config, options, self.address, self.num_cpus)

    def _resources(self) -> tuple[WorkerSetup, dict[str, Any]]:
        """The workers' configuration and each Ray task's options."""
        cuda = self.runner.device.type == "cuda"
        gpus = self.gpus_per_task if self.gpus_per_task is not None else (1.0 if cuda else 0.0)
        config = WorkerSetup(
            registry_factory=self.registry_factory,
            cache_root=self.cache_root,
            device="cuda" if cuda and gpus > 0 else "cpu",  # Ray sets CUDA_VISIBLE_DEVICES
            threads=max(1, int(self.cpus_per_task)),
            cell_timeout=self.runner.cell_timeout,
            setup_timeout=self.runner.setup_timeout,
            executor=self.name,
        )
        options = {"num_cpus": self.cpus_per_task, "num_gpus": gpus, "max_retries": 0}
        return config, options

    def _execute(self, ray: Any, work: Work, sink: Callable[[CellRecord], None]) -> None:
        config, options = self._resources()
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


# --- single jobs (tune's trials) -------------------------------------------------------------


def _ray_job(config: WorkerSetup, key: Hashable, fn: Job, payload: Any) -> JobOutcome:
    """A Ray task: one job on this Ray worker's runner."""
    return call_job(key, fn, _ray_runner(config), payload)


class RayJobs(JobPool):
    """One Ray task per job, as many at a time as the cluster's resources hold."""

    name = "ray"

    def __init__(
        self,
        config: WorkerSetup,
        options: dict[str, Any],
        address: str | None,
        num_cpus: int | None,
    ) -> None:
        self.config = config
        self.options = options
        self.address = address
        self.num_cpus = num_cpus
        self.threads = config.threads
        self.slots = 1
        self._stack = contextlib.ExitStack()
        self._ray: Any = None
        self._remote: Any = None
        self._running: dict[Any, Hashable] = {}

    def start(self) -> None:
        ray = self._ray = self._stack.enter_context(ray_session(self.address, self.num_cpus))
        self._remote = ray.remote(_ray_job).options(**self.options)
        have = ray.cluster_resources()
        slots = have.get("CPU", 1.0) / max(self.options["num_cpus"], 1e-9)
        if self.options["num_gpus"]:
            slots = min(slots, have.get("GPU", 0.0) / self.options["num_gpus"])
        self.slots = max(1, int(slots))

    def close(self) -> None:
        for ref in self._running:
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=True)
        self._running = {}
        self._stack.close()

    @property
    def free(self) -> int:
        return max(0, self.slots - len(self._running))

    def submit(self, key: Hashable, fn: Job, payload: Any) -> None:
        ref = self._remote.remote(self.config, key, fn, payload)
        self._running[ref] = key

    def wait(self, timeout: float) -> list[JobOutcome]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=timeout)
        done = []
        for ref in ready:
            key = self._running.pop(ref)
            try:
                done.append(self._ray.get(ref))
            except Exception as exc:  # the task died (worker crash, lost node)
                done.append(JobOutcome(key, error=f"the Ray task running this job failed: {exc}"))
        return done
