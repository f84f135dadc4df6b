"""The execution core: from a suite file to a results store.

:func:`run_suite` (in :mod:`.run`) is the one path the CLI, the tests and the
benchmarks take. Under it, :mod:`.suite` reads a suite file; :mod:`.plan`
resolves it against a registry into tasks and cells; :mod:`.task_runner` runs a
task's cells and keeps the run's bookkeeping, :mod:`.cell` computes one cell
(``fit``, the timed ``unlearn``, the evaluators) with the :mod:`.context` every
plugin receives, :mod:`.limits` bounds their time and :mod:`.devices` picks
devices and worker sizes; :mod:`.executors` decides where cells run (this
process, worker processes, Ray; ``auto``: :mod:`.executor_choice`); :mod:`.store`
is the results store, :mod:`.cache` the artifact cache, :mod:`.provenance`
what every record says about the machine. It imports no pluggy and no plugin:
it is given a registry (or, for workers, a picklable factory of one).

Importing this package is cheap: ``run_suite``, ``prepare_run``,
``PreparedRun`` and ``RunResult`` are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unlearnbench.execution.run import PreparedRun, RunResult, prepare_run, run_suite

__all__ = ["PreparedRun", "RunResult", "prepare_run", "run_suite"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("unlearnbench.execution.run"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
