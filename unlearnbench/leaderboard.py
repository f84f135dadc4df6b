"""Results store -> leaderboard tables: mean and 95% CI over seeds per metric.

One row per (dataset, architecture, method, request); columns ``dataset``,
``architecture``, ``method``, ``request``, ``seeds``, then each metric's mean
with ``<metric>_ci95`` beside it when two or more seeds ran. The 95% interval is
the half-width ``t(0.975, n-1) * sd / sqrt(n)`` (Student's t, scipy).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import stats
from tabulate import tabulate

from unlearnbench.store import ResultStore

KEYS = ["dataset", "architecture", "method", "request"]
ARROWS = {"higher": "↑", "lower": "↓", "none": ""}
FORMATS = ("md", "csv", "json")


@dataclass
class Leaderboard:
    table: pd.DataFrame  # KEYS + seeds + metric means (+ _ci95)
    metrics: list[str]
    directions: dict[str, str]
    units: dict[str, str]
    failures: list[dict[str, object]]


def ci95(values: pd.Series) -> float:
    """Half-width of the 95% Student-t interval of the mean (nan below 2 values)."""
    clean = values.dropna()
    n = len(clean)
    if n < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, n - 1) * clean.std(ddof=1) / math.sqrt(n))


def build_leaderboard(store: ResultStore) -> Leaderboard:
    rows = pd.DataFrame(store.metric_rows())
    failures = [
        {k: c[k] for k in (*KEYS, "seed", "error")} for c in store.cells() if c["status"] != "ok"
    ]
    if rows.empty:
        return Leaderboard(pd.DataFrame(columns=[*KEYS, "seeds"]), [], {}, {}, failures)
    metrics = list(dict.fromkeys(rows.sort_values("position", kind="stable")["name"]))
    meta = rows.drop_duplicates("name").set_index("name")
    directions = meta["direction"].to_dict()
    units = meta["unit"].to_dict()
    wide = rows.pivot_table(
        index=[*KEYS, "seed"], columns="name", values="value", aggfunc="first", dropna=False
    ).reset_index()
    order = rows.drop_duplicates(KEYS)[KEYS]
    groups = wide.groupby(KEYS, sort=False)
    records = []
    for key, group in groups:
        record = dict(zip(KEYS, key, strict=True))
        record["seeds"] = int(group["seed"].nunique())
        for metric in metrics:
            values = group[metric] if metric in group else pd.Series(dtype=float)
            record[metric] = float(values.mean()) if values.notna().any() else float("nan")
            if record["seeds"] >= 2:
                record[f"{metric}_ci95"] = ci95(values)
        records.append(record)
    table = pd.DataFrame(records)
    table = order.merge(table, on=KEYS, how="left")
    has_ci = any(c.endswith("_ci95") for c in table.columns)
    columns = [*KEYS, "seeds"]
    for metric in metrics:
        columns.append(metric)
        if has_ci:
            columns.append(f"{metric}_ci95")
    table = table.reindex(columns=columns)
    return Leaderboard(table, metrics, directions, units, failures)


def _fmt(value: float, ci: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.4g}"
    if ci is not None and not math.isnan(ci):
        text += f" ± {ci:.2g}"
    return text


def to_markdown(board: Leaderboard, title: str = "Leaderboard") -> str:
    headers = [*KEYS, "seeds"] + [
        f"{m} {ARROWS.get(board.directions.get(m, 'none'), '')}".strip() for m in board.metrics
    ]
    body = []
    for _, row in board.table.iterrows():
        cells = [row[k] for k in KEYS] + [row["seeds"]]
        for metric in board.metrics:
            ci = row.get(f"{metric}_ci95")
            cells.append(_fmt(row[metric], None if ci is None else float(ci)))
        body.append(cells)
    lines = [f"# {title}", ""]
    lines.append(
        "Mean over seeds ± half-width of the 95% confidence interval (Student's t). "
        "↑ higher is better, ↓ lower is better; unmarked columns are compared with "
        "the reference (retrain), not maximised."
    )
    lines += ["", tabulate(body, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if board.failures:
        lines += [f"## Failed cells ({len(board.failures)})", ""]
        for failure in board.failures:
            last = str(failure["error"] or "").strip().splitlines()[-1:] or [""]
            where = "/".join(str(failure[k]) for k in KEYS)
            lines.append(f"- {where} seed {failure['seed']}: {last[0]}")
        lines.append("")
    return "\n".join(lines)


def to_csv(board: Leaderboard) -> str:
    return board.table.to_csv(index=False)


def to_json(board: Leaderboard) -> str:
    rows = json.loads(board.table.to_json(orient="records"))
    return json.dumps(
        {
            "metrics": [
                {"name": m, "direction": board.directions[m], "unit": board.units[m]}
                for m in board.metrics
            ],
            "rows": rows,
            "failures": board.failures,
        },
        indent=2,
        default=str,
    )


def render(board: Leaderboard, fmt: str, title: str = "Leaderboard") -> str:
    if fmt == "md":
        return to_markdown(board, title)
    if fmt == "csv":
        return to_csv(board)
    if fmt == "json":
        return to_json(board)
    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")


def write_leaderboards(out_dir: Path, store: ResultStore, title: str = "Leaderboard") -> Path:
    """Write leaderboard.md/.csv/.json into ``out_dir``; return the Markdown path."""
    board = build_leaderboard(store)
    for fmt in FORMATS:
        (out_dir / f"leaderboard.{fmt}").write_text(render(board, fmt, title), encoding="utf-8")
    return out_dir / "leaderboard.md"
