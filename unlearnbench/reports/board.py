"""Results store -> leaderboard: one row per (dataset, architecture, method,
request), each metric's mean over seeds with its 95% interval, the gaps to the
reference and Avg. Gap (:mod:`.gaps`), the rows never ranked (:mod:`.flags`) and
the best values of each group (:func:`best_cells`, decided by a paired test in
:mod:`.significance`) and the paired differences to the anchors (:mod:`.paired`).

Metric roles, Avg. Gap membership and attack thresholds come from the
evaluators' declarations, stored with every metric, so reports know no
built-in metric name; the only method names are the two anchors, parameters
here. How to read a board: docs/leaderboards.md.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from unlearnbench.execution.store import ResultStore
from unlearnbench.reports.flags import (
    COLLAPSE_MARGIN,
    FLAGS,
    NEVER_RANKED,
    NO_EFFECT,
    NO_EFFECT_MARGIN,
    NO_EFFECT_NOISE,
    WORSE,
    WORSE_MARGIN,
    Uninformative,
    find_uninformative,
    flag_collapsed,
    flag_no_effect,
    flag_worse_than_original,
)
from unlearnbench.reports.gaps import GROUP_KEYS, KEYS, avg_gap_metrics, with_gaps
from unlearnbench.reports.paired import paired_metrics, with_paired
from unlearnbench.reports.significance import TEST_NAME, marks
from unlearnbench.reports.stats import ci95, geometric_mean_ci95, mean_or_nan

log = logging.getLogger(__name__)
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}
REFERENCE = "retrain"
ORIGINAL = "original"
DAGGER = "†"
GEOMETRIC_ROLES = ("speed",)
"""Roles whose metrics are ratios: aggregated over seeds as a geometric mean with
an interval on the log scale (see :func:`geometric_mean_ci95`), never as an
arithmetic mean of ratios."""
Declared = Mapping[str, Mapping[str, Mapping[str, Any]]]  # evaluator -> metric -> meta
DECLARED = ("avg_gap", "mia_gap")
"""The declaration fields a store written before they existed lacks (see
:func:`declarations`)."""


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
    rank_blocks: str = "seeds"  # the across-task ranking's blocks (reports.crossrank.BLOCKS)
    # request label -> deletions each of its seed values averages (requests with repeats > 1)
    repeats: dict[str, int] = field(default_factory=dict)
    # method label -> seed -> the method's resolved parameters (from each cell's config)
    parameters: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    # (dataset, architecture, method, request, seed) -> the ``ok`` cell's recorded config
    configs: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    # KEYS + seed, metric and value of each metric an evaluator returned as NaN or infinite
    non_finite: list[dict[str, Any]] = field(default_factory=list)
    # results derived from the table once (the significance marks), keyed by what they
    # were computed from; not part of the board's data
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

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
        """Rows never ranked: collapsed, with no measurable effect, or worse than the
        original (:data:`~unlearnbench.reports.flags.NEVER_RANKED`)."""
        flagged = self.table[FLAGS].isin(NEVER_RANKED)
        return {int(i) for i in self.table.index[flagged]}


def is_geometric(board: Leaderboard, column: str) -> bool:
    """Whether ``column`` is a ratio aggregated geometrically (its ``_ci95`` is a factor)."""
    return board.role(column) in GEOMETRIC_ROLES


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
    declared: Callable[[], Declared] | None = None,
    rank_blocks: str = "seeds",
) -> Leaderboard:
    """Aggregate the store's ``ok`` cells over seeds into one row per method and group.

    ``rank_blocks``: what one block of the across-task ranking is, a seed of a group
    (``"seeds"``) or a group (``"groups"``); see :mod:`unlearnbench.reports.crossrank`.

    ``cells`` limits the board to those cell ids (a run passes its plan's, so
    results of an earlier, different suite in the same folder stay out). When a
    folder holds two results under the same labels and seed, the latest wins.
    ``declared`` gives the installed evaluators' declarations (see
    :func:`declarations`), called only for metrics recorded before stores held
    the Avg. Gap fields.
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
    about = _about(rows, declared or dict)
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
            mean, ci = (
                geometric_mean_ci95(values) if geometric else (mean_or_nan(values), ci95(values))
            )
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
    avg_metrics = avg_gap_metrics(metrics, about)
    anchors = {"ref": reference, "orig": original}
    table = with_paired(table, wide, paired_metrics(metrics, about), anchors)
    table = with_gaps(table, wide, gap_metrics, avg_metrics, reference)
    table.insert(table.columns.get_loc("seeds") + 1, FLAGS, "")
    wanted = [r for r in store.series_rows() if keep(r["cell_id"])]
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
    flag_collapsed(board)
    flag_no_effect(board)
    flag_worse_than_original(board)
    board.uninformative = find_uninformative(board)
    board.rank_blocks = rank_blocks
    if "repeats" in rows:  # the store's count per aggregated row (1 without repeats)
        most = rows.groupby("request")["repeats"].max()
        board.repeats = {str(r): int(n) for r, n in most.items() if n > 1}
    return board


def _about(rows: pd.DataFrame, declared: Callable[[], Declared]) -> dict[str, dict[str, Any]]:
    """Metric -> its stored declaration (role, evaluator, threshold, Avg. Gap fields).

    A metric first recorded before the Avg. Gap fields were stored takes them
    from a later cell that has them (a resumed run), else from ``declared``."""
    if "meta" not in rows:
        return {}
    first = rows.drop_duplicates("name").set_index("name")["meta"]
    last = rows.drop_duplicates("name", keep="last").set_index("name")["meta"]
    about = {}
    installed: Declared | None = None
    for name, text in first.items():
        meta = json.loads(text or "{}")
        if "avg_gap" not in meta:
            newer = json.loads(last[name] or "{}")
            if "avg_gap" not in newer:
                installed = declared() if installed is None else installed
                newer = dict(installed.get(meta.get("evaluator", ""), {}).get(str(name), {}))
            meta.update({k: newer[k] for k in DECLARED if k in newer})
        about[str(name)] = meta
    return about


def declarations(evaluators: Iterable[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Evaluator name -> metric name -> its declaration as stored (``Metric.meta()``),
    from evaluator specs (the installed plugins'), for :func:`build_leaderboard`."""
    return {spec.name: {m.name: m.meta() for m in spec.metrics} for spec in evaluators}


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


def best_cells(board: Leaderboard) -> set[tuple[int, str]]:
    """(row index, column) pairs holding the best value of their group's column,
    separated from every other contender by a paired test over shared seeds (see
    :func:`~unlearnbench.reports.significance.marks`, which also gives the ties)."""
    return marks(board).best


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
        f"{board.original}'s, or within {NO_EFFECT_NOISE:g} and not separated from it by "
        "a paired t-test over 3+ seeds) "
        f"or flagged {WORSE} (Avg. Gap more than "
        f"{WORSE_MARGIN * 100:g} points above {board.original}'s) is not ranked, and a "
        f"column where {board.original} does at least as well as every method marks "
        f"nothing; {DAGGER}: an attack that cannot tell the "
        "original model's members from non-members in that group (see the notes), not ranked."
    )


RATIO_LEGEND = (
    "speed-ups (ratios) are geometric means over seeds with the 95% interval in brackets "
    "(Student's t on the log scale), never arithmetic means of ratios."
)


BOLD_RULE = (
    f"A best value is marked only when {TEST_NAME} separates it from every other "
    "unlearning method of the group (so from the runner-up); otherwise ≈ marks every "
    "method not separated from the best, the best included; a column where all tie, or "
    "with one seed, marks nothing."
)


def notes(board: Leaderboard) -> list[str]:
    """One line per uninformative attack and group, for under the tables and the terminal."""
    return [f"{DAGGER} {item.message()}" for item in board.uninformative]


def repeat_notes(board: Leaderboard) -> list[str]:
    """One line per request with ``repeats`` > 1: what a value there averages and
    what the repeats cost."""
    return [
        f"{request}: a seed's value is the mean over {count} deletions of that kind "
        f"and size, each from the same trained model (not a stream; speed-ups: "
        f"geometric mean); they cost {count} unlearning runs and {count} reference "
        "retrainings a seed (and a method's own naive retrainings), while the trained "
        "model, shadow and attack reference models are trained once and shared."
        for request, count in board.repeats.items()
    ]
