"""The command line's arguments: one parser, a sub-parser per command.

Nothing here imports torch: ``unlearnbench list`` and ``--help`` stay fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from unlearnbench.cli.common import DEFAULT_OUT
from unlearnbench.execution.executor_choice import (
    AUTO,
    AUTO_MIN_STUDIES,
    AUTO_MIN_TASKS,
    AUTO_MIN_TRIALS,
)
from unlearnbench.host.registry import Kind

EXECUTOR_NAMES = ("local", "processes", "ray")  # the keys of execution.executors.EXECUTORS
KIND_ARGS: dict[str, Kind] = {
    "datasets": "dataset",
    "architectures": "architecture",
    "methods": "method",
    "evaluators": "evaluator",
}


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
        "--wide",
        action="store_true",
        help="end with every headline column (attack gaps, consistency, storage), "
        "however wide; default: the headline measures, fitted to 120 columns",
    )
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
        "--allow-mixed-cpus",
        action="store_true",
        help="resume a CPU run whose finished cells ran with other CPU kernels "
        "(provenance cpu_capability: AVX2, AVX512, ...; refused by default: the trained "
        "models themselves differ across them)",
    )
    run.add_argument(
        "--plots",
        default=None,
        metavar="all|none|NAMES",
        help="plots drawn after the run: all, none or comma-separated names (tradeoff, "
        "residual_memory, roc, the suite's [[plots]]); default: all, the trade-off plot "
        "only for the built-in default suite",
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
    for parser_ in (run, tune):
        _add_plugin_arg(parser_)
    lst = sub.add_parser("list", help="list registered plugins' datasets, methods, ...")
    lst.add_argument("kind", nargs="?", choices=sorted(KIND_ARGS), help="what to list")
    _add_plugin_arg(lst)
    sub.add_parser("plugins", help="list plugins with their distribution and version")
    show = sub.add_parser("show", help="a plugin's parameters and documentation")
    show.add_argument("name")
    _add_plugin_arg(show)
    board = sub.add_parser("leaderboard", help="print the leaderboard of a results folder")
    board.add_argument("dir", type=Path)
    board.add_argument(
        "--format",
        choices=["md", "csv", "json", "html"],
        default=None,
        help="what to print (default: md; with --screenshot alone, nothing)",
    )
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
        "--rank-blocks",
        choices=("seeds", "groups"),
        default="seeds",
        help="the across-task ranking's blocks: every seed of every group (default; an "
        "independent run of every method) or every group's mean over seeds",
    )
    board.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PNG",
        help="write a PNG of the HTML page's top (headline tables, trade-off plot), "
        "taken by headless Chromium; prints no board (unless --format) and leaves "
        "DIR/plots/ as it is",
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


def _add_plugin_arg(parser: argparse.ArgumentParser) -> None:
    """``--plugin module:object``, repeatable: registered like UNLEARNBENCH_PLUGINS's."""
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE:OBJECT",
        help="also register this plugin (an importable module, or module:object; a class "
        "is instantiated), as UNLEARNBENCH_PLUGINS does; repeatable",
    )
