"""``executor="auto"``: worker processes only where they pay.

Worker processes pay when there is more than one core (more than one GPU on
CUDA) and enough work is pending: for a run, tasks (a task's cells share its
trained original, so tasks are what workers split); for tuning, studies and
trials (a study's trials run one after another). Otherwise this process runs
everything. :func:`~unlearnbench.execution.run.prepare_run` and
:func:`~unlearnbench.execution.run.prepare_tuning` resolve ``"auto"`` here, so
``run_suite`` and the CLI choose alike; the CLI prints the reason. Importing
this module is cheap (no torch): the CLI's help quotes its thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unlearnbench.execution.suite import Suite
    from unlearnbench.host.registry import Registry

AUTO = "auto"
AUTO_MIN_TASKS = 4
"""``auto`` starts worker processes for at least this many pending tasks (fewer do
not pay for the workers' start-up and the original's reload)."""
AUTO_MIN_STUDIES = 2
AUTO_MIN_TRIALS = 40
"""Tuning's ``auto`` starts worker processes for at least this many pending
studies (a study's trials run one after another, so one study cannot use two
workers) and trials (two studies at the default 20 trials; fewer trials do not pay
for the workers' start-up: 9 studies x 4 small trials on MNIST-1D took 41.5 s on
2 workers, 29.2 s in this process, on a busy 2-core machine)."""


@dataclass(frozen=True)
class ExecutorChoice:
    """The executor ``auto`` chose, its torch threads (0: torch's default) and why."""

    executor: str
    threads: int
    why: str


def choose_run_executor(
    suite: Suite,
    registry: Registry,
    out: Path | str,
    *,
    device: str = "auto",
    workers: int = 0,
    threads: int = 0,
) -> ExecutorChoice:
    """The executor for running ``suite`` into ``out``: processes when at least
    :data:`AUTO_MIN_TASKS` tasks still have cells to run (an existing store is
    read, never created). Raises ``SuiteError``/``ValueError`` on a bad suite or
    device, ``StoreError`` on a damaged store."""
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.store import STORE_FILE, ResultStore

    plan = build_plan(suite, registry)
    finished: set[str] = set()
    store_path = Path(out) / STORE_FILE
    if store_path.exists():
        with ResultStore(store_path, read_only=True) as store:
            finished = store.finished()
    pending = sum(1 for task in plan.tasks if any(c.cell_id not in finished for c in task.cells))
    enough = pending >= AUTO_MIN_TASKS
    return _choice(enough, f"{pending} tasks pending", "cell", device, workers, threads)


def choose_tune_executor(
    suite: Suite,
    registry: Registry,
    out: Path | str,
    *,
    device: str = "auto",
    workers: int = 0,
    threads: int = 0,
) -> ExecutorChoice:
    """The executor for tuning ``suite`` (the suite ``tune`` studies:
    :func:`~unlearnbench.execution.run.tuning_suite`) into ``out``: processes when at
    least :data:`AUTO_MIN_STUDIES` studies with :data:`AUTO_MIN_TRIALS` trials are
    pending (reads only)."""
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.tuning import pending_studies

    studies, trials = pending_studies(build_plan(suite, registry), registry, Path(out))
    enough = studies >= AUTO_MIN_STUDIES and trials >= AUTO_MIN_TRIALS
    pending = f"{studies} studies with {trials} trials pending"
    return _choice(enough, pending, "trial", device, workers, threads)


def _choice(
    enough: bool, pending: str, unit: str, device: str, workers: int, threads: int
) -> ExecutorChoice:
    """Processes when ``enough`` work is pending on more than one core (GPU), else
    this process; ``workers`` asks for processes. On the CPU both choices use one
    torch thread per ``unit`` (a cell, a trial) unless ``threads`` says otherwise
    (small models run faster at one thread, and the same thread count either way
    keeps results identical and a resumed run's thread check stable)."""
    import torch

    from unlearnbench.execution import devices

    resolved = devices.resolve_device(device)
    threads = threads or (1 if resolved.type == "cpu" else 0)
    if resolved.type == "cuda":
        units, what = torch.cuda.device_count(), "GPUs"
    else:
        units, what = devices.available_cores(), "cores"
    if workers:
        return ExecutorChoice("processes", threads, "--workers given")
    per = f"; {threads} torch thread(s) per {unit}" if threads else ""
    if units > 1 and enough:
        return ExecutorChoice("processes", threads, f"{pending} on {units} {what}{per}")
    why = f"{pending} on {units} {what}: worker processes would not pay{per}"
    return ExecutorChoice("local", threads, why)
