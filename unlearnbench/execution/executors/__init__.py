"""Executors: where a plan's cells run. One module per strategy.

- ``local`` (:mod:`.local`): this process, one unit after another.
- ``processes`` (:mod:`.processes`): long-lived spawned worker processes.
- ``ray`` (:mod:`.ray`): Ray tasks on a local instance or a cluster.

What they share (work units, task claims, the parent as the only writer of the
store, the job pools ``tune`` runs trials on) is in :mod:`.base`.
:data:`EXECUTORS` maps each name to its factory:
``EXECUTORS[name](options)`` builds the executor without starting anything.
"""

from __future__ import annotations

from collections.abc import Callable

from unlearnbench.execution.executors.base import (
    Executor,
    ExecutorError,
    ExecutorOptions,
    JobOutcome,
    JobPool,
    WorkerSetup,
    claimed_work,
    make_worker_runner,
    run_plan,
)
from unlearnbench.execution.executors.local import LocalExecutor
from unlearnbench.execution.executors.processes import ProcessExecutor
from unlearnbench.execution.executors.ray import RayExecutor

ExecutorFactory = Callable[[ExecutorOptions], Executor]

EXECUTORS: dict[str, ExecutorFactory] = {
    "local": LocalExecutor.create,
    "processes": ProcessExecutor.create,
    "ray": RayExecutor.create,
}
"""Executor name -> factory; the command line's ``--executor`` choices."""

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "ExecutorFactory",
    "ExecutorOptions",
    "JobOutcome",
    "JobPool",
    "LocalExecutor",
    "ProcessExecutor",
    "RayExecutor",
    "WorkerSetup",
    "claimed_work",
    "make_worker_runner",
    "run_plan",
]
