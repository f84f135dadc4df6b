"""What the commands share: exit codes, the usage error, the registry, the store.

The rules of a run live in the execution core; here their errors become a
:class:`UsageError` (one line, exit 2) naming what the user gave.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from unlearnbench.host.registry import Registry, RegistryError
from unlearnbench.specs import UnlearnbenchError

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2
DEFAULT_OUT = Path("unlearnbench-results")


class UsageError(UnlearnbenchError):
    """A mistake the user can fix: bad suite, unknown name, bad option."""


def default_suite_path() -> Path:
    return Path(str(resources.files("unlearnbench") / "suites" / "default.toml"))


def load_plugins(args: argparse.Namespace) -> tuple[Registry, list[Any]]:
    """The registry and plugin list, with the ``--plugin`` objects (if the command
    has the option) registered after those of UNLEARNBENCH_PLUGINS."""
    from unlearnbench.host.manager import PluginLoadError, load_registry

    try:
        return load_registry(option_plugins=getattr(args, "plugin", None) or ())
    except (PluginLoadError, RegistryError) as exc:
        raise UsageError(str(exc)) from None


@contextmanager
def usage_errors(source: Path) -> Iterator[None]:
    """The execution core's refusals as :class:`UsageError`: a bad suite, device or
    option value (prefixed with ``source``, the suite file), a refused run (an
    output folder that cannot be one, a store it would mix with), a damaged store."""
    from unlearnbench.execution.run import RunRefused
    from unlearnbench.execution.store import StoreError
    from unlearnbench.execution.suite import SuiteError

    try:
        yield
    except (SuiteError, ValueError) as exc:
        raise UsageError(f"{source}: {exc}") from None
    except (RunRefused, StoreError) as exc:
        raise UsageError(str(exc)) from None


def open_store(path: Path, *, read_only: bool = False) -> Any:
    """Open a results store; a damaged or foreign file is a usage error (exit 2)."""
    from unlearnbench.execution.store import ResultStore, StoreError

    try:
        return ResultStore(path, read_only=read_only)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def suite_and_out(suite_path: Path, args: argparse.Namespace) -> tuple[Any, Path]:
    """The suite file, loaded (a bad or unreadable one is a usage error naming it), and
    the output folder: ``--out``, else ``DEFAULT_OUT/<suite name>`` (checked, not made)."""
    from unlearnbench.execution.run import RunRefused, check_out_folder
    from unlearnbench.execution.suite import SuiteError, load_suite
    from unlearnbench.reports.plot_requests import PlotError, parse_plots

    try:
        suite = load_suite(suite_path)
        parse_plots(suite.plots)  # [[plots]] are the reports': refused before anything runs
    except (SuiteError, PlotError) as exc:
        raise UsageError(f"{suite_path}: {exc}") from None
    except OSError as exc:  # unreadable: permissions, a special file
        raise UsageError(f"{suite_path} cannot be read: {exc.strerror or exc}") from None
    out = args.out or DEFAULT_OUT / suite.name
    try:
        check_out_folder(out, "--out" if args.out is not None else "the output folder")
    except RunRefused as exc:
        raise UsageError(str(exc)) from None
    return suite, out


def executor_options(args: argparse.Namespace, executor: str, threads: int) -> dict[str, Any]:
    """What ``prepare_run`` / ``prepare_tuning`` take from the shared executor options."""
    from unlearnbench.host.manager import RegistryFactory

    return {
        "registry_factory": RegistryFactory(option_plugins=tuple(args.plugin)),
        "executor": executor,
        "device": args.device,
        "threads": threads,
        "workers": args.workers,
        "address": args.address,
        "gpus_per_task": args.gpus_per_task,
    }


def check_executor_options(args: argparse.Namespace) -> None:
    """Executor options (``run``'s and ``tune``'s) that cannot work."""
    from unlearnbench.execution.executor_choice import AUTO

    if args.workers < 0:
        raise UsageError(f"--workers must be >= 0 (0 = automatic), got {args.workers}")
    if args.threads_per_worker < 0:
        raise UsageError(f"--threads-per-worker must be >= 0, got {args.threads_per_worker}")
    if args.gpus_per_task is not None and args.gpus_per_task < 0:
        raise UsageError(f"--gpus-per-task must be >= 0, got {args.gpus_per_task}")
    if args.executor != "ray" and (args.address or args.gpus_per_task is not None):
        raise UsageError("--address and --gpus-per-task need --executor ray")
    if args.executor not in ("processes", AUTO) and args.workers:
        raise UsageError("--workers needs --executor processes")
    if args.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError(
                "--executor ray needs Ray, an optional extra: pip install 'unlearnbench[ray]'"
            )
