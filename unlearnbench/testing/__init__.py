"""Fixtures and contract checks for plugin authors (a pytest plugin).

Installed with unlearnbench under the ``pytest11`` entry point, so any test
suite can use the fixtures ``tiny_task`` and ``tiny_context`` (a small real
task on the embedded digits, CPU) and the ``make_tiny_task`` factory, and call
the ``check_*_contract`` functions, which every built-in plugin also passes::

    from unlearnbench.testing import check_method_contract

    def test_my_method(make_tiny_task):
        check_method_contract("my-method", make_tiny_task)

pytest imports this module in every test session of an environment where
unlearnbench is installed, so it imports nothing heavy: torch, the plugin host
and the checks (:mod:`unlearnbench.testing.contracts`) are imported when a
fixture or a check is first used (as datasette's ``_pytest_plugin`` does).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from unlearnbench.execution.context import TaskContext
    from unlearnbench.task import Task
    from unlearnbench.testing.contracts import (
        TINY_RECIPE,
        TINY_SPLITS,
        TinyTaskFactory,
        check_architecture_contract,
        check_dataset_contract,
        check_evaluator_contract,
        check_method_contract,
        make_replicates,
        make_task,
        registry,
        run_unlearning,
    )

__all__ = [
    "TINY_RECIPE",
    "TINY_SPLITS",
    "TinyTaskFactory",
    "check_architecture_contract",
    "check_dataset_contract",
    "check_evaluator_contract",
    "check_method_contract",
    "make_replicates",
    "make_task",
    "make_tiny_task",
    "registry",
    "run_unlearning",
    "tiny_context",
    "tiny_task",
]
_FIXTURES = ("make_tiny_task", "tiny_context", "tiny_task")
_LAZY = frozenset(__all__) - set(_FIXTURES)  # defined in .contracts


def __getattr__(name: str) -> Any:
    """The checks and helpers, imported from :mod:`.contracts` on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module("unlearnbench.testing.contracts"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@pytest.fixture
def make_tiny_task(tmp_path: Path) -> TinyTaskFactory:
    """Factory fixture: ``make_tiny_task(request=..., seed=...)`` -> (task, ctx)."""
    from unlearnbench.testing.contracts import make_task

    def factory(**kwargs: Any) -> tuple[Task, TaskContext]:
        return make_task(tmp_path / "cache", **kwargs)

    return factory


@pytest.fixture
def tiny_task(make_tiny_task: TinyTaskFactory) -> Task:
    return make_tiny_task()[0]


@pytest.fixture
def tiny_context(make_tiny_task: TinyTaskFactory) -> TaskContext:
    return make_tiny_task()[1]
