"""Suite files for tests, built from keyword arguments instead of copied TOML.

``suite_toml(...)`` writes the TOML a test needs; the defaults are the tiny
suite most tests run (digits, a one-layer MLP, one epoch, retrain and
original, ten random points forgotten), so a test names only what it changes.
The text has one fixed layout, so a test may still ``.replace`` a line of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Entry = str | Mapping[str, Any]
"""A ``[[datasets]]``/``[[architectures]]``/``[[methods]]`` entry: a name, or its keys."""

NO_SHADOW_SPLITS: Mapping[str, int] = {
    "target": 300,
    "nonmember": 50,
    "test": 200,
    "shadow_in": 0,
    "shadow_out": 0,
}


def toml_value(value: Any) -> str:
    """One TOML value: ``true``, ``0.001``, ``"text"``, ``[1, 2]``, ``{ k = v }``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return "[" + ", ".join(toml_value(v) for v in value) + "]"


def _table(header: str, keys: Mapping[str, Any]) -> list[str]:
    return [header, *(f"{k} = {toml_value(v)}" for k, v in keys.items()), ""]


def suite_toml(
    name: str = "tiny",
    *,
    seeds: Sequence[int] = (0,),
    reference: str | None = "retrain",
    evaluators: Sequence[str] = ("accuracy",),
    splits: Mapping[str, int | float] = NO_SHADOW_SPLITS,
    train: Mapping[str, Any] | None = None,
    datasets: Sequence[Entry] = ("digits",),
    architectures: Sequence[Entry] = ({"name": "mlp", "params": {"widths": [16]}},),
    methods: Sequence[Entry] = ("retrain", "original"),
    requests: Sequence[Mapping[str, Any]] = ({"kind": "random", "count": 10},),
) -> str:
    """A suite file's text; ``train`` defaults to one epoch, batch 32, lr 0.001."""
    top: dict[str, Any] = {"name": name, "seeds": list(seeds)}
    if reference is not None:
        top["reference"] = reference
    top["evaluators"] = list(evaluators)
    lines = [*(f"{k} = {toml_value(v)}" for k, v in top.items()), ""]
    lines += _table("[splits]", splits)
    lines += _table("[train]", train or {"epochs": 1, "batch_size": 32, "lr": 0.001})
    for kind, entries in (
        ("datasets", datasets),
        ("architectures", architectures),
        ("methods", methods),
        ("requests", requests),
    ):
        for entry in entries:
            keys = {"name": entry} if isinstance(entry, str) else entry
            lines += _table(f"[[{kind}]]", keys)
    return "\n" + "\n".join(lines[:-1]) + "\n"
