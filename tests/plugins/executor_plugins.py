"""Fixture plugins for the executor, reliability and bad-input tests.

Importable by worker processes (``RegistryFactory(extra_plugins=...)``), so
they live in a module rather than inside a test file.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import Any

import torch

from unlearnbench import DatasetArrays, DatasetSpec, MethodSpec, Param, Unlearned, hookimpl


class Sleepy:
    """Unlearning that takes ``seconds``; with ``deaf`` it also ignores SIGALRM.

    A deaf sleeper stands for a cell stuck inside one C call, which an
    in-process alarm cannot interrupt: only killing its process stops it.
    """

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.seconds = float(params["seconds"])
        self.deaf = bool(params["deaf"])

    def fit(self, task: Any, ctx: Any) -> None:
        return None

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        if self.deaf:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            time.sleep(self.seconds)
        finally:
            if self.deaf:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
        return Unlearned(model=ctx.original(), costs={})


class Crashing:
    """Unlearning that kills its own process, as a segfault or the OOM killer would."""

    def fit(self, task: Any, ctx: Any) -> None:
        return None

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        os._exit(9)


COUNTED: list[str] = []  # one entry per ``counting`` cell computed in this process


class Counting:
    """Returns the original model after ``seconds``, noting each call in ``COUNTED``."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.seconds = float(params["seconds"])

    def fit(self, task: Any, ctx: Any) -> None:
        return None

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Unlearned:
        COUNTED.append(task.request.label_text)
        time.sleep(self.seconds)
        return Unlearned(model=ctx.original(), costs={})


def load_missing(params: Mapping[str, Any]) -> DatasetArrays:
    """A data set whose files are not where the user said."""
    raise FileNotFoundError(f"no data set files under {params['root']!r}")


class ExecutorTestPlugin:
    """Registered in-process or by ``RegistryFactory("tests.plugins.executor_plugins:...")``."""

    __name__ = "executor_fixture"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [
            MethodSpec(
                "sleepy",
                Sleepy,
                params=(
                    Param("seconds", 30.0, "how long unlearning takes"),
                    Param("deaf", False, "ignore SIGALRM while sleeping"),
                ),
                description="Sleeps (test fixture for time limits).",
            ),
            MethodSpec("crashing", lambda p: Crashing(), description="Kills its process."),
            MethodSpec(
                "counting",
                Counting,
                params=(Param("seconds", 0.0, "how long unlearning takes"),),
                description="Counts its calls (test fixture for concurrent runs).",
            ),
        ]

    @hookimpl
    def unlearnbench_datasets(self) -> list[DatasetSpec]:
        return [
            DatasetSpec(
                "missing_root",
                load_missing,
                params=(Param("root", "/nonexistent/data", "data root"),),
                description="Always raises FileNotFoundError (test fixture).",
            )
        ]
