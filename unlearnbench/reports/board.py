"""Results store -> leaderboard tables: mean and 95% CI over seeds per metric.

One row per (dataset, architecture, method, request); columns ``dataset``,
``architecture``, ``method``, ``request``, ``seeds``, then each metric's mean
with ``<metric>_ci95`` beside it when two or more seeds ran. The 95% interval is
the half-width ``t(0.975, n-1) * sd / sqrt(n)`` (Student's t, scipy).

Rows are grouped by (dataset, architecture, request); within a group the
reference method (default ``retrain``) comes first and ``original`` second.
Both rows are always present: when a suite did not run one of them, a
placeholder row with ``seeds = 0`` and empty values says so. The two names are
parameters, the only method names this module knows.

Gap to the reference: after the means come ``<metric>_gap`` columns (skipped
for metrics that already are gaps: names ending in ``_gap``, or a metric ``X``
when the evaluators also report ``X_gap``), and ``avg_gap``, the "Avg. Gap" of
the SalUn protocol (Fan et al., 2024) over ``test_accuracy``,
``retain_accuracy``, ``forget_accuracy`` and one membership-attack metric (the
first present of ``mia_efficacy`` and ``mia_fnr``). One convention for every
gap: per seed, the distance to the reference's value on the same seed (paired),
then the mean over seeds with its 95% interval, which is also what an
evaluator's own ``X_gap`` metric reports (see :func:`per_seed_gaps`).

Speed-ups (metrics of role ``speed``) are ratios: they aggregate over seeds as
a geometric mean, their ``_ci95`` column holding the factor ``f`` of the 95%
interval ``[mean / f, mean * f]`` (Student's t on the log scale), and the
do-nothing ``original`` row shows none.

Best values (see :func:`best_cells`): per group and column, the highest mean
for ``higher`` metrics, the lowest for ``lower`` metrics and for gaps, and for
``none`` metrics with a unit (e.g. ``forget_accuracy``, which should match
retrain rather than be maximised) the row closest to the reference row, the
reference itself excluded; cost counters without a unit are not marked.
Nothing is marked when fewer than two rows have a value.

What is never marked best (see :func:`best_cells`): the two anchor rows, the
reference (its consistency is 1 and its gaps 0 by definition) and
``original`` (doing nothing is the floor, not a contender: its speed-up is
infinite by construction), a **collapsed** row (its mean of a ``utility`` metric, such as
test accuracy, is more than ``COLLAPSE_MARGIN`` below the original's in the
same group: a model wrecked by unlearning "forgets" everything and must not
win), and an **uninformative** attack metric: where an evaluator's
``attack_strength`` metric (the attack's AUC on the original's members
against non-members, or the original's backdoor success) has every row's
mean below the threshold it declares, that evaluator's ``attack`` metrics and
their gaps measure nothing in the group; a strength that differs between rows
(the backdoor success of the model each method unlearns from) marks only the
rows below it. They are printed with a dagger and
explained under the table, and ``unlearnbench run`` warns. Metric roles come
from the evaluators' declarations, stored with every metric, so reports know no
built-in metric name.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from unlearnbench.execution.store import ResultStore

log = logging.getLogger(__name__)
KEYS = ["dataset", "architecture", "method", "request"]
GROUP_KEYS = ["dataset", "architecture", "request"]
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}
REFERENCE = "retrain"
ORIGINAL = "original"
AVG_GAP_METRICS = ("test_accuracy", "retain_accuracy", "forget_accuracy")
MIA_GAP_METRICS = ("mia_efficacy", "mia_fnr")
AVG_GAP = "avg_gap"
PLOT_SERIES_HINTS = ("delta", "residual_memory", "roc_fpr", "roc_tpr", "stop")
COLLAPSE_MARGIN = 0.2
"""A row whose ``utility`` metric (test accuracy) is more than 0.2 (20
points) below the original's in its group is flagged collapsed and never marked
best. Absolute, since reports do not know the number of classes; it flags
SalUn's and random-label's falls to 0.10-0.18 on MNIST-1D (original 0.48) and
leaves a 10-point loss of a changed training procedure to the gap columns."""
FLAGS = "flags"
NO_EFFECT = "no effect"
NO_EFFECT_MARGIN = 0.01
"""A row whose every forgetting measure (the Avg. Gap metrics: test, retain and
forget accuracy, the membership-attack rate; and every ``forgetting`` or
``attack`` metric, so a row that moves only the shadow attack's FNR is not a
no-op) lies within 0.01 of the original's in its group did not measurably
change the model: it is flagged ``no effect`` and never marked
best (a no-op's speed-up is the largest of all). Seen on the MNIST-1D board:
gradient ascent at its reference lr 1e-4, 132x-14,388x "faster" than retrain."""
DAGGER = "†"
GEOMETRIC_ROLES = ("speed",)
"""Roles whose metrics are ratios: aggregated over seeds as a geometric mean with
an interval on the log scale (see :func:`geometric_mean_ci95`), never as an
arithmetic mean of ratios."""


@dataclass
class Leaderboard:
    table: pd.DataFrame  # KEYS + seeds + metric means (+ _ci95), then <metric>_gap, avg_gap
    metrics: list[str]
    directions: dict[str, str]
    units: dict[str, str]
    failures: list[dict[str, object]]
    reference: str = REFERENCE
    original: str = ORIGINAL
    gap_metrics: list[str] = field(default_factory=list)  # metrics with a <metric>_gap column
    avg_gap_metrics: list[str] = field(default_factory=list)  # the ones averaged in avg_gap
    per_seed: pd.DataFrame = field(default_factory=pd.DataFrame)  # KEYS + seed + metrics
    series: list[dict[str, Any]] = field(default_factory=list)  # store.series_rows() for plots
    about: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> role, evaluator
    uninformative: list[Uninformative] = field(default_factory=list)
    collapse_margin: float = COLLAPSE_MARGIN
    # method label -> seed -> the method's resolved parameters (from each cell's config)
    parameters: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    # (dataset, architecture, method, request, seed) -> the ``ok`` cell's recorded config
    configs: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    # KEYS + seed, metric and value of each metric an evaluator returned as NaN or infinite
    non_finite: list[dict[str, Any]] = field(default_factory=list)

    def role(self, metric: str) -> str:
        return str(self.about.get(metric, {}).get("role", ""))

    def hidden_cells(self) -> set[tuple[int, str]]:
        """(row index, column) of every uninformative attack value (gap columns too)."""
        out: set[tuple[int, str]] = set()
        for item in self.uninformative:
            for index in item.rows:
                for metric in item.metrics:
                    out.update({(index, metric), (index, f"{metric}_gap")})
        return out

    def collapsed_rows(self) -> set[int]:
        """Rows never ranked: collapsed, or with no measurable effect."""
        flagged = self.table[FLAGS].isin(["collapsed", NO_EFFECT])
        return {int(i) for i in self.table.index[flagged]}


@dataclass(frozen=True)
class Uninformative:
    """An attack that cannot tell the original's members from non-members in a group."""

    group: tuple[str, ...]  # dataset, architecture, request
    evaluator: str
    strength_metric: str
    strength: float
    threshold: float
    metrics: tuple[str, ...]  # the evaluator's attack metrics, now meaningless
    rows: tuple[int, ...]  # the group's row indices in the table (or the rows below)
    methods: tuple[str, ...] = ()  # only these rows (a per-row strength); () = the group

    def message(self) -> str:
        where = "/".join(self.group)
        if self.methods:
            return (
                f"the {self.evaluator} attack measures nothing for {', '.join(self.methods)} "
                f"on {where}: {self.strength_metric} = {self.strength:.3g} < "
                f"{self.threshold:g} in that row, so its {', '.join(self.metrics)} are not ranked"
            )
        return (
            f"the {self.evaluator} attack measures nothing on {where}: "
            f"{self.strength_metric} = {self.strength:.3g} < {self.threshold:g} on the original "
            f"model, so {', '.join(self.metrics)} are not ranked"
        )


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% Student-t interval of the mean (nan below 2 values)."""
    clean = values.dropna()
    n = len(clean)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * clean.std(ddof=1) / math.sqrt(n))


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if values.notna().any() else float("nan")


def geometric_mean_ci95(values: pd.Series) -> tuple[float, float]:
    """Geometric mean of positive ratios and the multiplicative factor of its 95%
    interval (Student's t on the log scale): the interval is ``[mean / f, mean * f]``.

    Ratios (speed-ups) must not be averaged arithmetically: per-seed 364, 364 and
    20 average to 249 but the geometric mean is 138, and one slow seed cannot
    be cancelled by a fast one. Non-positive values have no logarithm: nan.
    """
    clean = values.dropna().astype(float)
    if clean.empty or (clean <= 0).any():
        return float("nan"), float("nan")
    logs = np.log(clean)
    half = ci95(logs)
    return float(np.exp(logs.mean())), float(np.exp(half)) if not math.isnan(half) else half


def is_geometric(board: Leaderboard, column: str) -> bool:
    """Whether ``column`` is a ratio aggregated geometrically (its ``_ci95`` is a factor)."""
    return board.role(column) in GEOMETRIC_ROLES


def interval(board: Leaderboard, index: int, column: str) -> tuple[float, float] | None:
    """The 95% interval of a row's value in ``column``; ``None`` without one (one seed)."""
    row = board.table.loc[index]
    value, ci = row.get(column), row.get(f"{column}_ci95")
    if value is None or ci is None or math.isnan(float(value)) or math.isnan(float(ci)):
        return None
    value, ci = float(value), float(ci)
    if is_geometric(board, column):
        return value / ci, value * ci
    return value - ci, value + ci


def _blank_anchor_ratios(
    table: pd.DataFrame, metrics: list[str], about: dict[str, dict[str, Any]], original: str
) -> None:
    """The do-nothing row's speed-ups (66k to 4.4M on our boards) measure a no-op's
    floor, not a method: shown as a dash."""
    ratios = [m for m in metrics if about.get(m, {}).get("role") in GEOMETRIC_ROLES]
    rows = table["method"] == original
    for metric in ratios:
        for column in (metric, f"{metric}_ci95"):
            if column in table:
                table.loc[rows, column] = float("nan")


def infer_reference(store: ResultStore, default: str = REFERENCE) -> str:
    """The method label of the suite's reference, read from the cells' configs.

    A cell whose method is the reference (same name and parameters as the
    config's ``reference``) gives its label; ``default`` when no cell does.
    """
    for cell in store.cells():
        try:
            config = json.loads(cell["config"])
        except (TypeError, ValueError):
            continue
        if config.get("reference") and config.get("method") == config["reference"]:
            return str(config.get("label") or cell["method"])
    return default


def build_leaderboard(
    store: ResultStore,
    reference: str = REFERENCE,
    original: str = ORIGINAL,
    cells: Collection[str] | None = None,
) -> Leaderboard:
    """Aggregate the store's ``ok`` cells over seeds into one row per method and group.

    ``cells`` limits the board to those cell ids (a run passes its plan's, so
    results of an earlier, different suite in the same folder stay out). When a
    folder holds two results under the same labels and seed, the latest wins.
    """
    keep = (lambda cell_id: cell_id in cells) if cells is not None else (lambda _: True)
    rows = pd.DataFrame([r for r in store.metric_rows() if keep(r["cell_id"])])
    failures = [
        {k: c[k] for k in (*KEYS, "seed", "error")}
        for c in store.cells()
        if c["status"] != "ok" and keep(c["cell_id"])
    ]
    if rows.empty:
        empty = pd.DataFrame(columns=[*KEYS, "seeds"])
        return Leaderboard(empty, [], {}, {}, failures, reference, original)
    configs = cell_configs(store, keep)
    metrics = list(dict.fromkeys(rows.sort_values("position", kind="stable")["name"]))
    meta = rows.drop_duplicates("name").set_index("name")
    directions = meta["direction"].to_dict()
    units = meta["unit"].to_dict()
    about = {
        name: json.loads(text or "{}")
        for name, text in (meta["meta"] if "meta" in meta else pd.Series(dtype=str)).items()
    }
    wide = rows.pivot_table(
        index=[*KEYS, "seed"], columns="name", values="value", aggfunc="last", dropna=False
    ).reset_index()
    wide.columns.name = None
    order = rows.drop_duplicates(KEYS)[KEYS]
    records = []
    for key, group in wide.groupby(KEYS, sort=False):
        record: dict[str, Any] = dict(zip(KEYS, key, strict=True))
        record["seeds"] = int(group["seed"].nunique())
        for metric in metrics:
            values = group[metric] if metric in group else pd.Series(dtype=float)
            geometric = about.get(metric, {}).get("role") in GEOMETRIC_ROLES
            mean, ci = geometric_mean_ci95(values) if geometric else (_mean(values), ci95(values))
            record[metric] = mean
            if record["seeds"] >= 2:
                record[f"{metric}_ci95"] = ci
        records.append(record)
    table = order.merge(pd.DataFrame(records), on=KEYS, how="left")
    table = _with_anchor_rows(table, reference, original)
    _blank_anchor_ratios(table, metrics, about, original)
    has_ci = any(c.endswith("_ci95") for c in table.columns)
    columns = [*KEYS, "seeds"]
    for metric in metrics:
        columns.append(metric)
        if has_ci:
            columns.append(f"{metric}_ci95")
    table = table.reindex(columns=columns)
    gap_metrics = [m for m in metrics if not m.endswith("_gap") and f"{m}_gap" not in set(metrics)]
    avg_metrics = [m for m in AVG_GAP_METRICS if m in metrics]
    mia = next((m for m in MIA_GAP_METRICS if m in metrics), None)
    if mia is not None:
        avg_metrics.append(mia)
    table = _with_gaps(table, wide, gap_metrics, avg_metrics, reference)
    table.insert(table.columns.get_loc("seeds") + 1, FLAGS, "")
    wanted = [r for r in store.series_rows() if _plot_series(r["name"]) and keep(r["cell_id"])]
    board = Leaderboard(
        table,
        metrics,
        directions,
        units,
        failures,
        reference,
        original,
        gap_metrics,
        avg_metrics,
        wide,
        wanted,
        about,
    )
    board.parameters = method_parameters(configs)
    board.configs = configs
    board.non_finite = non_finite_values(rows)
    _flag_collapsed(board)
    _flag_no_effect(board)
    board.uninformative = find_uninformative(board)
    return board


def non_finite_values(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """The metric values an evaluator returned as NaN or infinite (stored as missing,
    their ``meta`` saying what they were): a board footnotes them."""
    found = []
    for row in rows[rows["value"].isna()].to_dict("records"):
        meta = json.loads(row.get("meta") or "{}")
        if "not_finite" in meta:
            where = {k: row[k] for k in (*KEYS, "seed")}
            found.append({**where, "metric": row["name"], "value": meta["not_finite"]})
    return found


def method_parameters(
    configs: dict[tuple[Any, ...], dict[str, Any]],
) -> dict[str, dict[int, dict[str, Any]]]:
    """Method label -> seed -> the parameters its cells ran with, from
    :func:`cell_configs` (cells whose configuration could not be read are left out)."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    method_at = KEYS.index("method")
    for key, config in configs.items():
        if config:
            params = dict((config.get("method") or {}).get("params") or {})
            out.setdefault(key[method_at], {})[int(key[-1])] = params
    return out


def cell_configs(
    store: ResultStore, keep: Callable[[str], bool]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """(KEYS..., seed) -> the configuration each ``ok`` cell recorded, in the store's
    order (the suite's); the latest cell wins, as in the tables."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for cell in store.cells():
        if cell["status"] != "ok" or not keep(cell["cell_id"]):
            continue
        try:
            config = json.loads(cell["config"])
        except (TypeError, ValueError):
            config = {}
        key = (*(cell[k] for k in KEYS), int(cell["seed"]))
        out[key] = config if isinstance(config, dict) else {}
    return out


def variant_parameters(board: Leaderboard) -> list[tuple[str, int, dict[str, Any]]]:
    """(label, seed, changed parameters) of every variant row ``<label>[...]`` (tuned
    rows, ``<label>[tuned]``) against the row ``<label>`` of the same seed: what a
    search changed, shown beside the numbers it produced."""
    found = []
    for label in sorted(board.parameters):
        base = label.split("[", 1)[0]
        if base == label or base not in board.parameters:
            continue
        for seed, params in sorted(board.parameters[label].items()):
            default = board.parameters[base].get(seed, {})
            changed = {k: v for k, v in params.items() if default.get(k) != v}
            found.append((label, seed, changed))
    return found


def _flag_collapsed(board: Leaderboard) -> None:
    """Set ``flags`` to ``collapsed`` where a utility metric falls more than the margin
    below the original's in the same group: in the mean over seeds, or in any one seed
    against that seed's original (a mean of two good seeds and one wrecked model is
    still a method that can wreck the model)."""
    utility = [m for m in board.metrics if board.role(m) == "utility"]
    table = board.table
    for _, group in table.groupby(GROUP_KEYS, sort=False):
        original = group[group["method"] == board.original]
        if original.empty:
            continue
        for metric in utility:
            floor = float(original[metric].iloc[0]) - board.collapse_margin
            if math.isnan(floor):
                continue
            fallen = group.index[group[metric].astype(float) < floor]
            table.loc[fallen, FLAGS] = "collapsed"
    for index in _collapsed_in_a_seed(board, utility):
        table.loc[index, FLAGS] = "collapsed"


def _collapsed_in_a_seed(board: Leaderboard, utility: list[str]) -> set[int]:
    """Rows of ``board.table`` with a seed whose utility falls more than the margin
    below the same seed's original in the same group."""
    per_seed = board.per_seed
    if per_seed.empty or not utility:
        return set()
    originals = per_seed[per_seed["method"] == board.original]
    keyed = [*GROUP_KEYS, "seed"]
    floors = originals[[*keyed, *utility]].set_index(keyed)
    found: set[int] = set()
    for _, row in per_seed.iterrows():
        key = tuple(row[k] for k in keyed)
        if row["method"] == board.original or key not in floors.index:
            continue
        floor = floors.loc[key]
        if any(float(row[m]) < float(floor[m]) - board.collapse_margin for m in utility):
            match = (board.table[KEYS] == pd.Series({k: row[k] for k in KEYS})).all(axis=1)
            found.update(int(i) for i in board.table.index[match])
    return found


def _flag_no_effect(board: Leaderboard) -> None:
    """Set ``flags`` to ``no effect`` where every forgetting measure (the Avg. Gap
    metrics and every ``forgetting`` or ``attack`` metric) is within
    ``NO_EFFECT_MARGIN`` of the original's (the anchors themselves excluded): a row
    that moves any one of them did something, whichever the Avg. Gap reads."""
    moved = [
        m
        for m in board.metrics
        if board.role(m) in ("forgetting", "attack") and not m.endswith("_gap")
    ]
    candidates = [*board.avg_gap_metrics, *moved]
    metrics = [m for m in dict.fromkeys(candidates) if m in board.table]
    if not metrics:
        return
    table = board.table
    for _, group in table.groupby(GROUP_KEYS, sort=False):
        original = group[group["method"] == board.original]
        if original.empty:
            continue
        base = original[metrics].iloc[0].astype(float)
        have = [m for m in metrics if not math.isnan(float(base[m]))]
        if not have or any(m in board.avg_gap_metrics for m in metrics if m not in have):
            continue
        rows = group[~group["method"].isin([board.original, board.reference])]
        distance = (rows[have].astype(float) - base[have]).abs()
        close = distance.le(NO_EFFECT_MARGIN).all(axis=1)
        unflagged = rows[FLAGS] == ""
        table.loc[rows.index[close & unflagged], FLAGS] = NO_EFFECT


def find_uninformative(board: Leaderboard) -> list[Uninformative]:
    """Per group, every evaluator whose attack strength is below its threshold.

    A strength measured on the original is the same in every row: when every
    row's mean is below, one item marks the group. One that differs between
    rows (measured on the model each method unlearns from) decides per row:
    where only some rows are below, an item per such row marks that row alone."""
    strengths = [(m, board.about[m]) for m in board.metrics if board.role(m) == "attack_strength"]
    found: list[Uninformative] = []
    if not strengths:
        return found
    for key, group in board.table.groupby(GROUP_KEYS, sort=False):
        for metric, about in strengths:
            values = group[metric].astype(float).dropna()
            if values.empty:
                continue
            threshold = float(about["informative_above"])
            below = values[values < threshold]
            if below.empty:
                continue
            evaluator = about.get("evaluator", "")
            attack = tuple(
                m
                for m in board.metrics
                if board.role(m) == "attack" and board.about[m].get("evaluator") == evaluator
            )
            where = tuple(str(k) for k in key)
            strength = float(values.mean())
            if len(below) == len(values):  # a strength of the original: always so
                found.append(
                    Uninformative(
                        where,
                        evaluator,
                        metric,
                        strength,
                        threshold,
                        attack,
                        tuple(int(i) for i in group.index),
                    )
                )
                continue
            for index, value in below.items():
                method = str(group.at[index, "method"])
                found.append(
                    Uninformative(
                        where,
                        evaluator,
                        metric,
                        float(value),
                        threshold,
                        attack,
                        (int(index),),
                        (method,),
                    )
                )
    return found


def _plot_series(name: str) -> bool:
    base = name.split("@", 1)[0].rsplit(".", 1)[-1]
    return any(hint in base for hint in PLOT_SERIES_HINTS)


def _with_anchor_rows(table: pd.DataFrame, reference: str, original: str) -> pd.DataFrame:
    """Reorder each group as reference, original, the rest; add missing anchors empty.

    A suite may name the original as its reference (a method compared with its own
    naive procedure needs no retrain): the row is then shown once.
    """
    ordered = []
    anchors = list(dict.fromkeys((reference, original)))
    for key, group in table.groupby(GROUP_KEYS, sort=False):
        base = dict(zip(GROUP_KEYS, key, strict=True))
        parts = []
        for name in anchors:
            found = group[group["method"] == name]
            if found.empty:
                found = pd.DataFrame([{**base, "method": name, "seeds": 0}])
            parts.append(found)
        parts.append(group[~group["method"].isin([reference, original])])
        ordered.append(pd.concat(parts, ignore_index=True))
    out = pd.concat(ordered, ignore_index=True)
    out["seeds"] = out["seeds"].fillna(0).astype(int)
    return out


def _with_gaps(
    table: pd.DataFrame,
    per_seed: pd.DataFrame,
    gap_metrics: list[str],
    avg_metrics: list[str],
    reference: str,
) -> pd.DataFrame:
    """Add ``<metric>_gap`` (and ``avg_gap``) columns, each the mean over seeds of the
    per-seed gap ``|value - reference's value on the same seed|`` with its 95%
    interval: one convention for every gap, the accuracies' and the attacks' alike
    (an evaluator's own ``X_gap`` metric is already that mean of per-seed gaps)."""
    seeds = per_seed_gaps(per_seed, gap_metrics, avg_metrics, reference)
    columns = [c for c in seeds.columns if c not in (*KEYS, "seed")]
    with_ci = any(c.endswith("_ci95") for c in table.columns)  # as the means: 2+ seeds
    records = []
    for key, group in seeds.groupby(KEYS, sort=False):
        record: dict[str, Any] = dict(zip(KEYS, key, strict=True))
        for column in columns:
            record[column] = _mean(group[column])
            if with_ci and group["seed"].nunique() >= 2:
                record[f"{column}_ci95"] = ci95(group[column])
        records.append(record)
    wanted = [f"{c}{suffix}" for c in columns for suffix in ("", "_ci95")[: 1 + with_ci]]
    out = table.merge(pd.DataFrame(records, columns=[*KEYS, *wanted]), on=KEYS, how="left")
    out.index = table.index
    if AVG_GAP in out:  # a placeholder anchor row (0 seeds) has no Avg. Gap
        out.loc[out["seeds"] == 0, [c for c in (AVG_GAP, f"{AVG_GAP}_ci95") if c in out]] = math.nan
    return out


def per_seed_gaps(
    per_seed: pd.DataFrame, gap_metrics: list[str], avg_metrics: list[str], reference: str
) -> pd.DataFrame:
    """KEYS + seed + one ``<metric>_gap`` per gap metric (and ``avg_gap``): each cell's
    distance to the reference's cell of the same group and seed (paired by seed). The
    Avg. Gap of a seed is the mean of that seed's gaps over ``avg_metrics`` present
    (an evaluator's ``X_gap`` value where it reports one)."""
    present = [m for m in gap_metrics if m in per_seed]
    if per_seed.empty:
        return pd.DataFrame(columns=[*KEYS, "seed"])
    ref = per_seed[per_seed["method"] == reference][[*GROUP_KEYS, "seed", *present]]
    merged = per_seed.merge(ref, on=[*GROUP_KEYS, "seed"], how="left", suffixes=("", "@ref"))
    out = merged[[*KEYS, "seed"]].copy()
    for metric in present:
        out[f"{metric}_gap"] = (
            merged[metric].astype(float) - merged[f"{metric}@ref"].astype(float)
        ).abs()
    if avg_metrics:
        parts = []
        for metric in avg_metrics:
            name = f"{metric}_gap"
            source = out if name in out else merged
            parts.append(
                source[name].astype(float)
                if name in source
                else pd.Series(float("nan"), index=out.index)
            )
        out[AVG_GAP] = pd.concat(parts, axis=1).mean(axis=1)
    return out


def gap_columns(board: Leaderboard) -> list[str]:
    """The gap columns shown: those averaged in ``avg_gap``, ``avg_gap``, the others."""
    main = [f"{m}_gap" for m in board.avg_gap_metrics]
    rest = [f"{m}_gap" for m in board.gap_metrics if m not in board.avg_gap_metrics]
    return [*main, AVG_GAP, *rest] if main else rest


def best_cells(board: Leaderboard) -> set[tuple[int, str]]:
    """(row index, column) pairs holding the best value of their group's column.

    Only unlearning methods compete: the reference (retrain: consistency 1 and
    every gap 0 by definition) and the original (doing nothing) are the two
    anchors every row is read against, never marked.
    ``higher``/``lower`` metrics: the extreme mean; gap columns: the smallest gap
    among rows other than the reference (whose gap is zero by definition);
    ``none`` metrics: the row closest to the reference row (reference excluded),
    nothing when the group has no reference value, and nothing for metrics
    without a unit (cost counters a method reports, which the runner passes on
    undeclared: closeness to retrain's counters means nothing). A best value is
    marked only when its 95% interval does not overlap the runner-up's (see
    :func:`_separated`): ties, one-seed rows and overlaps mark nothing. Never
    marked: the original row, collapsed rows, uninformative attack values.
    """
    marked: set[tuple[int, str]] = set()
    table = board.table
    if table.empty:
        return marked
    excluded_rows = board.collapsed_rows()
    hidden = board.hidden_cells()
    columns = [
        (m, "gap" if m.endswith("_gap") else board.directions.get(m, "none")) for m in board.metrics
    ]
    columns += [(c, "gap") for c in gap_columns(board) if c not in board.directions]
    for _, group in table.groupby(GROUP_KEYS, sort=False):
        is_ref = group["method"] == board.reference
        anchors = group["method"].isin([board.original, board.reference])
        contenders = ~anchors & ~group.index.isin(excluded_rows)
        for column, direction in columns:
            if column not in group:
                continue
            values = group[column].astype(float)
            if direction == "none" and not board.units.get(column):
                continue  # a raw cost counter passed through by the runner: not comparable
            if board.role(column.removesuffix("_gap")) == "attack_strength":
                continue  # how much the check can tell, not how well a method did (gap too)
            if direction in ("gap", "none"):
                if direction == "none":
                    ref_value = values[is_ref].dropna()
                    if ref_value.empty:
                        continue
                    values = (values - float(ref_value.iloc[0])).abs()
                values = values[~is_ref]
            values = values[contenders.reindex(values.index)]
            values = values[[(int(i), column) not in hidden for i in values.index]].dropna()
            if len(values) < 2:
                continue
            best = values.max() if direction == "higher" else values.min()
            winners = values.index[values == best]
            if len(winners) == 1 and _separated(board, column, values, winners[0], direction):
                marked.add((int(winners[0]), column))
    return marked


def _separated(
    board: Leaderboard, column: str, values: pd.Series, best: Any, direction: str
) -> bool:
    """Whether the best row's 95% interval clears the runner-up's (no overlap).

    ``values`` are what is ranked (distances to the reference for ``none``
    columns, whose interval is the metric's own half-width around that
    distance). A row without an interval (one seed) separates from nothing.
    """
    others = values.drop(best)
    runner_up = others.idxmax() if direction == "higher" else others.idxmin()
    spans = []
    for index in (best, runner_up):
        span = interval(board, int(index), column)
        if span is None:
            return False
        if direction == "none":  # distance to the reference: the metric's width around it
            half = (span[1] - span[0]) / 2
            span = (float(values[index]) - half, float(values[index]) + half)
        spans.append(span)
    (best_lo, best_hi), (other_lo, other_hi) = spans
    return best_lo > other_hi if direction == "higher" else best_hi < other_lo


def format_value(value: Any, ci: Any = None) -> str:
    """``0.9123 ± 0.012``; an en dash for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{float(value):.4g}"
    if ci is not None and not (isinstance(ci, float) and math.isnan(ci)):
        ci = float(ci)
        # a constant over seeds prints ± 0, not floating-point dust like ± 2.1e-17
        ci = 0.0 if ci <= 1e-9 * max(1.0, abs(float(value))) else ci
        text += f" ± {ci:.2g}"
    return text


def metric_header(board: Leaderboard, metric: str) -> str:
    return f"{metric} {ARROWS.get(board.directions.get(metric, 'none'), '')}".strip()


def legend(board: Leaderboard, mark: str = "Bold") -> str:
    """The sentence explaining means, intervals, arrows and marks; ``mark`` names how
    the format shows a best value (Markdown: bold; the page: bold on a green fill)."""
    return (
        "Mean over seeds ± half-width of the 95% confidence interval (Student's t); "
        f"{RATIO_LEGEND} "
        "↑ higher is better, ↓ lower is better; unmarked columns are compared with the "
        f"reference ({board.reference}), not maximised. {mark}: the best value of its column "
        f"within a dataset/architecture/request group; for unmarked columns, the value "
        f"closest to {board.reference}'s (raw cost counters are not marked). {BOLD_RULE} "
        f"{board.reference} and {board.original} come first "
        "in each group; 0 seeds means the suite did not run that method. "
        f"Only unlearning methods are marked best, never the anchors {board.reference} and "
        f"{board.original} (whose speed-ups, a no-op's, show as –); a row flagged collapsed "
        f"(test accuracy, a utility metric, more than {board.collapse_margin:g} below "
        f"{board.original}'s) "
        f"or flagged {NO_EFFECT} (every forgetting measure within {NO_EFFECT_MARGIN:g} of "
        f"{board.original}'s) is not ranked; {DAGGER}: an attack that cannot tell the "
        "original model's members from non-members in that group (see the notes), not ranked."
    )


RATIO_LEGEND = (
    "speed-ups (ratios) are geometric means over seeds with the 95% interval in brackets "
    "(Student's t on the log scale), never arithmetic means of ratios."
)
BOLD_RULE = (
    "A best value is marked only when its 95% interval does not overlap the runner-up's "
    "(one seed, or a tie, marks nothing)."
)


def notes(board: Leaderboard) -> list[str]:
    """One line per uninformative attack and group, for under the tables and the terminal."""
    return [f"{DAGGER} {item.message()}" for item in board.uninformative]


def gap_legend(board: Leaderboard) -> str:
    used = ", ".join(board.avg_gap_metrics) or "none present"
    return (
        f"Gap to {board.reference}: per seed, |a row's value - {board.reference}'s value on "
        "the same seed| (paired), then the mean over seeds ± its 95% interval; lower is "
        f"closer to exact unlearning. avg_gap is SalUn's Avg. Gap: per seed, the mean of "
        f"the gaps over {used}, then the mean over seeds. Every gap, accuracies' and "
        "attacks' alike, follows this one convention."
    )
