"""Repeated single deletions: the store's rows of a request's repeats, as one cell.

A request with ``repeats = N`` (see :class:`unlearnbench.task_values.ForgetRequest`)
runs N tasks per seed that differ only in their forget set; each of their cells
is stored as its own row, with its index in its configuration (``"repeat"``).
What the boards read is one row per method, request and seed: the cells of one
(configuration without ``repeat``, method) are aggregated over their repeats
here, so every report gets the aggregate through the store's read path
(:meth:`unlearnbench.execution.store.ResultStore.metric_rows`) and knows
nothing of repeats.

A metric's aggregate is the mean of its finite values over the repeats that
finished ``ok``; ratios (the role ``speed``, names ending in ``_speedup`` or
``_ratio``) take the geometric mean, as over seeds and over a stream's steps.
Each aggregated row carries ``repeats``, the number of values it averages (a
row without repeats: 1). A series (a curve) is that of the lowest repeat.
Cells without ``"repeat"`` in their configuration pass through unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from unlearnbench.specs import RATIO_SUFFIXES

GEOMETRIC_ROLES = ("speed",)  # as the boards aggregate over seeds


def repeat_group(config_text: str | None) -> tuple[str, int] | None:
    """``(group, repeat)`` of a cell from its stored configuration: ``group`` is its
    configuration without ``repeat`` (the same for every repeat of a cell), ``None``
    for a cell of a request without repeats (or an unreadable configuration)."""
    try:
        config = json.loads(config_text or "{}")
    except (TypeError, ValueError):
        return None
    if not isinstance(config, dict) or "repeat" not in config:
        return None
    repeat = config.pop("repeat")
    return json.dumps(config, sort_keys=True, default=str), int(repeat)


def _is_ratio(row: Mapping[str, Any]) -> bool:
    try:
        role = json.loads(row.get("meta") or "{}").get("role")
    except (TypeError, ValueError, AttributeError):
        role = None
    return role in GEOMETRIC_ROLES or str(row["name"]).endswith(RATIO_SUFFIXES)


def aggregate(values: list[float], geometric: bool) -> float | None:
    """The mean of the finite ``values`` (geometric where asked and all are > 0);
    ``None`` when none is finite."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return None
    if geometric and all(v > 0 for v in finite):
        return math.exp(sum(map(math.log, finite)) / len(finite))
    return sum(finite) / len(finite)


def _groups(
    rows: Iterable[dict[str, Any]], key: str
) -> tuple[list[Any], dict[Any, list[tuple[int, dict[str, Any]]]]]:
    """Rows in order, a row of a repeat replaced by its group's key (first place
    kept), and each group's ``(repeat, row)`` members."""
    order: list[Any] = []
    members: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
    parsed: dict[str, tuple[str, int] | None] = {}  # cell id -> its group: one parse a cell
    for row in rows:
        config = row.pop("config", None)
        if row["cell_id"] not in parsed:
            parsed[row["cell_id"]] = repeat_group(config)
        found = parsed[row["cell_id"]]
        if found is None:
            order.append(row)
            continue
        group, repeat = found
        ident = ("repeats", group, row[key])
        if ident not in members:
            members[ident] = []
            order.append(ident)
        members[ident].append((repeat, row))
    return order, members


def aggregate_metric_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metric rows (each with its cell's ``config``) with the rows of one cell's
    repeats replaced by one row: the aggregate value, ``repeats`` = how many finite
    values it averages, the cell id and fields of its lowest repeat. ``config`` is
    dropped from every row."""
    order, members = _groups(rows, "name")
    out = []
    for item in order:
        if isinstance(item, dict):
            out.append({**item, "repeats": 1})
            continue
        group = sorted(members[item], key=lambda m: m[0])
        first = group[0][1]
        values = [r["value"] for _, r in group]
        value = aggregate(values, _is_ratio(first))
        count = sum(1 for v in values if v is not None and math.isfinite(v))
        used = next((r for _, r in group if r["value"] is not None), first)
        out.append({**used, "cell_id": first["cell_id"], "value": value, "repeats": count})
    return out


def first_repeat_series(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Series rows (each with its cell's ``config``) keeping, of a cell's repeats,
    the lowest repeat's curve; ``config`` is dropped from every row."""
    order, members = _groups(rows, "name")
    out = []
    for item in order:
        if isinstance(item, dict):
            out.append(item)
        else:
            out.append(min(members[item], key=lambda m: m[0])[1])
    return out
