"""Leaderboard plots as PNG bytes (matplotlib, Agg canvas, no pyplot state).

Three plots, each skipped cleanly when its data is missing:

- ``tradeoff``: speed-up over the reference (a ``speed`` metric, the
  work-based one when present, see :func:`.headline.speed_metrics`; log
  scale) against the accuracy gap (mean absolute gap to the reference over the
  accuracy metrics of the Avg. Gap). One panel per (dataset, architecture,
  request) group, one point per method, one legend beside the panels. Points
  are the leaderboard's values; error bars are 95% CIs over seeds: of the
  speed-up, and of the per-seed gap (each seed paired with the reference's run
  on the same seed).
- ``residual_memory``: DeepObliviate-style Δ curves, any series whose name
  (after an ``<evaluator>.`` prefix, before a ``@step<i>`` suffix) starts with
  ``delta`` or ``residual_memory``; one line per seed. The stop is marked where
  the cell says it: a series whose name contains ``stop`` (first value), else a
  metric (cost) whose name contains ``stop``. When the cell reports a
  ``first_block`` metric the x axis counts blocks from it (so ``stop_block`` is
  in the same unit); otherwise x is the 0-based index into the series and the
  stop value is read as such an index.
- ``critical_difference``: one critical-difference diagram per headline
  measure across the board's groups (:mod:`.crossrank`), when it has enough.
- ``roc``: membership-attack ROC curves, series pairs ``<prefix>roc_fpr`` /
  ``<prefix>roc_tpr`` of one cell; per method, the mean TPR over seeds on a
  common FPR grid (linear interpolation), the chance diagonal dashed.

Panels beyond ``MAX_PANELS`` are left out (the figure's title says so).

matplotlib is imported on the first figure, not with this module (the tables
and pages import the captions from here): a run with ``--plots none`` never
loads it. Every figure gets its Agg canvas when it is made, so ``savefig``
never looks a backend up or switches canvases.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from unlearnbench.reports import crossrank
from unlearnbench.reports.gaps import GROUP_KEYS, KEYS, per_seed_gaps
from unlearnbench.reports.headline import speed_metrics
from unlearnbench.reports.stats import ci95

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from unlearnbench.reports.board import Leaderboard

log = logging.getLogger(__name__)
DELTA_PREFIXES = ("delta", "residual_memory")
MAX_PANELS = 12
TRADEOFF_CAPTION = "Speed-up against accuracy gap to the reference"
CAPTIONS = {
    "tradeoff": TRADEOFF_CAPTION,
    "residual_memory": "Residual memory (Δ) curves and stopping points",
    "roc": "Membership-attack ROC curves",
    "critical_difference": crossrank.CAPTION,
}


def caption(name: str) -> str:
    return CAPTIONS.get(name, name)


def make_plots(board: Leaderboard, names: Collection[str] | None = None) -> dict[str, bytes]:
    """Every plot the board has data for (of ``names`` only, when given): name -> PNG bytes.

    A plot that fails is logged and left out: a run's tables must never be lost
    to a figure.
    """
    out: dict[str, bytes] = {}
    for name, draw in PLOTS.items():
        if names is not None and name not in names:
            continue
        try:
            figure = draw(board)
            if figure is not None:
                out[name] = png_bytes(figure)
        except Exception:
            log.warning("the %s plot failed and is left out", name, exc_info=True)
    return out


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib ``Figure`` on its own Agg canvas (no pyplot, no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


def png_bytes(figure: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(figure.canvas, FigureCanvasAgg):  # a figure made elsewhere
        FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return buffer.getvalue()


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def _colors(methods: Iterable[str]) -> dict[str, Any]:
    """A distinct colour per method (tab10, then tab20's lighter shades)."""
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]
    palette = [colormaps["tab10"](i) for i in range(10)] + [tab20(i) for i in range(1, 20, 2)]
    return {m: palette[i % len(palette)] for i, m in enumerate(dict.fromkeys(methods))}


def _markers(methods: Iterable[str]) -> dict[str, str]:
    """A marker per method, so points stay apart even where colours are close."""
    return {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(dict.fromkeys(methods))}


def _grid(n: int, ncols: int, width: float, height: float, title: str) -> tuple[Figure, list]:
    nrows = math.ceil(n / ncols)
    figure = new_figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for extra in axes[n:]:
        extra.set_visible(False)
    figure.suptitle(title)
    return figure, axes[:n]


def _limited(items: list[Any], what: str) -> tuple[list[Any], str]:
    if len(items) > MAX_PANELS:
        return items[:MAX_PANELS], f" (first {MAX_PANELS} of {len(items)} {what})"
    return items, ""


# --- trade-off ------------------------------------------------------------------


def paired_gaps(board: Leaderboard, metrics: list[str]) -> pd.DataFrame:
    """Per cell: the mean over ``metrics`` of |value - reference's value on the same seed|
    (the board's own per-seed gaps, :func:`~unlearnbench.reports.board.per_seed_gaps`)."""
    present = [m for m in metrics if m in board.per_seed]
    if board.per_seed.empty or not present:
        return pd.DataFrame(columns=[*KEYS, "seed", "gap"])
    gaps = per_seed_gaps(board.per_seed, present, [], board.reference)
    out = gaps[[*KEYS, "seed"]].copy()
    out["gap"] = gaps[[f"{m}_gap" for m in present]].mean(axis=1)
    return out.dropna(subset=["gap"])


def _accuracy_metrics(board: Leaderboard) -> list[str]:
    """The metrics declared in the Avg. Gap (``Metric.avg_gap``: the accuracies), its
    membership-attack term left out."""
    return [m for m in board.avg_gap_metrics if board.about.get(m, {}).get("avg_gap")]


def speed_axis(board: Leaderboard) -> str | None:
    """The x axis: the work-based speed-up when there is one, else the wall-clock one."""
    speeds = speed_metrics(board)
    return speeds[0] if speeds else None


def tradeoff(board: Leaderboard) -> Figure | None:
    """One panel per group: speed-up (log) against the accuracy gap to the reference.

    The legend is shared, beside the panels, so it never covers a point."""
    table = board.table
    accuracy = _accuracy_metrics(board)
    speed = speed_axis(board)
    if table.empty or speed is None or not accuracy:
        return None
    table = table[table["seeds"] > 0]
    groups = [
        (key, g) for key, g in table.groupby(GROUP_KEYS, sort=False) if g[speed].notna().any()
    ]
    if not groups:
        return None
    groups, note = _limited(groups, "groups")
    colors = _colors(table["method"])
    markers = _markers(table["method"])
    figure, axes = _grid(
        len(groups),
        min(3, len(groups)),
        4.6,
        3.6,
        f"{speed} against accuracy gap to {board.reference}{note}",
    )
    per_seed = paired_gaps(board, accuracy)
    handles: dict[str, Any] = {}
    for ax, (key, group) in zip(axes, groups, strict=True):
        for _, row in group.iterrows():
            own = [f"{m}_gap" for m in accuracy if f"{m}_gap" in row]
            y = float(pd.to_numeric(row[own], errors="coerce").mean()) if own else math.nan
            x = float(row[speed])
            if math.isnan(x) or math.isnan(y) or x <= 0:
                continue
            seeds = per_seed[(per_seed[KEYS] == row[KEYS]).all(axis=1)]["gap"]
            drawn = ax.errorbar(
                x,
                y,
                xerr=_ratio_err(row.get(f"{speed}_ci95"), x),
                yerr=_err(ci95(seeds), y),
                fmt=markers[row["method"]],
                capsize=3,
                color=colors[row["method"]],
                label=row["method"],
            )
            handles.setdefault(str(row["method"]), drawn)
        ax.set_xscale("log")
        ax.set_xlabel(f"{speed} over {board.reference} (log, → faster)", fontsize=8)
        ax.set_ylabel("accuracy gap (mean |Δ|, ↓ closer)", fontsize=8)
        ax.set_title(" / ".join(str(k) for k in key), fontsize=9)
        ax.grid(True, alpha=0.3)
    legend_outside(figure, handles)
    return figure


def legend_outside(figure: Figure, handles: dict[str, Any], title: str | None = None) -> None:
    """One legend for every panel, outside the axes on the right (none without handles)."""
    if handles:
        figure.legend(
            list(handles.values()),
            list(handles),
            loc="outside right upper",
            fontsize=8,
            frameon=False,
            title=title,
            title_fontsize=8,
        )


def _err(ci: Any, room: float) -> Any:
    """A ± ``ci`` error bar whose lower arm stops at ``room`` below the point
    (gaps are never negative; a log axis must stay positive)."""
    if ci is None or (isinstance(ci, float) and math.isnan(ci)):
        return None
    return [[min(float(ci), room)], [float(ci)]]


def _ratio_err(factor: Any, x: float) -> Any:
    """The arms of a geometric mean's interval ``[x / factor, x * factor]``."""
    if factor is None or (isinstance(factor, float) and math.isnan(factor)):
        return None
    return [[x - x / float(factor)], [x * float(factor) - x]]


# --- residual memory ------------------------------------------------------------


def _base(name: str) -> tuple[str, str]:
    """(name without evaluator prefix or step suffix, the ``@step<i>`` suffix or '')."""
    head, _, step = name.partition("@")
    return head.rsplit(".", 1)[-1], (f"@{step}" if step else "")


def _cell_metrics(board: Leaderboard) -> dict[tuple[Any, ...], dict[str, float]]:
    wide = board.per_seed
    if wide.empty:
        return {}
    metrics = [c for c in wide.columns if c not in (*KEYS, "seed")]
    return {
        tuple(row[k] for k in (*KEYS, "seed")): {m: row[m] for m in metrics}
        for _, row in wide.iterrows()
    }


def _stop(
    cell_series: dict[str, list[float]], metrics: dict[str, float], step: str
) -> float | None:
    for name, points in cell_series.items():
        base, suffix = _base(name)
        if "stop" in base and suffix == step and points:
            return float(points[0])
    if step:
        return None  # costs are summed over a stream's steps: no per-step stop there
    for name, value in metrics.items():
        if "stop" in name and value is not None and not math.isnan(float(value)):
            return float(value)
    return None


def delta_curves(board: Leaderboard) -> Figure | None:
    by_cell: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for row in board.series:
        key = tuple(row[k] for k in (*KEYS, "seed"))
        by_cell.setdefault(key, {})[row["name"]] = row["points"]
    panels: dict[tuple[Any, ...], list[tuple[Any, list[float], str]]] = {}
    for key, cell in by_cell.items():
        for name, points in cell.items():
            base, _ = _base(name)
            if base.startswith(DELTA_PREFIXES) and points:
                panels.setdefault((*key[:4], name), []).append((key, points, name))
    if not panels:
        return None
    items, note = _limited(list(panels.items()), "curves")
    metrics = _cell_metrics(board)
    figure, axes = _grid(len(items), min(3, len(items)), 4.6, 3.4, f"Residual memory Δ{note}")
    for ax, (panel, curves) in zip(axes, items, strict=True):
        dataset, architecture, method, request, name = panel
        for key, points, series_name in curves:
            cell_metrics = metrics.get(key, {})
            first = cell_metrics.get("first_block")
            start = 0.0
            if first is not None and not math.isnan(float(first)) and "@" not in name:
                start = float(first)
            x = start + np.arange(len(points))
            (line,) = ax.plot(x, points, marker=".", label=f"seed {key[4]}")
            stop = _stop(by_cell[key], cell_metrics, _base(series_name)[1])
            if stop is not None:
                ax.axvline(stop, color=line.get_color(), linestyle="--", alpha=0.7)
                at = round(stop - start)
                if 0 <= at < len(points):
                    ax.plot([stop], [points[at]], marker="*", markersize=12, color=line.get_color())
        ax.set_title(f"{method}: {name}\n{dataset}/{architecture}/{request}", fontsize=8)
        ax.set_xlabel("block" if "@" not in name else "index")
        ax.set_ylabel("Δ")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, title="--/★ stop", title_fontsize=7)
    return figure


# --- ROC ------------------------------------------------------------------------


def roc(board: Leaderboard) -> Figure | None:
    by_cell: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for row in board.series:
        by_cell.setdefault(tuple(row[k] for k in (*KEYS, "seed")), {})[row["name"]] = row["points"]
    curves: dict[tuple[Any, ...], dict[str, list[np.ndarray]]] = {}
    grid = np.linspace(0.0, 1.0, 201)
    for key, cell in by_cell.items():
        for name, fpr in cell.items():
            if not name.endswith("roc_fpr"):
                continue
            tpr = cell.get(name[: -len("roc_fpr")] + "roc_tpr")
            if not tpr or len(tpr) != len(fpr) or len(fpr) < 2:
                continue
            order = np.argsort(np.asarray(fpr), kind="stable")
            tpr_on_grid = np.interp(grid, np.asarray(fpr)[order], np.asarray(tpr)[order])
            panel = (key[0], key[1], key[3], name[: -len("roc_fpr")].rstrip("._") or "attack")
            curves.setdefault(panel, {}).setdefault(key[2], []).append(tpr_on_grid)
    if not curves:
        return None
    items, note = _limited(list(curves.items()), "panels")
    colors = _colors(board.table["method"] if not board.table.empty else [])
    figure, axes = _grid(len(items), min(3, len(items)), 4.2, 4.0, f"Membership-attack ROC{note}")
    for ax, (panel, methods) in zip(axes, items, strict=True):
        dataset, architecture, request, attack = panel
        for method, tprs in methods.items():
            ax.plot(
                grid,
                np.mean(tprs, axis=0),
                label=f"{method} ({len(tprs)} seeds)",
                color=colors.get(method),
            )
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
        ax.set_title(f"{attack}\n{dataset}/{architecture}/{request}", fontsize=8)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=7, loc="lower right")
    return figure


PLOTS = {
    "tradeoff": tradeoff,
    "residual_memory": delta_curves,
    "roc": roc,
    "critical_difference": crossrank.diagram,
}
