"""Suite files (TOML) -> a validated :class:`Suite`. Every error names its key.

A suite names what to cross: data sets x architectures x methods (with
parameter grids) x forget requests x seeds, plus the split sizes, the training
recipe and the evaluators. See ``unlearnbench/suites/default.toml`` and the
README for the format. Only the shape is checked here; names and parameters
are checked against the registry in :mod:`unlearnbench.execution.plan`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from unlearnbench._tables import KeyedError, typed
from unlearnbench.task_values import ForgetRequest, SplitSizes, TaskError, TrainRecipe

TOP_KEYS = {
    "name",
    "description",
    "seeds",
    "reference",
    "datasets",
    "architectures",
    "methods",
    "requests",
    "evaluators",
    "splits",
    "train",
    "tuning",
    "plots",
}
TUNING_KEYS = {"trials", "max_sample_passes", "seed", "tuned", "space"}
ENTRY_KEYS = {"name", "params", "grid", "label", "architectures", "train", "splits"}
# a suite name is a label and the default output folder's name, never a path
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


class SuiteError(KeyedError):
    """A suite file mistake. ``key`` is the dotted path of the offending entry."""


@dataclass(frozen=True)
class SuiteEntry:
    """One data set, architecture, method, evaluator or the reference of a suite file:
    a plugin name with its parameters (a grid expands into several entries)."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    label: str = ""
    key: str = ""
    architectures: tuple[str, ...] = ()
    train: dict[str, Any] = field(default_factory=dict)
    splits: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TuningOptions:
    """The suite's ``[tuning]`` table: one budget for every method (see
    :mod:`unlearnbench.execution.tuning`).

    ``trials`` per study, ``max_sample_passes``: the cap on one trial's
    unlearning work, ``seed``: the sampler's and the validation set's seed,
    ``tuned``: also run each method with its tuned parameters, ``space``:
    method label -> {tunable name: ``true`` (its declared range), ``[low,
    high]`` or a list of choices}; a method without an entry searches all
    its tunables.
    """

    trials: int = 20
    max_sample_passes: float = 0.0
    seed: int = 0
    tuned: bool = False
    space: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A validated suite file.

    ``plots``: the ``[[plots]]`` tables as plain data, figures of metrics
    against a grid parameter; their keys are checked by the reports
    (:func:`unlearnbench.reports.plot_requests.parse_plots`), which draw them.
    """

    name: str
    seeds: tuple[int, ...]
    datasets: tuple[SuiteEntry, ...]
    architectures: tuple[SuiteEntry, ...]
    methods: tuple[SuiteEntry, ...]
    requests: tuple[ForgetRequest, ...]
    evaluators: tuple[SuiteEntry, ...]
    splits: SplitSizes
    train: TrainRecipe
    reference: SuiteEntry
    description: str = ""
    source: str = ""
    tuning: TuningOptions | None = None
    plots: tuple[dict[str, Any], ...] = ()


def load_suite(path: Path | str) -> Suite:
    """Read and validate a suite file."""
    path = Path(path)
    if not path.exists():
        raise SuiteError("", f"suite file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError("", f"{path} is not valid TOML: {exc}") from None
    return parse_suite(data, default_name=path.stem, source=str(path))


def parse_suite(data: dict[str, Any], *, default_name: str = "suite", source: str = "") -> Suite:
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise SuiteError(unknown[0], f"unknown key; allowed top-level keys: {sorted(TOP_KEYS)}")
    name = _suite_name(data, default_name)
    seeds = _seeds(data.get("seeds", [0]))
    splits = _dataclass_from(SplitSizes, data.get("splits", {}), "splits")
    train = _dataclass_from(TrainRecipe, data.get("train", {}), "train")
    datasets = _entries(data, "datasets", required=True)
    architectures = _entries(data, "architectures", required=True)
    methods = _entries(data, "methods", required=True)
    evaluators = _entries(data, "evaluators", default=["accuracy", "consistency", "time"])
    reference = _entry(data.get("reference", "retrain"), "reference")
    for entry in (*architectures, *methods, *evaluators, reference):
        for extra in ("architectures", "train", "splits"):
            if getattr(entry, extra):
                raise SuiteError(f"{entry.key}.{extra}", "is allowed on datasets only")
    for entry in datasets:
        _dataclass_from(TrainRecipe, {**data.get("train", {}), **entry.train}, f"{entry.key}.train")
        _dataclass_from(
            SplitSizes, {**data.get("splits", {}), **entry.splits}, f"{entry.key}.splits"
        )
        for arch in entry.architectures:
            if arch not in {a.name for a in architectures}:
                raise SuiteError(
                    f"{entry.key}.architectures", f"{arch!r} is not among the suite's architectures"
                )
    raw_requests = data.get("requests", [{"kind": "random", "count": 10}])
    if not isinstance(raw_requests, list) or not raw_requests:
        raise SuiteError("requests", "must be a non-empty array of tables ([[requests]])")
    requests = tuple(
        _dataclass_from(ForgetRequest, raw, f"requests[{i}]") for i, raw in enumerate(raw_requests)
    )
    for i, request in enumerate(requests):
        if request in requests[:i]:
            raise SuiteError(f"requests[{i}]", "repeats an earlier request")
    return Suite(
        name=name,
        seeds=seeds,
        datasets=datasets,
        architectures=architectures,
        methods=methods,
        requests=requests,
        evaluators=evaluators,
        splits=splits,
        train=train,
        reference=reference,
        description=typed(data, "description", str, "", "", error=SuiteError),
        source=source,
        tuning=_tuning(data["tuning"]) if "tuning" in data else None,
        plots=_plot_tables(data.get("plots", [])),
    )


def _plot_tables(raw: Any) -> tuple[dict[str, Any], ...]:
    """The ``[[plots]]`` tables, kept as data: only their shape is checked here."""
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SuiteError("plots", "must be an array of tables ([[plots]])")
    return tuple(dict(item) for item in raw)


def _tuning(raw: Any) -> TuningOptions:
    """The ``[tuning]`` table's shape: a budget of at least one trial and a work
    cap above zero (tunable names and ranges are checked against the registry
    by :func:`unlearnbench.execution.tuning.check_tuning`)."""
    if not isinstance(raw, dict):
        raise SuiteError("tuning", "must be a table")
    unknown = sorted(set(raw) - TUNING_KEYS)
    if unknown:
        raise SuiteError(f"tuning.{unknown[0]}", f"unknown key; allowed: {sorted(TUNING_KEYS)}")
    trials = typed(raw, "trials", int, 20, "tuning.", error=SuiteError)
    if isinstance(trials, bool) or trials < 1:
        raise SuiteError("tuning.trials", f"must be an integer >= 1, got {trials!r}")
    if "max_sample_passes" not in raw:
        raise SuiteError(
            "tuning.max_sample_passes",
            "is required: the cap on one trial's unlearning work in sample-passes, "
            "the same for every method",
        )
    cap = raw["max_sample_passes"]
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 < cap < float("inf"):
        raise SuiteError(
            "tuning.max_sample_passes", f"must be a finite number of sample-passes > 0, got {cap!r}"
        )
    seed = typed(raw, "seed", int, 0, "tuning.", error=SuiteError)
    if isinstance(seed, bool):
        raise SuiteError("tuning.seed", "must be an integer")
    tuned = typed(raw, "tuned", bool, False, "tuning.", error=SuiteError)
    space = typed(raw, "space", dict, {}, "tuning.", error=SuiteError)
    for label, params in space.items():
        if not isinstance(params, dict) or not params:
            raise SuiteError(
                f"tuning.space.{label}", "must be a non-empty table of tunable = true | [low, high]"
            )
    return TuningOptions(trials, float(cap), seed, tuned, {k: dict(v) for k, v in space.items()})


def _suite_name(data: dict[str, Any], default_name: str) -> str:
    """The suite's name, checked to be a safe folder name (it names the output folder).

    A name such as ``../x``, ``/abs`` or ``""`` would write outside
    ``unlearnbench-results/``; names are labels, so only letters, digits,
    ``-``, ``_`` and ``.`` (not first) are allowed, 1 to 100 characters.
    """
    name = typed(data, "name", str, default_name, "", error=SuiteError)
    if NAME_PATTERN.fullmatch(name):
        return name
    rule = (
        "must be 1 to 100 letters, digits, '-', '_' or '.' and not start with '.' "
        "(it names the output folder)"
    )
    if "name" in data:
        raise SuiteError("name", f"{name!r} {rule}")
    raise SuiteError(
        "name",
        f"not set, and the suite file's name {name!r} is no valid default: a name {rule}; "
        f'set one, e.g. name = "{re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-") or "suite"}"',
    )


def _seeds(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if raw < 1:
            raise SuiteError("seeds", "a seed count must be >= 1")
        return tuple(range(raw))
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in raw)
    ):
        raise SuiteError("seeds", f"expected a count or a non-empty list of integers, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise SuiteError("seeds", f"seeds repeat: {raw}")
    return tuple(raw)


def _entries(
    data: dict[str, Any], key: str, *, required: bool = False, default: list[Any] | None = None
) -> tuple[SuiteEntry, ...]:
    if key not in data:
        if required:
            raise SuiteError(key, "is required (a list of names or [[" + key + "]] tables)")
        raw = default or []
    else:
        raw = data[key]
    if not isinstance(raw, list) or (required and not raw):
        raise SuiteError(key, "must be a non-empty list of names or tables")
    entries = tuple(_entry(item, f"{key}[{i}]") for i, item in enumerate(raw))
    if key == "datasets":
        # entries of one data set may differ in params, train or splits; the plan
        # labels them apart (datasets x architectures x ... stays one row per variant)
        return entries
    seen: dict[str, str] = {}
    for entry in entries:
        label = entry.label or entry.name
        if entry.grid:
            continue
        if label in seen:
            raise SuiteError(
                entry.key,
                f"{label!r} is listed twice (also {seen[label]}); give each a distinct label",
            )
        seen[label] = entry.key
    return entries


def _entry(item: Any, key: str) -> SuiteEntry:
    if isinstance(item, str):
        return SuiteEntry(name=item, key=key)
    if not isinstance(item, dict):
        raise SuiteError(key, f"expected a name or a table, got {type(item).__name__}")
    unknown = sorted(set(item) - ENTRY_KEYS)
    if unknown:
        raise SuiteError(f"{key}.{unknown[0]}", f"unknown key; allowed: {sorted(ENTRY_KEYS)}")
    if "name" not in item or not isinstance(item["name"], str):
        raise SuiteError(f"{key}.name", "is required and must be a string")
    for table in ("params", "grid", "train", "splits"):
        if not isinstance(item.get(table, {}), dict):
            raise SuiteError(f"{key}.{table}", "must be a table")
    grid = item.get("grid", {})
    for gkey, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{key}.grid.{gkey}", "must be a non-empty list of values")
        if gkey in item.get("params", {}):
            raise SuiteError(f"{key}.grid.{gkey}", "is also set in params; set it in one place")
    archs = item.get("architectures", [])
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise SuiteError(f"{key}.architectures", "must be a list of architecture names")
    label = item.get("label", "")
    if not isinstance(label, str):
        raise SuiteError(f"{key}.label", "must be a string")
    return SuiteEntry(
        name=item["name"],
        params=dict(item.get("params", {})),
        grid=dict(grid),
        label=label,
        key=key,
        architectures=tuple(archs),
        train=dict(item.get("train", {})),
        splits=dict(item.get("splits", {})),
    )


def _dataclass_from(cls: type, raw: Any, key: str) -> Any:
    if not isinstance(raw, dict):
        raise SuiteError(key, "must be a table")
    allowed = {f.name: f for f in fields(cls)}
    values = {}
    for name, value in raw.items():
        if name not in allowed:
            raise SuiteError(f"{key}.{name}", f"unknown key; allowed: {sorted(allowed)}")
        expected = type(allowed[name].default)
        ok = (isinstance(value, expected) and not isinstance(value, bool)) or (
            expected is bool and isinstance(value, bool)
        )
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if cls is SplitSizes and isinstance(value, int | float) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise SuiteError(
                f"{key}.{name}",
                f"expected {expected.__name__}, got {type(value).__name__} ({value!r})",
            )
        values[name] = value
    try:
        return cls(**values)
    except TaskError as exc:
        if exc.field:
            raise SuiteError(f"{key}.{exc.field}", exc.detail) from None
        raise SuiteError(key, str(exc)) from None
