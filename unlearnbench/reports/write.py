"""Every format of a results folder's leaderboard, written in one call.

:func:`write_leaderboards` is what a run ends with (``leaderboard.md``,
``.csv``, ``.json``, ``.html`` and ``plots/*.png``: the built-in plots, then
the suite's ``[[plots]]``); :func:`render` gives one format as text
(``unlearnbench leaderboard --format``).

Which plots a run draws is
:func:`unlearnbench.reports.plot_requests.choose_plots`'s (``run --plots``): drawing
is most of the time a board takes, and the default suite's run draws only the
trade-off plot (:data:`DEFAULT_SUITE_PLOTS`). matplotlib is imported only when
a plot is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

from unlearnbench._files import atomic_write_bytes
from unlearnbench.execution.store import ResultStore
from unlearnbench.reports.board import (
    ORIGINAL,
    Declared,
    Leaderboard,
    build_leaderboard,
    infer_reference,
    notes,
)
from unlearnbench.reports.devices import by_device
from unlearnbench.reports.html_page import to_html
from unlearnbench.reports.plot_requests import PlotRequest
from unlearnbench.reports.plots import caption, make_plots
from unlearnbench.reports.significance import few_seeds
from unlearnbench.reports.text import to_csv, to_json, to_markdown

log = logging.getLogger(__name__)
FORMATS = ("md", "csv", "json", "html")


def render(
    board: Leaderboard,
    fmt: str,
    title: str = "Leaderboard",
    *,
    plots: Mapping[str, str] | None = None,
    images: Mapping[str, bytes] | None = None,
    sweeps: Sequence[PlotRequest] = (),
) -> str:
    """One format as text. ``plots`` (caption -> path) goes into Markdown; the HTML
    page embeds ``images`` (plot name -> PNG bytes), drawn here when not given
    (the built-in plots and ``sweeps``, the suite's ``[[plots]]``)."""
    if fmt == "md":
        return to_markdown(board, title, plots=plots)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "json":
        return to_json(board)
    if fmt == "html":
        if images is None:
            images = draw_plots(board, sweeps)
        return to_html(board, title, images, plot_captions(images, sweeps))
    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")


def draw_plots(
    board: Leaderboard,
    sweeps: Sequence[PlotRequest] = (),
    plots: Collection[str] | None = None,
) -> dict[str, bytes]:
    """Plot name -> PNG bytes: the built-in plots, then the suite's ``[[plots]]``;
    only those named in ``plots`` when it is given (:func:`choose_plots`)."""
    if plots is not None:
        sweeps = [plot for plot in sweeps if plot.name in plots]
        if not plots:
            return {}
    from unlearnbench.reports.sweeps import make_sweeps  # imports matplotlib

    return {**make_plots(board, plots), **make_sweeps(board, sweeps)}


def plot_captions(names: Iterable[str], sweeps: Sequence[PlotRequest] = ()) -> dict[str, str]:
    """Plot name -> caption: a suite plot's title, a built-in plot's caption."""
    titles = {plot.name: plot.title for plot in sweeps}
    return {name: titles.get(name) or caption(name) for name in names}


def write_plots(
    board: Leaderboard,
    out_dir: Path,
    sweeps: Sequence[PlotRequest] = (),
    plots: Collection[str] | None = None,
) -> tuple[dict[str, str], dict[str, bytes]]:
    """Write ``plots/<name>.png`` under ``out_dir`` (those in ``plots`` when given);
    return caption -> relative path, bytes.

    Two plots with one caption (suite titles need not be unique) keep both: the
    second's caption gets its name added."""
    images = draw_plots(board, sweeps, plots)
    folder = out_dir / "plots"
    paths: dict[str, str] = {}
    for name, text in plot_captions(images, sweeps).items():
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / f"{name}.png", images[name])
        paths[text if text not in paths else f"{text} ({name})"] = f"plots/{name}.png"
    return paths, images


def write_leaderboards(
    out_dir: Path,
    store: ResultStore,
    title: str = "Leaderboard",
    *,
    reference: str | None = None,
    original: str = ORIGINAL,
    formats: Sequence[str] = FORMATS,
    cells: Collection[str] | None = None,
) -> Path:
    """Write leaderboard.md/.csv/.json/.html and plots/*.png; return the Markdown path.

    ``reference`` defaults to the suite's reference as recorded in the cells
    (:func:`infer_reference`), else ``retrain``.
    """
    write_board(
        out_dir, store, title, reference=reference, original=original, formats=formats, cells=cells
    )
    return out_dir / "leaderboard.md"


def write_board(
    out_dir: Path,
    store: ResultStore,
    title: str = "Leaderboard",
    *,
    reference: str | None = None,
    original: str = ORIGINAL,
    formats: Sequence[str] = FORMATS,
    cells: Collection[str] | None = None,
    sweeps: Sequence[PlotRequest] = (),
    declared: Callable[[], Declared] | None = None,
    plots: Collection[str] | None = None,
    rank_blocks: str = "seeds",
) -> Leaderboard:
    """:func:`write_leaderboards`, returning the board (for the run's terminal summary);
    ``sweeps``: the suite's ``[[plots]]``, drawn after the built-in plots; ``declared``:
    see :func:`~unlearnbench.reports.board.build_leaderboard`; ``plots``: the names
    to draw (:func:`choose_plots`; ``None``: all)."""
    if reference is None:
        reference = infer_reference(store)
    board = build_leaderboard(
        by_device(store, cells), reference, original, cells, declared, rank_blocks
    )
    for line in [*notes(board), *few_seeds(board)]:
        log.warning("%s", line)
    paths, images = write_plots(board, out_dir, sweeps, plots)
    for fmt in formats:
        text = render(board, fmt, title, plots=paths, images=images, sweeps=sweeps)
        atomic_write_bytes(out_dir / f"leaderboard.{fmt}", text.encode("utf-8"))
    return board
