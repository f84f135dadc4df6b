"""The command line: parses arguments, calls the execution core and the reports, prints.

One module per command group (:mod:`.run`, :mod:`.tune`, :mod:`.plugins`,
:mod:`.leaderboard`); the arguments are :mod:`.parser`'s, what they share
:mod:`.common`'s. The rules of a run (executor choice, resume refusals) are the
execution core's, so ``run_suite`` obeys them too.

Exit codes: 0 success, 1 some cell failed, 2 a usage, suite or plugin error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from unlearnbench._exit import exit_without_teardown
from unlearnbench.cli.common import (
    EXIT_FAILED_CELLS,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    default_suite_path,
)
from unlearnbench.cli.leaderboard import cmd_leaderboard
from unlearnbench.cli.parser import EXECUTOR_NAMES, build_parser
from unlearnbench.cli.plugins import cmd_list, cmd_plugins, cmd_show
from unlearnbench.cli.run import cmd_run
from unlearnbench.cli.tune import cmd_tune

__all__ = [
    "EXECUTOR_NAMES",
    "EXIT_FAILED_CELLS",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "default_suite_path",
    "main",
]

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "tune": cmd_tune,
    "list": cmd_list,
    "plugins": cmd_plugins,
    "show": cmd_show,
    "leaderboard": cmd_leaderboard,
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"unlearnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def console_main() -> None:
    """The ``unlearnbench`` command: :func:`main`, then exit without the interpreter's
    teardown (:func:`unlearnbench._exit.exit_without_teardown`: about 1 s after a run
    had printed its board). An exception leaves as usual, with its traceback."""
    exit_without_teardown(main())
