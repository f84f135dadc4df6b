"""The table behind a suite's ``[[plots]]``: one row per cell, then one per point.

:func:`cell_frame` flattens every finished cell of a board into one row: its
labels, seed, every config path (:mod:`unlearnbench.reports.config_paths`)
and every metric. :func:`select` keeps the rows a plot's ``where`` names and
gives each its x and its series; :func:`points` averages a metric over seeds
per (series, x) with the board's 95% interval. What a plot names but no cell
has is a :class:`PlotProblem`: the caller warns and leaves the plot out.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from unlearnbench.reports.board import Leaderboard
from unlearnbench.reports.config_paths import LABELS, TARGET_SIZE, flatten, plain
from unlearnbench.reports.gaps import KEYS
from unlearnbench.reports.plot_requests import PlotRequest
from unlearnbench.reports.stats import ci95, geometric_mean_ci95

X, SERIES, LABEL = "_x", "_series", "_label"
PATHS = (*KEYS, "seed", TARGET_SIZE)


class PlotProblem(Exception):
    """A plot that cannot be drawn from these results (the message says why)."""


@dataclass(frozen=True)
class Selection:
    """The rows of one plot: ``rows`` with ``_x``, ``_series`` (a value to sort by,
    None for a fallback label) and ``_label`` (the legend's text) added."""

    rows: pd.DataFrame
    numeric_x: bool
    x_order: list[Any]
    labels: list[str]
    pooled: str = ""  # a (series, x) point that averages several rows of the board


def cell_frame(board: Leaderboard) -> pd.DataFrame:
    """One row per finished cell, in the store's order: labels, seed, paths, metrics.

    A metric named ``target_size`` (a method or evaluator reporting it) wins over
    the size derived from the config.
    """
    wide = board.per_seed
    metrics = [c for c in wide.columns if c not in (*KEYS, "seed", *LABELS)]
    measured = {tuple(row[k] for k in (*KEYS, "seed")): row for row in wide.to_dict("records")}
    rows = []
    for key, config in board.configs.items():
        labels = dict(zip((*KEYS, "seed"), key, strict=True))
        row = flatten(config, labels)
        values = measured.get(key, {})
        row.update({m: values.get(m, math.nan) for m in metrics if m != TARGET_SIZE})
        if not _missing(values.get(TARGET_SIZE)):
            row[TARGET_SIZE] = values[TARGET_SIZE]
        rows.append(row)
    return pd.DataFrame(rows)


def select(frame: pd.DataFrame, plot: PlotRequest) -> Selection:
    """The rows ``plot.where`` keeps, with their x, series and legend label."""
    missing = [m for m in plot.metrics if not _has(frame, m)]
    if missing:
        known = sorted(c for c in frame.columns if "." not in c and c not in PATHS)
        raise PlotProblem(f"no cell has the metric(s) {missing}; the cells have {known}")
    for what, path in (("x", plot.x), ("series", plot.series), *_where_items(plot)):
        if not _has(frame, path):
            raise PlotProblem(f"no cell has the path {path!r} ({what}){_path_hint(frame, path)}")
    rows = frame
    for path, value in plot.where.items():
        rows = rows[_equals(rows[path], value)]
    if rows.empty:
        raise PlotProblem(f"no cell matches where = {plot.where}")
    rows = rows[rows[plot.x].notna()].copy()
    if rows.empty:
        raise PlotProblem(f"no cell that matches has a value for x = {plot.x!r}")
    xs = list(dict.fromkeys(rows[plot.x]))
    numeric_x = all(_number(v) for v in xs)
    rows[X] = rows[plot.x].astype(float) if numeric_x else rows[plot.x].map(str)
    x_order = sorted(float(v) for v in xs) if numeric_x else [str(v) for v in xs]
    _add_series(rows, plot.series)
    return Selection(rows, numeric_x, x_order, _label_order(rows), _pooled(rows, plot))


def points(selection: Selection, metric: str, *, geometric: bool = False) -> pd.DataFrame:
    """Per legend label and x (in their order): ``mean``, ``ci95`` (t-based, nan
    below two values), ``n``, and the error bar's arms ``low`` and ``high`` of
    ``metric``; rows without a value are left out. ``geometric`` (ratios such as
    speed-ups): the geometric mean, ``ci95`` the interval's factor and the arms
    reaching ``mean / factor`` and ``mean * factor``."""
    rows = selection.rows[[LABEL, X, metric]].dropna()
    out = []
    for label in selection.labels:
        mine = rows[rows[LABEL] == label]
        for x in selection.x_order:
            values = mine.loc[mine[X] == x, metric].astype(float)
            if values.empty:
                continue
            if geometric:
                mean, ci = geometric_mean_ci95(values)
                low, high = mean - mean / ci, mean * ci - mean
            else:
                mean, ci = float(values.mean()), ci95(values)
                low = high = ci
            out.append(
                {
                    LABEL: label,
                    X: x,
                    "mean": mean,
                    "ci95": ci,
                    "n": len(values),
                    "low": low,
                    "high": high,
                }
            )
    return pd.DataFrame(out, columns=[LABEL, X, "mean", "ci95", "n", "low", "high"])


def _add_series(rows: pd.DataFrame, path: str) -> None:
    """``_series``/``_label``: the path's value, or (a cell without that method
    parameter, such as retrain) the cell's method label, drawn as a baseline."""
    leaf = path.rsplit(".", 1)[-1]
    own = rows[path].notna()
    rows[SERIES] = rows[path].where(own, None)
    named = path not in (*LABELS, "seed")
    rows[LABEL] = [
        (f"{leaf}={_short(value)}" if named else _short(value)) if has else str(method)
        for value, has, method in zip(rows[path], own, rows["method"], strict=True)
    ]


def _label_order(rows: pd.DataFrame) -> list[str]:
    """Fallback labels first (the anchors, in the store's order), then the values:
    numerically when all are numbers, else in the store's order."""
    firsts = rows.drop_duplicates(LABEL)
    fallback = firsts[firsts[SERIES].isna()][LABEL].tolist()
    valued = firsts[firsts[SERIES].notna()]
    if all(_number(v) for v in valued[SERIES]):
        valued = valued.assign(_key=valued[SERIES].astype(float)).sort_values("_key", kind="stable")
    return [*fallback, *valued[LABEL].tolist()]


def _pooled(rows: pd.DataFrame, plot: PlotRequest) -> str:
    """A sentence on the first (label, x) point that mixes several board rows."""
    for (label, x), group in rows.groupby([LABEL, X], sort=False):
        distinct = group.drop_duplicates(KEYS)
        if len(distinct) > 1:
            names = "; ".join("/".join(str(r[k]) for k in KEYS) for _, r in distinct.iterrows())
            return (
                f"{label} at {plot.x} = {_short(x)} averages {len(distinct)} leaderboard rows "
                f"({names}) as if they were seeds; add a where to keep one"
            )
    return ""


def _path_hint(frame: pd.DataFrame, path: str) -> str:
    """What the cells do have under the missing path's root."""
    if path == TARGET_SIZE:
        return ": the splits give a fraction and the data set no 'samples' (its pool size)"
    root = path.split(".", 1)[0]
    near = sorted(c for c in frame.columns if c.startswith(f"{root}.") and _has(frame, c))
    return f"; the cells have {near}" if near else ""


def _where_items(plot: PlotRequest) -> list[tuple[str, str]]:
    return [(f"where.{path}", path) for path in plot.where]


def _has(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and bool(frame[column].notna().any())


def _equals(column: pd.Series, value: Any) -> pd.Series:
    """Which cells hold ``value`` (numbers equal to 1e-9, relative)."""
    if _number(value):
        numbers_ = pd.to_numeric(column.map(lambda v: v if _number(v) else None), errors="coerce")
        target = float(value)
        return pd.Series(
            np.isclose(numbers_.to_numpy(dtype=float), target, rtol=1e-9, atol=0.0),
            index=column.index,
        )
    wanted = plain(value)
    return column.map(lambda v: v == wanted and not _number(v)).astype(bool)


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not _missing(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _short(value: Any) -> str:
    """``0.1``, ``60000`` (not ``60000.0``), text as it is."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)
