"""The command line: the only module that wires plugins, plan, runner and store.

Exit codes: 0 success, 1 some cell failed, 2 a usage, suite or plugin error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from unlearnbench.host.registry import KINDS, Kind, Registry, RegistryError
from unlearnbench.specs import UnlearnbenchError

EXIT_OK, EXIT_FAILED_CELLS, EXIT_USAGE = 0, 1, 2
EXECUTOR_NAMES = ("local", "processes", "ray")  # the keys of execution.executors.EXECUTORS
AUTO = "auto"
AUTO_MIN_TASKS = 4
"""``--executor auto`` starts worker processes for at least this many pending
tasks (fewer do not pay for the workers' start-up and the original's reload)."""
AUTO_MIN_STUDIES = 2
AUTO_MIN_TRIALS = 40
"""``tune --executor auto`` starts worker processes for at least this many pending
studies (a study's trials run one after another, so one study cannot use two
workers) and trials (two studies at the default 20 trials; fewer trials do not pay
for the workers' start-up: 9 studies x 4 small trials on MNIST-1D took 41.5 s on
2 workers, 29.2 s in this process, on a busy 2-core machine)."""
DEFAULT_OUT = Path("unlearnbench-results")
KIND_ARGS: dict[str, Kind] = {
    "datasets": "dataset",
    "architectures": "architecture",
    "methods": "method",
    "evaluators": "evaluator",
}


class UsageError(UnlearnbenchError):
    """A mistake the user can fix: bad suite, unknown name, bad option."""


def default_suite_path() -> Path:
    return Path(str(resources.files("unlearnbench") / "suites" / "default.toml"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unlearnbench", description="Benchmark machine-unlearning methods."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a suite (default: the built-in default suite)")
    run.add_argument("suite", nargs="?", type=Path, help="suite file (TOML)")
    run.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output folder (default: {DEFAULT_OUT}/<suite name>)",
    )
    run.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument(
        "--check",
        action="store_true",
        help="validate the suite and print the plan size; train nothing",
    )
    _add_executor_args(run, "cells", f"at least {AUTO_MIN_TASKS} tasks are pending")
    run.add_argument(
        "--allow-mixed-threads",
        action="store_true",
        help="resume a CPU run whose finished cells used another torch thread count "
        "(refused by default: CPU results depend on it)",
    )
    run.add_argument(
        "--allow-mixed-devices",
        action="store_true",
        help="resume a run whose finished cells ran on another device type (cpu, cuda; "
        "refused by default: results differ across them; the board then shows each "
        "row's device)",
    )
    run.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop a cell (method + evaluators) after SECONDS and record it as 'timeout'",
    )
    tune = sub.add_parser(
        "tune", help="tune each method's tunable parameters on one budget ([tuning] table)"
    )
    tune.add_argument("suite", type=Path, help="suite file (TOML) with a [tuning] table")
    tune.add_argument(
        "--out", type=Path, default=None, help=f"results folder (default: {DEFAULT_OUT}/<suite>)"
    )
    tune.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    tune.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    tune.add_argument(
        "--trial-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fail a trial (it still counts) that runs past SECONDS; the study goes on",
    )
    _add_executor_args(
        tune,
        "trials",
        f"at least {AUTO_MIN_STUDIES} studies and {AUTO_MIN_TRIALS} trials are pending",
    )
    lst = sub.add_parser("list", help="list registered plugins' datasets, methods, ...")
    lst.add_argument("kind", nargs="?", choices=sorted(KIND_ARGS), help="what to list")
    sub.add_parser("plugins", help="list plugins with their distribution and version")
    show = sub.add_parser("show", help="a plugin's parameters and documentation")
    show.add_argument("name")
    board = sub.add_parser("leaderboard", help="print the leaderboard of a results folder")
    board.add_argument("dir", type=Path)
    board.add_argument("--format", choices=["md", "csv", "json", "html"], default="md")
    board.add_argument(
        "--reference", default=None, help="reference method (default: the suite's, else retrain)"
    )
    board.add_argument(
        "--original", default=None, help="do-nothing method's label (default: original)"
    )
    board.add_argument(
        "--no-plots", action="store_true", help="md: do not (re)write DIR/plots/*.png"
    )
    board.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PNG",
        help="also write a PNG of the HTML page's top (headline tables, trade-off plot), "
        "taken by headless Chromium",
    )
    board.add_argument(
        "--write",
        action="store_true",
        help="write DIR/leaderboard.{md,csv,json,html} and DIR/plots/ as `run` does "
        "(re-render a results folder after a change of the reports) instead of printing",
    )
    return parser


def _add_executor_args(parser: argparse.ArgumentParser, what: str, enough: str) -> None:
    """The executor options ``run`` and ``tune`` share (``what`` runs: cells or trials;
    ``enough``: when ``auto`` picks worker processes)."""
    parser.add_argument(
        "--executor",
        choices=(AUTO, *EXECUTOR_NAMES),
        default=AUTO,
        help=f"where {what} run: auto (default: worker processes when more than one core "
        f"or GPU and {enough}, else this process; one torch thread per worker on the CPU "
        "unless --threads-per-worker), local (this process), processes (long-lived worker "
        "processes) or ray",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes executor: worker count (default: one per GPU, else one per core)",
    )
    parser.add_argument(
        "--threads-per-worker",
        type=int,
        default=0,
        help="torch threads per worker, Ray task or (local) this process (default: cores / "
        "workers; never more). CPU results are identical across executors at equal threads",
    )
    parser.add_argument("--address", default=None, help="ray executor: cluster address")
    parser.add_argument(
        "--gpus-per-task",
        type=float,
        default=None,
        help="ray executor: GPUs per task, fractional to share a GPU (default: 1 on CUDA)",
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"unlearnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _registry() -> tuple[Registry, list[Any]]:
    from unlearnbench.host.manager import PluginLoadError, load_registry

    try:
        return load_registry()
    except (PluginLoadError, RegistryError) as exc:
        raise UsageError(str(exc)) from None


def cmd_run(args: argparse.Namespace) -> int:
    """Validate everything (suite, options, output folder, an existing store), then run.

    Nothing is written before every check has passed, and ``--check`` writes
    nothing at all: no output folder, no store, no cache. The checks and the
    run are :func:`unlearnbench.execution.run.prepare_run` and
    :meth:`~unlearnbench.execution.run.PreparedRun.run`, the path
    :func:`~unlearnbench.execution.run_suite` takes too.
    """
    from unlearnbench.execution.executors import ExecutorError
    from unlearnbench.execution.run import prepare_run
    from unlearnbench.execution.store import no_space
    from unlearnbench.execution.suite import SuiteError
    from unlearnbench.reports.text import plain_text, terminal_summary

    _check_run_options(args)
    registry, _ = _registry()
    suite_path = args.suite or default_suite_path()
    if suite_path.is_dir():
        raise UsageError(f"{suite_path} is a folder; give the suite file (a .toml file)")
    suite, out = _suite_and_out(suite_path, args)
    executor, threads = args.executor, args.threads_per_worker
    if executor == AUTO:
        executor, threads, why = _auto_executor(suite, registry, out, args)
        print(f"executor: {executor} ({why})", file=sys.stderr)
    args.executor = executor  # what the messages below and the resume check name
    try:
        prepared = prepare_run(
            suite,
            out,
            registry,
            **_executor_options(args, executor, threads),
            cell_timeout=args.cell_timeout,
        )
    except (SuiteError, ValueError) as exc:
        raise UsageError(f"{suite_path}: {exc}") from None
    plan, device, threads = prepared.plan, prepared.device, prepared.executor.threads
    store_path = prepared.store_path
    if args.check:  # read an existing store (never create one) for the same checks
        if store_path.exists():
            with _open_store(store_path, read_only=True) as store:
                _check_resume(store, plan, device, threads, args)
    else:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"output folder {out} cannot be created: {exc}") from None
        store = _open_store(store_path)
        try:
            _check_resume(store, plan, device, threads, args)
        except BaseException:
            store.close()
            raise
    print(
        f"suite {suite.name!r}: {len(plan.tasks)} tasks, {plan.size} cells on {device} "
        f"({executor} executor); results in {out}",
        file=sys.stderr,
    )
    if args.check:
        return EXIT_OK
    start = time.perf_counter()
    full: BaseException | None = None  # a full disk: reported once, with the way out
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
            board = _write_outputs(out, store, suite, plan)
        finally:
            store.close()
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
    print(terminal_summary(board))
    print(f"leaderboard: {(out / 'leaderboard.html').resolve()} (also .md, .csv, .json)")
    return EXIT_FAILED_CELLS if summary.failed or summary.timeout else EXIT_OK


def _write_outputs(out: Path, store: Any, suite: Any, plan: Any) -> Any:
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


def _suite_and_out(suite_path: Path, args: argparse.Namespace) -> tuple[Any, Path]:
    """The suite file, loaded (a bad or unreadable one is a usage error naming it), and
    the output folder: ``--out``, else ``DEFAULT_OUT/<suite name>`` (checked, not made)."""
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
    _check_out_folder(out, given=args.out is not None)
    return suite, out


def _executor_options(args: argparse.Namespace, executor: str, threads: int) -> dict[str, Any]:
    """What ``prepare_run`` / ``prepare_tuning`` take from the shared executor options."""
    from unlearnbench.host.manager import RegistryFactory

    return {
        "registry_factory": RegistryFactory(),
        "executor": executor,
        "device": args.device,
        "threads": threads,
        "workers": args.workers,
        "address": args.address,
        "gpus_per_task": args.gpus_per_task,
    }


def _auto_executor(
    suite: Any, registry: Registry, out: Path, args: argparse.Namespace
) -> tuple[str, int, str]:
    """(executor, torch threads, why) for ``run --executor auto``.

    Worker processes pay when there is more than one core (more than one GPU on
    CUDA) and at least ``AUTO_MIN_TASKS`` tasks still have cells to run (a task's
    cells share its trained original, so tasks are what workers split); this
    process otherwise. See :func:`_auto_choice`.
    """
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.store import STORE_FILE
    from unlearnbench.execution.suite import SuiteError

    try:
        plan = build_plan(suite, registry)
    except (SuiteError, ValueError) as exc:
        raise UsageError(f"{args.suite or default_suite_path()}: {exc}") from None
    finished: set[str] = set()
    if (out / STORE_FILE).exists():
        with _open_store(out / STORE_FILE, read_only=True) as store:
            finished = store.finished()
    pending = sum(1 for task in plan.tasks if any(c.cell_id not in finished for c in task.cells))
    return _auto_choice(pending >= AUTO_MIN_TASKS, f"{pending} tasks pending", "cell", args)


def _auto_tune_executor(
    suite: Any, registry: Registry, out: Path, args: argparse.Namespace
) -> tuple[str, int, str]:
    """(executor, torch threads, why) for ``tune --executor auto``: worker processes
    when more than one core (GPU) and at least ``AUTO_MIN_STUDIES`` studies with
    ``AUTO_MIN_TRIALS`` trials are pending (a study's trials run one after another,
    so studies are what workers split). Raises :class:`SuiteError` on a bad suite."""
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.run import tuning_suite
    from unlearnbench.execution.tuning import pending_studies

    plan = build_plan(tuning_suite(suite), registry)
    studies, trials = pending_studies(plan, registry, out)
    enough = studies >= AUTO_MIN_STUDIES and trials >= AUTO_MIN_TRIALS
    pending = f"{studies} studies with {trials} trials pending"
    return _auto_choice(enough, pending, "trial", args)


def _auto_choice(
    enough: bool, pending: str, unit: str, args: argparse.Namespace
) -> tuple[str, int, str]:
    """Processes when ``enough`` work is pending on more than one core (GPU), else
    this process. ``--workers`` asks for processes. On the CPU both choices use one
    torch thread per ``unit`` (a cell, a trial) unless ``--threads-per-worker`` says otherwise
    (small models run faster at one thread, and the same thread count either way
    keeps results identical and a resumed run's thread check stable).
    """
    import torch

    from unlearnbench.execution.devices import available_cores, resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        raise UsageError(f"{args.suite or default_suite_path()}: {exc}") from None
    threads = args.threads_per_worker or (1 if device.type == "cpu" else 0)
    if device.type == "cuda":
        units, what = torch.cuda.device_count(), "GPUs"
    else:
        units, what = available_cores(), "cores"
    if args.workers:
        return "processes", threads, "--workers given"
    per = f"; {threads} torch thread(s) per {unit}" if threads else ""
    if units > 1 and enough:
        return "processes", threads, f"{pending} on {units} {what}{per}"
    why = f"{pending} on {units} {what}: worker processes would not pay{per}"
    return "local", threads, why


def _check_out_folder(out: Path, *, given: bool) -> None:
    """The output folder must be a folder, or creatable as one (checked, not created)."""
    what = "--out" if given else "the output folder"
    if out.exists() and not out.is_dir():
        raise UsageError(f"{what} {out} is a file, not a folder; give a folder for the results")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{what} {out} cannot be created: {parent} is a file")
            break


def _open_store(path: Path, *, read_only: bool = False) -> Any:
    """Open a results store; a damaged or foreign file is a usage error (exit 2)."""
    from unlearnbench.execution.store import ResultStore, StoreError

    try:
        return ResultStore(path, read_only=read_only)
    except StoreError as exc:
        raise UsageError(str(exc)) from None


def _check_resume(
    store: Any, plan: Any, device: Any, threads: int, args: argparse.Namespace
) -> None:
    """Refuse to add cells computed on another device type, or CPU cells computed
    with another torch thread count, than the finished cells of this plan: results
    depend on both, and a leaderboard that mixes them would not be one computation.
    (Nothing pending: nothing to mix.)"""
    cells = {cell.cell_id for _, cell in plan.cells()}
    if not cells - store.finished():
        return
    _check_resume_device(store, cells, device, args)
    if args.allow_mixed_threads or device.type != "cpu":
        return
    counts = store.thread_counts(cells, "cpu")
    if not counts or set(counts) == {threads}:
        return
    recorded = ", ".join(f"{n} with {t}" for t, n in sorted(counts.items()))
    usual = max(counts, key=lambda t: counts[t])
    raise UsageError(
        f"{store.path} holds finished cells of this suite computed on the CPU with another "
        f"torch thread count ({recorded} threads); this run would use {threads} "
        f"({args.executor} executor). CPU results depend on the thread count, so resuming "
        f"would mix two computations in one leaderboard. Resume with --threads-per-worker "
        f"{usual} (with --executor processes, also --workers so that workers x threads fit "
        f"the cores), run into another --out, or pass --allow-mixed-threads to mix them."
    )


def _check_resume_device(
    store: Any, cells: set[str], device: Any, args: argparse.Namespace
) -> None:
    """Refuse to resume cells recorded on another device type (``cuda`` vs ``cpu``): the
    cell id has no device, so they would mix silently on one board."""
    if args.allow_mixed_devices:
        return
    counts = store.device_types(cells)
    other = {d: n for d, n in counts.items() if d != device.type}
    if not other:
        return
    recorded = ", ".join(f"{n} on {d}" for d, n in sorted(other.items()))
    usual = max(other, key=lambda d: other[d])
    raise UsageError(
        f"{store.path} holds finished cells of this suite computed on another device type "
        f"({recorded}); this run would use {device.type}. Results differ across device "
        f"types, so resuming would mix two computations in one leaderboard. Resume with "
        f"--device {usual}, run into another --out, or pass --allow-mixed-devices to mix "
        f"them (the board then shows each row's device)."
    )


def _check_run_options(args: argparse.Namespace) -> None:
    """Options of ``run`` that cannot work, reported before anything is loaded."""
    _check_executor_options(args)
    if args.cell_timeout is not None and not args.cell_timeout > 0:
        raise UsageError(
            f"--cell-timeout must be a positive number of seconds, got {args.cell_timeout}"
        )


def _check_executor_options(args: argparse.Namespace) -> None:
    """Executor options (``run``'s and ``tune``'s) that cannot work."""
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


def summary(description: str, width: int = 90) -> str:
    """The first sentence of a plugin's description, on one line, without RST markup."""
    paragraph = " ".join((description or "").strip().split("\n\n")[0].split())
    sentence = paragraph.replace("``", "").split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    registry, _ = _registry()
    kinds = [KIND_ARGS[args.kind]] if args.kind else list(KINDS)
    for kind in kinds:
        print(f"{kind}s:")
        for entry in registry.entries(kind):
            print(
                f"  {entry.spec.name:<18} {summary(entry.spec.description)}  "
                f"[{entry.origin.plugin}]"
            )
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    _, infos = _registry()
    for info in infos:
        print(f"{info.name:<16} {info.distribution} {info.version}  ({info.module})")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from unlearnbench.host.registry import unknown_name_message

    registry, _ = _registry()
    found = [
        (kind, registry.entry(kind, args.name))
        for kind in KINDS
        if args.name in registry.tables[kind]
    ]
    if not found:
        everything = [n for kind in KINDS for n in registry.names(kind)]
        raise UsageError(unknown_name_message("plugin", args.name, everything))
    for kind, entry in found:
        spec = entry.spec
        print(f"{spec.name} ({kind}, from {entry.origin})")
        print()
        print((spec.description or "(no description)").strip())
        if spec.params:
            print("\nparameters:")
            for p in spec.params:
                choices = f" one of {list(p.choices)}" if p.choices else ""
                bounds = f" in {p.bounds_text}" if p.bounds_text else ""
                print(
                    f"  {p.name} ({p.kind.__name__}, default {p.default!r}){choices}{bounds}: "
                    f"{p.help}"
                )
        metrics = getattr(spec, "metrics", ())
        if metrics:
            print("\nmetrics:")
            for m in metrics:
                print(f"  {m.name} ({m.direction} is better, {m.unit or 'no unit'}): {m.help}")
        print()
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print one format; md also writes DIR/plots/*.png, which its links point at.
    The suite's ``[[plots]]``, kept in DIR/plots.json by ``run``, are drawn too."""
    from unlearnbench.execution.store import STORE_FILE
    from unlearnbench.host.registry import unknown_name_message
    from unlearnbench.reports.board import (
        ORIGINAL,
        build_leaderboard,
        declarations,
        infer_reference,
    )
    from unlearnbench.reports.devices import by_device
    from unlearnbench.reports.plot_requests import PlotError, load_plot_requests
    from unlearnbench.reports.write import draw_plots, render, write_board, write_plots

    path = args.dir / STORE_FILE
    if args.dir.is_file():
        hint = f"; give its folder: {args.dir.parent}" if args.dir.name == STORE_FILE else ""
        raise UsageError(f"{args.dir} is a file, not a results folder{hint}")
    if not args.dir.exists():
        raise UsageError(f"results folder {args.dir} does not exist")
    if not path.exists():
        raise UsageError(
            f"{args.dir} holds no {STORE_FILE}, so there are no results to show; "
            f"run a suite with --out {args.dir} first"
        )
    try:
        sweeps = load_plot_requests(args.dir)
    except PlotError as exc:
        raise UsageError(f"{args.dir}: {exc}") from None
    with _open_store(path, read_only=True) as store:  # boards render from read-only media
        methods = sorted({cell["method"] for cell in store.cells()})
        for option, label in (("--reference", args.reference), ("--original", args.original)):
            if label is not None and label not in methods:
                if not methods:
                    raise UsageError(f"{option} {label!r}: {path} holds no results yet")
                message = unknown_name_message("method", label, methods)
                raise UsageError(f"{option}: {message} (the methods in {path})")
        reference = args.reference or infer_reference(store)
        title = f"Leaderboard: {args.dir.name}"

        def declared() -> Any:  # read only for a store older than the Avg. Gap declarations
            return declarations(entry.spec for entry in _registry()[0].entries("evaluator"))

        if args.write:
            write_board(
                args.dir,
                store,
                title,
                reference=reference,
                original=args.original or ORIGINAL,
                sweeps=sweeps,
                declared=declared,
            )
            print(
                f"leaderboard: {(args.dir / 'leaderboard.html').resolve()} (also .md, .csv, .json)"
            )
            return EXIT_OK
        board = build_leaderboard(
            by_device(store), reference, args.original or ORIGINAL, declared=declared
        )
    plots, images = None, None
    if args.format == "md" and not args.no_plots:
        try:
            plots, images = write_plots(board, args.dir, sweeps)
        except OSError as exc:  # a read-only or full medium: the tables still print
            print(
                f"unlearnbench: warning: plots not written to {args.dir / 'plots'} "
                f"({exc.strerror or exc}); pass --no-plots to skip them",
                file=sys.stderr,
            )
    elif args.format == "html" or args.screenshot is not None:
        images = draw_plots(board, sweeps)  # drawn once, warnings once
    print(render(board, args.format, title, plots=plots, images=images, sweeps=sweeps))
    if args.screenshot is not None:
        page = render(board, "html", title, images=images, sweeps=sweeps)
        _screenshot(page, args.screenshot)
    return EXIT_OK


def _screenshot(page: str, target: Path) -> None:
    """Write ``page`` (HTML) to a temporary file and a PNG of it to ``target``."""
    import subprocess
    import tempfile

    from unlearnbench.reports.screenshot import ScreenshotError, screenshot

    with tempfile.TemporaryDirectory(prefix="unlearnbench-page-") as folder:
        html = Path(folder) / "leaderboard.html"
        html.write_text(page, encoding="utf-8")
        try:
            screenshot(html, target)
        except (ScreenshotError, OSError, subprocess.SubprocessError) as exc:
            raise UsageError(f"--screenshot {target}: {exc}") from None
    print(f"screenshot: {target}", file=sys.stderr)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run (or resume) the suite's tuning studies into ``<out>/tuning.sqlite``, the
    trials on the chosen executor; every check (suite, space, budget, request kinds,
    executor options) passes before anything trains."""
    from unlearnbench.execution import tuning
    from unlearnbench.execution.executors import ExecutorError
    from unlearnbench.execution.run import prepare_tuning
    from unlearnbench.execution.suite import SuiteError

    _check_executor_options(args)
    if args.trial_timeout is not None and not args.trial_timeout > 0:
        raise UsageError(
            f"--trial-timeout must be a positive number of seconds, got {args.trial_timeout}"
        )
    registry, _ = _registry()
    suite, out = _suite_and_out(args.suite, args)
    try:
        executor, threads = args.executor, args.threads_per_worker
        if executor == AUTO:
            executor, threads, why = _auto_tune_executor(suite, registry, out, args)
            print(f"executor: {executor} ({why})", file=sys.stderr)
        prepared = prepare_tuning(
            suite,
            out,
            registry,
            **_executor_options(args, executor, threads),
            cell_timeout=args.trial_timeout,
        )
    except (SuiteError, ValueError) as exc:
        raise UsageError(f"{args.suite}: {exc}") from None
    assert prepared.suite.tuning is not None
    print(
        f"tuning into {out / tuning.STORAGE_FILE} on {prepared.device} ({executor} executor, "
        f"{prepared.executor.threads} torch thread(s) per trial)",
        file=sys.stderr,
    )
    try:
        results = tuning.run_tuning(prepared, registry, progress=not args.no_progress)
    except ExecutorError as exc:  # workers that cannot start: a plugin or set-up problem
        raise UsageError(f"the {executor} executor failed: {exc}") from None
    except tuning.TuningError as exc:
        print(f"unlearnbench: error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CELLS
    text = tuning.summary_markdown(results, prepared.suite.tuning)
    (out / "tuning.md").write_text(text, "utf-8")
    (out / "tuning.json").write_text(tuning.dumps(results), "utf-8")
    print(text)
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "tune": cmd_tune,
    "list": cmd_list,
    "plugins": cmd_plugins,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
}

if __name__ == "__main__":
    raise SystemExit(main())
