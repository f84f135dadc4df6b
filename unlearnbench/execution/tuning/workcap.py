"""The work cap of a trial: a :class:`TaskContext` that stops a trial once its
unlearning work passes ``tuning.max_sample_passes``, so every method is tuned on
the same budget. ``fit`` (the shared training) is outside the cap.
See docs/tuning.md ("Budget").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.context import TaskContext
from unlearnbench.task import Task


class WorkCapExceeded(RuntimeError):
    """A trial's unlearning work passed ``tuning.max_sample_passes``."""


class CappedContext(TaskContext):
    """A :class:`TaskContext` that stops a trial once its unlearning work passes a cap.

    The cap applies from :meth:`start_cap` (called before the first
    ``unlearn``); every counting point (``train``, ``add_work``, a cached
    artifact's work) checks it.
    """

    def __init__(self, task: Task, cache: ArtifactCache, cap: float) -> None:
        super().__init__(task, cache)
        self.cap = cap
        self.cap_start: float | None = None

    def start_cap(self) -> None:
        self.cap_start = self.work

    @property
    def capped_work(self) -> float:
        return 0.0 if self.cap_start is None else self.work - self.cap_start

    def _check(self) -> None:
        if self.cap_start is not None and self.capped_work > self.cap:
            raise WorkCapExceeded(
                f"unlearning work {self.capped_work:.0f} sample-passes exceeds the cap "
                f"tuning.max_sample_passes = {self.cap:.0f}"
            )

    def add_work(self, sample_passes: float) -> None:
        super().add_work(sample_passes)
        self._check()

    def train(self, *args: Any, **kwargs: Any) -> Any:
        stats = super().train(*args, **kwargs)
        self._check()
        return stats

    def cached(self, name: str, params: Mapping[str, Any], build: Any) -> dict[str, Any]:
        value = super().cached(name, params, build)
        self._check()
        return value
