"""A suite's ``[[plots]]`` tables -> validated :class:`PlotRequest`\\ s, and
``<results folder>/plots.json``, where ``run`` keeps them with the results.

The suite reader hands the tables over as plain data; they are checked here
(``run --check`` does it before anything runs), every mistake naming its key.
``unlearnbench leaderboard DIR`` reads ``plots.json`` back through the same
parser, so a hand-edited file is checked like a suite. The figures themselves
are drawn by :mod:`unlearnbench.reports.sweeps`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unlearnbench._files import atomic_write_bytes
from unlearnbench._tables import KeyedError, typed
from unlearnbench.reports.config_paths import path_problem
from unlearnbench.specs import UnlearnbenchError

PLOTS_FILE = "plots.json"
PLOT_KEYS = {"name", "title", "metrics", "x", "series", "where", "log_x", "log_y"}
# a plot's name is its file name, plots/<name>.png
PLOT_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")
BUILTIN_PLOTS = (
    "tradeoff",
    "residual_memory",
    "roc",
    "critical_difference",
)  # reports.plots.PLOTS: never overwritten


class PlotError(KeyedError):
    """A ``[[plots]]`` mistake. ``key`` is the dotted path of the offending entry."""


@dataclass(frozen=True)
class PlotRequest:
    """One ``[[plots]]`` table: ``metrics`` (one panel each) against the config
    path ``x``, one line per value of the path ``series``, over the cells whose
    paths equal ``where`` (see :mod:`unlearnbench.reports.config_paths`)::

        [[plots]]
        name = "fig6"                 # plots/fig6.png; unique; letters, digits, - and _
        title = "DeepObliviate, Fig. 6 shape"       # default: the name
        metrics = ["forget_rate", "block_speedup"]     # one panel each
        x = "request.count"           # a config path
        series = "method.epsilon"     # one line per value; default "method" (the label)
        where = { "request.position" = 0.0995 }     # optional: keep cells with these values
        log_x = true                  # optional, default false; log_y likewise

    Metric names and paths no cell has are found when the plot is drawn (a
    warning, the plot left out).
    """

    name: str
    metrics: tuple[str, ...]
    x: str
    title: str = ""
    series: str = "method"
    where: dict[str, Any] = field(default_factory=dict)
    log_x: bool = False
    log_y: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The table as a suite gives it (``plots.json`` holds a list of these)."""
        return {
            "name": self.name,
            "title": self.title,
            "metrics": list(self.metrics),
            "x": self.x,
            "series": self.series,
            "where": dict(self.where),
            "log_x": self.log_x,
            "log_y": self.log_y,
        }


def parse_plots(raw: Any, key: str = "plots") -> tuple[PlotRequest, ...]:
    """The ``[[plots]]`` tables (or a ``plots.json``'s list), each key checked."""
    if not isinstance(raw, list | tuple) or not all(isinstance(item, dict) for item in raw):
        raise PlotError(key, "must be an array of tables ([[plots]])")
    requests = tuple(_plot(item, f"{key}[{i}]") for i, item in enumerate(raw))
    seen: dict[str, int] = {}
    for i, request in enumerate(requests):
        if request.name in seen:
            raise PlotError(
                f"{key}[{i}].name", f"{request.name!r} is also {key}[{seen[request.name]}]'s name"
            )
        seen[request.name] = i
    return requests


def save_plot_requests(out_dir: Path, requests: Sequence[PlotRequest]) -> None:
    """Write the requests; with none, remove an earlier suite's file (its plots are
    no longer this folder's run)."""
    path = out_dir / PLOTS_FILE
    if not requests:
        path.unlink(missing_ok=True)
        return
    text = json.dumps([request.as_dict() for request in requests], indent=2, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def load_plot_requests(folder: Path) -> tuple[PlotRequest, ...]:
    """The folder's requests (none without a file); :class:`PlotError` when it is bad."""
    path = folder / PLOTS_FILE
    if not path.exists():
        return ()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlotError(PLOTS_FILE, f"cannot be read as JSON: {exc}") from None
    return parse_plots(raw, key=PLOTS_FILE)


def _plot(raw: dict[str, Any], key: str) -> PlotRequest:
    unknown = sorted(set(raw) - PLOT_KEYS)
    if unknown:
        raise PlotError(f"{key}.{unknown[0]}", f"unknown key; allowed: {sorted(PLOT_KEYS)}")
    for required in ("name", "metrics", "x"):
        if required not in raw:
            raise PlotError(f"{key}.{required}", "is required")
    name = typed(raw, "name", str, "", f"{key}.", error=PlotError)
    if not PLOT_NAME_PATTERN.fullmatch(name):
        raise PlotError(
            f"{key}.name", f"{name!r} must be 1 to 100 letters, digits, '-' or '_' (a file name)"
        )
    if name in BUILTIN_PLOTS:
        raise PlotError(f"{key}.name", f"{name!r} is a built-in plot's name; choose another")
    metrics = raw["metrics"]
    if (
        not isinstance(metrics, list)
        or not metrics
        or not all(isinstance(m, str) and m for m in metrics)
    ):
        raise PlotError(f"{key}.metrics", "must be a non-empty list of metric names")
    if len(set(metrics)) != len(metrics):
        raise PlotError(f"{key}.metrics", f"names a metric twice: {metrics}")
    paths = {k: typed(raw, k, str, "method", f"{key}.", error=PlotError) for k in ("x", "series")}
    where = typed(raw, "where", dict, {}, f"{key}.", error=PlotError)
    flat = _flat_where(where)
    for item, path in [*paths.items(), *((f"where.{p}", p) for p in flat)]:
        problem = path_problem(path)
        if problem:
            raise PlotError(f"{key}.{item}", problem)
    for path, value in flat.items():
        if not isinstance(value, str | int | float | list):
            raise PlotError(f"{key}.where.{path}", f"expected a value, got {value!r}")
        if isinstance(value, float) and value != value:
            raise PlotError(f"{key}.where.{path}", "nan equals nothing")
    return PlotRequest(
        name=name,
        metrics=tuple(metrics),
        x=paths["x"],
        title=typed(raw, "title", str, name, f"{key}.", error=PlotError) or name,
        series=paths["series"],
        where=flat,
        log_x=typed(raw, "log_x", bool, False, f"{key}.", error=PlotError),
        log_y=typed(raw, "log_y", bool, False, f"{key}.", error=PlotError),
    )


def _flat_where(where: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{ request = { position = 0.1 } }`` (TOML's unquoted dotted keys) as
    ``{"request.position": 0.1}``, the same as the quoted ``"request.position"``."""
    out: dict[str, Any] = {}
    for name, value in where.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_flat_where(value, f"{path}."))
        else:
            out[path] = value
    return out


ALL_PLOTS, NO_PLOTS = "all", "none"
DEFAULT_SUITE_PLOTS = "tradeoff"
"""What ``run`` draws for the built-in default suite unless ``--plots`` says
otherwise: the trade-off plot, the one the page's top shows (every other suite
draws all its plots)."""


class PlotChoiceError(UnlearnbenchError, ValueError):
    """A ``--plots`` value naming a plot that neither the built-in plots nor the
    suite's ``[[plots]]`` define."""


def choose_plots(choice: str, sweeps: Sequence[PlotRequest] = ()) -> frozenset[str] | None:
    """``all`` -> ``None`` (every plot), ``none`` -> no plot, else a comma-separated
    list of names: built-in plots (:data:`BUILTIN_PLOTS`) or the suite's ``[[plots]]``."""
    choice = choice.strip()
    if choice == ALL_PLOTS:
        return None
    if choice == NO_PLOTS:
        return frozenset()
    names = [name.strip() for name in choice.split(",") if name.strip()]
    known = (*BUILTIN_PLOTS, *(plot.name for plot in sweeps))
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise PlotChoiceError(
            f"--plots: unknown plot name(s) {unknown or [choice]}; give {ALL_PLOTS}, "
            f"{NO_PLOTS} or a comma-separated list of {', '.join(known)}"
        )
    return frozenset(names)
