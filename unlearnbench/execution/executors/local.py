"""The ``local`` executor: every unit in this process, one after another (the default).

With a cell time limit the cell is interrupted in-process by ``SIGALRM`` (see
:func:`unlearnbench.execution.limits.time_limit`); a cell stuck inside one C
call cannot be stopped there. Use ``processes`` for a hard limit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import torch

from unlearnbench.execution.devices import available_cores
from unlearnbench.execution.executors.base import (
    ExecutorOptions,
    Job,
    JobOutcome,
    JobPool,
    call_job,
)
from unlearnbench.execution.store import CellRecord
from unlearnbench.execution.task_runner import Runner, Work


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

    def jobs(self, parallel: int) -> LocalJobs:
        """Jobs in this process, one at a time, whatever ``parallel`` allows."""
        return LocalJobs(self.runner, self.threads)


class LocalJobs(JobPool):
    """Jobs in this process with its runner, one at a time, run when :meth:`wait` is
    called (so they run in the order they were submitted)."""

    name = "local"

    def __init__(self, runner: Runner, threads: int) -> None:
        self.runner = runner
        self.threads = threads
        self._queue: deque[tuple[Hashable, Job, Any]] = deque()

    def start(self) -> None:
        """Nothing to start: jobs run in this process."""

    def close(self) -> None:
        self._queue.clear()

    @property
    def free(self) -> int:
        return 0 if self._queue else 1

    def submit(self, key: Hashable, fn: Job, payload: Any) -> None:
        self._queue.append((key, fn, payload))

    def wait(self, timeout: float) -> list[JobOutcome]:
        done = []
        while self._queue:
            key, fn, payload = self._queue.popleft()
            done.append(call_job(key, fn, self.runner, payload))
        return done
