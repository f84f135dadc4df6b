"""``unlearnbench run``: check, run a suite into a results folder, write its boards.

The checks and the run are the execution core's
(:func:`unlearnbench.execution.run.prepare_run`, ``PreparedRun.check_resume``
and ``PreparedRun.run``, the path ``run_suite`` takes too); this module prints
between them and writes the leaderboards after.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from unlearnbench.cli.common import (
    EXIT_FAILED_CELLS,
    EXIT_OK,
    UsageError,
    check_executor_options,
    default_suite_path,
    executor_options,
    load_plugins,
    open_store,
    suite_and_out,
    usage_errors,
)


def cmd_run(args: argparse.Namespace) -> int:
    """Validate everything (suite, options, output folder, an existing store), then run.

    Nothing is written before every check has passed, and ``--check`` writes
    nothing at all: no output folder, no store, no cache.
    """
    from unlearnbench.execution.executor_choice import AUTO, choose_run_executor
    from unlearnbench.execution.executors import ExecutorError
    from unlearnbench.execution.run import RunRefused, prepare_run
    from unlearnbench.execution.store import no_space

    check_run_options(args)
    registry, _ = load_plugins(args)
    suite_path = args.suite or default_suite_path()
    if suite_path.is_dir():
        raise UsageError(f"{suite_path} is a folder; give the suite file (a .toml file)")
    suite, out = suite_and_out(suite_path, args)
    suite = _said_about(suite, registry)
    plots = _plot_choice(args.plots, suite, default_suite=args.suite is None)
    executor, threads = args.executor, args.threads_per_worker
    with usage_errors(suite_path):
        if executor == AUTO:  # chosen (and said) before the data sets load
            choice = choose_run_executor(
                suite, registry, out, device=args.device, workers=args.workers, threads=threads
            )
            executor, threads = choice.executor, choice.threads
            print(f"executor: {executor} ({choice.why})", file=sys.stderr)
        prepared = prepare_run(
            suite,
            out,
            registry,
            **executor_options(args, executor, threads),
            cell_timeout=args.cell_timeout,
            allow_mixed_threads=args.allow_mixed_threads,
            allow_mixed_devices=args.allow_mixed_devices,
            allow_mixed_cpus=args.allow_mixed_cpus,
        )
    plan, device, store_path = prepared.plan, prepared.device, prepared.store_path
    try:
        if args.check:  # read an existing store (never create one) for the same checks
            if store_path.exists():
                with open_store(store_path, read_only=True) as store:
                    prepared.check_resume(store)
        else:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"output folder {out} cannot be created: {exc}") from None
            store = open_store(store_path)
            try:
                prepared.check_resume(store)
            except BaseException:
                store.close()
                raise
    except RunRefused as exc:
        raise UsageError(str(exc)) from None
    print(
        f"suite {suite.name!r}: {len(plan.tasks)} tasks, {plan.size} cells on {device} "
        f"({executor} executor); results in {out}",
        file=sys.stderr,
    )
    if args.check:
        return EXIT_OK
    start = time.perf_counter()
    full: BaseException | None = None  # a full disk: reported once, with the way out
    if executor != "local":  # cells run elsewhere: this process only waits for records
        import_reports_meanwhile(draws_plots=plots != frozenset())
    try:
        summary = prepared.run(store, progress=not args.no_progress)
    except ExecutorError as exc:  # workers that cannot start: a plugin or set-up problem
        raise UsageError(f"the {executor} executor failed: {exc}") from None
    except Exception as exc:
        if not no_space(exc):
            raise
        full = exc
    finally:
        try:
            board = _write_outputs(out, store, suite, plan, plots)
        finally:
            store.close()
    from unlearnbench.reports.summary import terminal_summary
    from unlearnbench.reports.text import plain_text

    if full is not None or board is None:
        print(f"unlearnbench: error: {_no_space_message(full, out)}", file=sys.stderr)
        return EXIT_FAILED_CELLS
    print(
        f"{summary.ok} cells done, {summary.skipped} already done, {summary.failed} failed, "
        f"{summary.timeout} timed out in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )
    for failure in summary.failures:
        print(f"  failed: {plain_text(failure)}", file=sys.stderr)
    if any("No space left on device" in failure for failure in summary.failures):
        print(f"unlearnbench: {_no_space_message(None, out)}", file=sys.stderr)
    print(terminal_summary(board, wide=args.wide))
    print(f"leaderboard: {(out / 'leaderboard.html').resolve()} (also .md, .csv, .json)")
    return EXIT_FAILED_CELLS if summary.failed or summary.timeout else EXIT_OK


REPORT_MODULES = ("unlearnbench.reports.summary", "unlearnbench.reports.write")
PLOT_MODULES = ("unlearnbench.reports.sweeps",)  # matplotlib


def import_reports_meanwhile(*, draws_plots: bool) -> None:
    """Import what the leaderboard needs (pandas, scipy, matplotlib: about 1.3 s) in a
    background thread while the cells run, instead of before the run (the parent is
    idle while workers compute) or after it, when every core waits for the board.
    An import that fails here fails again, and is reported, where the board needs it.
    Only while the cells run in other processes: two threads importing overlapping
    modules (a local cell importing scikit-learn, this thread scipy) can meet in
    importlib's deadlock detection, which would fail the cell."""

    def load() -> None:
        for name in (*REPORT_MODULES, *(PLOT_MODULES if draws_plots else ())):
            try:
                importlib.import_module(name)
            except Exception:  # raised again by the import that needs it
                return

    threading.Thread(target=load, name="unlearnbench-import-reports", daemon=True).start()


def _said_about(suite: Any, registry: Any) -> Any:
    """The suite with its anchors added, each addition and a low seed count said."""
    from unlearnbench.cli.suite_notes import seed_warning, with_anchors

    suite, notes = with_anchors(suite, registry)
    warning = seed_warning(suite)
    for line in [*notes, *([warning] if warning else [])]:
        print(f"unlearnbench: {line}", file=sys.stderr)
    return suite


def check_run_options(args: argparse.Namespace) -> None:
    """Options of ``run`` that cannot work, reported before anything is loaded."""
    check_executor_options(args)
    if args.cell_timeout is not None and not args.cell_timeout > 0:
        raise UsageError(
            f"--cell-timeout must be a positive number of seconds, got {args.cell_timeout}"
        )


def _plot_choice(choice: str | None, suite: Any, *, default_suite: bool) -> Any:
    """``--plots`` as the plot names to draw (``None``: all), checked before the run."""
    from unlearnbench.reports.plot_requests import (
        ALL_PLOTS,
        DEFAULT_SUITE_PLOTS,
        choose_plots,
        parse_plots,
    )

    if choice is None:
        choice = DEFAULT_SUITE_PLOTS if default_suite else ALL_PLOTS
    try:
        return choose_plots(choice, parse_plots(suite.plots))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _write_outputs(out: Path, store: Any, suite: Any, plan: Any, plots: Any = None) -> Any:
    """Write the leaderboards and plot specs of a run; ``None`` when the disk is full."""
    from unlearnbench.execution.store import no_space
    from unlearnbench.reports.plot_requests import parse_plots, save_plot_requests
    from unlearnbench.reports.write import write_board

    try:
        sweeps = parse_plots(suite.plots)  # checked when the suite was read
        save_plot_requests(out, sweeps)  # so that `leaderboard DIR` redraws them
        return write_board(
            out,
            store,
            title=f"Leaderboard: {suite.name}",
            cells={cell.cell_id for _, cell in plan.cells()},
            sweeps=sweeps,
            plots=plots,
        )
    except OSError as exc:
        if not no_space(exc):
            raise
        return None


def _no_space_message(exc: BaseException | None, out: Path) -> str:
    """What a full disk means for a run, and the way out."""
    from unlearnbench.execution.store import NoSpaceError

    if isinstance(exc, NoSpaceError):
        return str(exc)
    cause = f" ({exc})" if exc is not None else ""
    return (
        f"No space left on device{cause}: the run into {out} stopped. Every cell recorded "
        f"before is intact: free some space (or delete the artifact cache, {out / 'cache'}, "
        "which is rebuilt) and run the same command again; it resumes where it stopped"
    )
