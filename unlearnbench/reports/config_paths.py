"""Config paths: dotted names for the values a cell ran with (``method.epsilon``).

A suite's ``[[plots]]`` tables name their x axis, their series and their
``where`` filter by such paths; this module checks a path's shape when a plot
request is read (:mod:`.plot_requests`) and flattens a cell's recorded
configuration into path -> value when a plot is drawn. Paths:

- ``method``, ``dataset``, ``architecture``, ``request``: the cell's labels (the
  leaderboard's row names, e.g. ``deepobliviate(epsilon=0.1)``, ``mnist1d-5k``);
- ``method.<param>``, ``dataset.<param>``, ``architecture.<param>``: a resolved
  plugin parameter (defaults included);
- ``request.<field>``, ``splits.<name>``, ``train.<field>``: the forget request,
  the split sizes (as the suite gave them: a count or a fraction) and the
  training recipe;
- ``seed``;
- ``target_size``: the number of target points (derived, see
  :func:`target_size`).
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from unlearnbench.task_values import SPLIT_NAMES, ForgetRequest, SplitSizes, TaskError, TrainRecipe

LABELS = ("dataset", "architecture", "method", "request")
PLUGIN_ROOTS = ("method", "dataset", "architecture")
FIELDS: dict[str, tuple[str, ...]] = {
    "request": tuple(f.name for f in fields(ForgetRequest)),
    "splits": SPLIT_NAMES,
    "train": tuple(f.name for f in fields(TrainRecipe)),
}
TARGET_SIZE = "target_size"
PLAIN = ("seed", TARGET_SIZE)
ROOTS = (*LABELS, "splits", "train", *PLAIN)


def path_problem(path: str) -> str | None:
    """Why ``path`` can name no config value (None when its shape is fine).

    Only the shape is checked: a plugin parameter's name is known once the
    cells have run (a missing one is a draw-time warning).
    """
    root, dot, rest = path.partition(".")
    if root not in ROOTS:
        return f"{path!r} starts with no known path; allowed: {', '.join(ROOTS)} (+ .<name>)"
    if not dot:
        if root in FIELDS and root != "request":
            return f"{path!r} needs a field: {root}.<one of {', '.join(FIELDS[root])}>"
        return None
    if root in PLAIN:
        return f"{path!r}: {root} has no fields"
    if not rest:
        return f"{path!r} ends with a dot"
    if root in FIELDS and rest not in FIELDS[root]:
        return f"{path!r}: {root} has no field {rest!r}; allowed: {', '.join(FIELDS[root])}"
    return None


def plain(value: Any) -> Any:
    """A value comparable and hashable in a table: lists and tables as sorted JSON text."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, sort_keys=True)
    return value


def flatten(config: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    """Path -> value of one cell: ``labels`` (its dataset, architecture, method,
    request and seed columns) and everything its recorded ``config`` holds."""
    out: dict[str, Any] = {name: labels[name] for name in (*LABELS, "seed") if name in labels}
    for root in PLUGIN_ROOTS:
        params = (config.get(root) or {}).get("params") or {}
        out.update({f"{root}.{name}": plain(value) for name, value in params.items()})
    for root in FIELDS:
        values = config.get(root) or {}
        out.update({f"{root}.{name}": plain(value) for name, value in values.items()})
    size = target_size(config)
    if size is not None:
        out[TARGET_SIZE] = size
    return out


def target_size(config: dict[str, Any]) -> int | None:
    """The number of target points a cell trained on, from its config, counted by
    :meth:`unlearnbench.task_values.SplitSizes.count` in a pool of the data set's
    ``samples`` (a count needs no pool); None when that cannot be known (a fraction on
    a data set that declares no pool size, or no valid target size)."""
    value = (config.get("splits") or {}).get("target")
    samples = ((config.get("dataset") or {}).get("params") or {}).get("samples")
    if value is None or (
        isinstance(value, float) and (isinstance(samples, bool) or not isinstance(samples, int))
    ):
        return None
    try:
        return SplitSizes(target=value).count("target", samples or 0)
    except (TaskError, TypeError, ValueError):
        return None
