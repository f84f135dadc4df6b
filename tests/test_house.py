"""The package's layout holds: light public imports, no import cycles, one table
of executors, config values re-exported where plugins always found them."""

from __future__ import annotations

import subprocess
import sys

import pytest

import unlearnbench


def _loaded_after(code: str) -> set[str]:
    """Top modules of interest loaded by ``code`` in a fresh interpreter."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import unlearnbench",
        "from unlearnbench import *",
        "import unlearnbench.task_values",
        "import unlearnbench.hookspecs",
        "import unlearnbench.testing",  # the pytest11 plugin every test session of a user loads
    ],
)
def test_light_imports_load_no_torch_and_no_host(code: str) -> None:
    loaded = _loaded_after(code)
    heavy = {"torch", "unlearnbench.host", "unlearnbench.execution", "unlearnbench.reports"}
    assert not heavy & loaded, f"{code!r} loaded {sorted(heavy & loaded)}"


def test_the_public_api_is_one_list() -> None:
    for name in unlearnbench.__all__:
        assert hasattr(unlearnbench, name), name
    assert {"hookimpl", "MethodSpec", "MethodContext", "UnlearnbenchError"} <= set(
        unlearnbench.__all__
    )


def test_the_testing_plugin_gives_its_checks_on_first_use() -> None:
    import unlearnbench.testing as testing
    from unlearnbench.testing import contracts

    assert testing.check_method_contract is contracts.check_method_contract
    with pytest.raises(AttributeError):
        _ = testing.no_such_check  # type: ignore[attr-defined]


def test_task_reexports_the_task_values_and_the_context() -> None:
    from unlearnbench import specs, task, task_values

    for name in ("ForgetRequest", "SplitSizes", "TrainRecipe", "TaskError", "SPLIT_NAMES"):
        assert getattr(task, name) is getattr(task_values, name)
    assert task.MethodContext is specs.MethodContext


def test_the_cli_offers_exactly_the_executors_in_the_table() -> None:
    from unlearnbench.cli import EXECUTOR_NAMES
    from unlearnbench.execution.executors import EXECUTORS

    assert set(EXECUTOR_NAMES) == set(EXECUTORS)


def test_no_import_cycles() -> None:
    """Runtime imports form no cycle (type-only back-references are allowed)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("unlearnbench", exclude_type_checking_imports=True)
    inside = {m for m in graph.modules if m != "unlearnbench"}
    edges = {m: graph.find_modules_directly_imported_by(m) & inside for m in inside}
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(edges[module]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep] if dep in path else [module, dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = 2

    for module in sorted(inside):
        if module not in state:
            visit(module, [module])


def test_every_error_has_one_base_and_keeps_its_builtin_one() -> None:
    from unlearnbench import ParamError, TaskError, UnlearnbenchError
    from unlearnbench.cli import UsageError
    from unlearnbench.execution.cache import StaleArtifactError
    from unlearnbench.execution.executors import ExecutorError
    from unlearnbench.execution.isolation import TaskDataChanged
    from unlearnbench.execution.run import RunRefused
    from unlearnbench.execution.store import NoSpaceError, StoreError
    from unlearnbench.execution.suite import SuiteError
    from unlearnbench.execution.tuning import TuningError
    from unlearnbench.host.manager import PluginLoadError
    from unlearnbench.host.registry import RegistryError
    from unlearnbench.reports.plot_requests import PlotError
    from unlearnbench.reports.screenshot import ScreenshotError
    from unlearnbench.training import TrainingDiverged

    builtin_bases = {
        ParamError: ValueError,
        TaskError: ValueError,
        SuiteError: ValueError,
        StaleArtifactError: KeyError,
        ExecutorError: RuntimeError,
        TrainingDiverged: RuntimeError,
        StoreError: Exception,
        PluginLoadError: Exception,
        RegistryError: Exception,
        UsageError: Exception,
        RunRefused: Exception,
        PlotError: ValueError,
        TuningError: RuntimeError,
        NoSpaceError: Exception,
        TaskDataChanged: Exception,
        ScreenshotError: RuntimeError,
    }
    for error, base in builtin_bases.items():
        assert issubclass(error, UnlearnbenchError) and issubclass(error, base), error


# Signals that never reach a user: caught inside the package (a cell's time limit is a
# BaseException so that a plugin's ``except Exception`` cannot swallow it).
INTERNAL_SIGNALS = {"_NotArchitecture", "CellTimeout", "WorkCapExceeded", "PlotProblem"}


def test_every_error_a_user_can_see_is_an_unlearnbench_error() -> None:
    """Found by walking the package, so a new error class cannot miss the base."""
    import importlib
    import inspect
    import pkgutil

    from unlearnbench import UnlearnbenchError

    missing = []
    for info in pkgutil.walk_packages(unlearnbench.__path__, "unlearnbench."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and name not in INTERNAL_SIGNALS
                and not issubclass(value, UnlearnbenchError)
            ):
                missing.append(f"{info.name}.{name}")
    assert missing == []
