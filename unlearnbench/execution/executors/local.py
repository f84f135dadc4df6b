"""The ``local`` executor: every unit in this process, one after another (the default).

With a cell time limit the cell is interrupted in-process by ``SIGALRM`` (see
:func:`unlearnbench.execution.limits.time_limit`); a cell stuck inside one C
call cannot be stopped there. Use ``processes`` for a hard limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from unlearnbench.execution.devices import available_cores
from unlearnbench.execution.executors.base import ExecutorOptions
from unlearnbench.execution.runner import Runner, Work
from unlearnbench.execution.store import CellRecord


@dataclass
class LocalExecutor:
    """Every unit in this process, one after another (the default)."""

    runner: Runner
    name: str = "local"
    threads: int = 0

    @classmethod
    def create(cls, options: ExecutorOptions) -> LocalExecutor:
        """This process, with ``options.threads`` torch threads (never more than the cores)."""
        if options.threads:
            torch.set_num_threads(min(options.threads, available_cores()))
        return cls(options.runner, threads=torch.get_num_threads())

    def execute(self, work: Work, sink: Callable[[CellRecord], None]) -> None:
        for task_plan, cells in work:
            self.runner.run_task(task_plan, cells, sink)
