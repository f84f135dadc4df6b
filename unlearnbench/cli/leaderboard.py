"""``unlearnbench leaderboard``: print (or re-write) the boards of a results folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from unlearnbench.cli.common import EXIT_OK, UsageError, load_plugins, open_store


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Print one format; md also writes DIR/plots/*.png, which its links point at.
    The suite's ``[[plots]]``, kept in DIR/plots.json by ``run``, are drawn too.
    ``--screenshot`` alone writes the PNG only: it prints no board and leaves
    DIR/plots/ as it is (with an explicit ``--format`` it prints that format too)."""
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
    with open_store(path, read_only=True) as store:  # boards render from read-only media
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
            return declarations(entry.spec for entry in load_plugins(args)[0].entries("evaluator"))

        if args.write:
            write_board(
                args.dir,
                store,
                title,
                reference=reference,
                original=args.original or ORIGINAL,
                sweeps=sweeps,
                declared=declared,
                rank_blocks=args.rank_blocks,
            )
            print(
                f"leaderboard: {(args.dir / 'leaderboard.html').resolve()} (also .md, .csv, .json)"
            )
            return EXIT_OK
        board = build_leaderboard(
            by_device(store),
            reference,
            args.original or ORIGINAL,
            declared=declared,
            rank_blocks=args.rank_blocks,
        )
    plots, images = None, None
    if args.screenshot is not None and args.format is None:  # the picture only
        images = draw_plots(board, sweeps)
        _screenshot(render(board, "html", title, images=images, sweeps=sweeps), args.screenshot)
        return EXIT_OK
    args.format = args.format or "md"
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
