"""Suite-declared plots (``[[plots]]``): metrics against a config path, as PNGs.

The shape of the source papers' figures, e.g. DeepObliviate's Fig. 6 (test
accuracy, consistency and speed-up against the number of deleted points, one
line per ε): one panel per metric, one line per value of the plot's
``series`` path, the mean over seeds at each x with its 95% interval (the
board's Student-t :func:`~unlearnbench.reports.board.ci95`) as error bars, and
one legend beside the panels. Numbers on the x axis are sorted and placed by
value; anything else is spaced evenly in the order the results hold it.

A plot that names a metric or a path no cell has, or whose ``where`` keeps no
cell, is logged as a warning naming the plot and left out; the other plots
and the tables are never lost to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from unlearnbench.reports.board import Leaderboard, is_geometric, metric_header
from unlearnbench.reports.plot_requests import PlotRequest
from unlearnbench.reports.plots import _colors, _grid, _markers, legend_outside, png_bytes
from unlearnbench.reports.sweep_frame import (
    LABEL,
    PlotProblem,
    Selection,
    X,
    cell_frame,
    points,
    select,
)
from unlearnbench.reports.units import axis_unit

log = logging.getLogger(__name__)
MAX_TICKS = 12  # up to this many x values each get a labelled tick


def make_sweeps(board: Leaderboard, plot_requests: Sequence[PlotRequest]) -> dict[str, bytes]:
    """Each drawable plot: its name -> PNG bytes, in the suite's order."""
    out: dict[str, bytes] = {}
    if not plot_requests:
        return out
    frame = cell_frame(board)
    for plot in plot_requests:
        try:
            figure = sweep_figure(board, plot, frame)
        except PlotProblem as exc:
            log.warning("plot %r is left out: %s", plot.name, exc)
            continue
        except Exception:
            log.warning("the %r plot failed and is left out", plot.name, exc_info=True)
            continue
        out[plot.name] = png_bytes(figure)
    return out


def sweep_figure(
    board: Leaderboard, plot: PlotRequest, frame: pd.DataFrame | None = None
) -> Figure:
    """One panel per metric of ``plot``; raises :class:`PlotProblem` when it cannot be drawn."""
    if frame is None:
        frame = cell_frame(board)
    if frame.empty:
        raise PlotProblem("the results hold no finished cell")
    selection = select(frame, plot)
    if selection.pooled:
        log.warning("plot %r: %s", plot.name, selection.pooled)
    log_x = plot.log_x and selection.numeric_x
    if plot.log_x and not log_x:
        log.warning("plot %r: x = %r is not numeric; drawn on a linear axis", plot.name, plot.x)
    colors = _series_colors(board, plot, selection)
    markers = _markers(selection.labels)
    n = len(plot.metrics)
    figure, axes = _grid(n, min(3, n), 4.2, 3.4, plot.title)
    handles: dict[str, Any] = {}
    for ax, metric in zip(axes, plot.metrics, strict=True):
        label, factor = _y_label(board, metric)
        table = points(selection, metric, geometric=is_geometric(board, metric))
        if board.role(metric) == "speed":  # the do-nothing anchor's speed-up is a floor
            table = table[table[LABEL] != board.original]
        for series in selection.labels:
            mine = table[table[LABEL] == series]
            if mine.empty:
                continue
            x = _positions(selection, mine[X])
            arms = mine[["low", "high"]].to_numpy(dtype=float).T * factor
            drawn = ax.errorbar(
                x,
                mine["mean"].to_numpy(dtype=float) * factor,
                yerr=arms if np.isfinite(arms).any() else None,
                fmt="-" + markers[series],
                color=colors[series],
                capsize=3,
                markersize=5,
                label=series,
            )
            handles.setdefault(series, drawn)
        _x_axis(ax, plot, selection, log_x)
        if plot.log_y:
            ax.set_yscale("log", nonpositive="mask")
        ax.set_ylabel(label, fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(True, alpha=0.3)
    legend_outside(figure, handles, plot.series)
    return figure


def _series_colors(board: Leaderboard, plot: PlotRequest, selection: Selection) -> dict[str, Any]:
    """Method lines keep the colour the other plots give the method."""
    if plot.series == "method" and not board.table.empty:
        return _colors([*board.table["method"], *selection.labels])
    return _colors(selection.labels)


def _y_label(board: Leaderboard, metric: str) -> tuple[str, float]:
    """The metric's header with its unit (``accuracy (%) ↑``) and the factor
    its values are drawn at."""
    unit, factor = axis_unit(board.units.get(metric, ""))
    header = metric_header(board, metric)
    if unit:
        name, _, arrow = header.partition(" ")
        header = f"{name} ({unit}) {arrow}".strip()
    return header, factor


def _positions(selection: Selection, xs: pd.Series) -> np.ndarray:
    if selection.numeric_x:
        return xs.to_numpy(dtype=float)
    return np.array([selection.x_order.index(x) for x in xs], dtype=float)


def _x_axis(ax: Any, plot: PlotRequest, selection: Selection, log_x: bool) -> None:
    ax.set_xlabel(plot.x + (" (log)" if log_x else ""), fontsize=8)
    if log_x:
        ax.set_xscale("log", nonpositive="mask")
    order = selection.x_order
    if not selection.numeric_x:
        ax.set_xticks(range(len(order)), order, fontsize=7, rotation=30 if len(order) > 4 else 0)
    elif len(order) <= MAX_TICKS:
        kept = [x for x in order if x > 0] if log_x else order
        ax.set_xticks(kept, [f"{x:g}" for x in kept], fontsize=7)
        ax.minorticks_off()
