"""The search space of one method entry: its tunable ``Param`` declarations over
their declared ranges, less what the suite pins, narrowed by ``[tuning.space]``.

Kept apart from the studies so a bad range is refused with the suite key it came
from before anything trains. See docs/tuning.md ("Search space").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unlearnbench.execution.plan import Component
from unlearnbench.execution.suite import Suite, SuiteError, TuningOptions
from unlearnbench.specs import MethodSpec, Param, ParamError

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its declaration and the range searched."""

    param: Param
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        p = self.param
        if self.choices:
            return trial.suggest_categorical(p.name, list(self.choices))
        if p.kind is int:
            return trial.suggest_int(p.name, math.ceil(self.low), math.floor(self.high), log=p.log)
        return trial.suggest_float(p.name, self.low, self.high, log=p.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return self.low <= value <= self.high

    def describe(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.param.log}


def search_space(
    spec: MethodSpec, component: Component, suite: Suite, given: Mapping[str, Any]
) -> list[Dimension]:
    """The dimensions searched for one method entry; bad names and ranges raise
    :class:`SuiteError` naming ``tuning.space.<label>.<name>``."""
    tuning = suite.tuning or TuningOptions()
    label = entry_label(suite, component)
    declared = {p.name: p for p in spec.params}
    tunables = {name: p for name, p in declared.items() if p.tunable}
    wanted = tuning.space.get(label)
    dims = []
    if wanted is None:
        for p in tunables.values():
            if p.name not in given:
                dims.append(_dimension(p, True, f"tuning.space.{label}.{p.name}"))
        return dims
    for name, value in wanted.items():
        key = f"tuning.space.{label}.{name}"
        if name not in tunables:
            what = "not a parameter" if name not in declared else "not tunable"
            raise SuiteError(
                key,
                f"is {what} of method {spec.name!r}; its tunables: {sorted(tunables) or 'none'}",
            )
        if name in given:
            raise SuiteError(key, "is also set in the method's params or grid; set it in one place")
        dims.append(_dimension(tunables[name], value, key))
    return dims


def _dimension(p: Param, value: Any, key: str) -> Dimension:
    declared = p.tuning_range()
    if value is True:
        if declared[0] == "choices":
            return Dimension(p, choices=tuple(declared[1:]))
        return Dimension(p, float(declared[0]), float(declared[1]))
    if not isinstance(value, list) or not value:
        raise SuiteError(key, f"expected true or a non-empty list, got {value!r}")
    if declared[0] == "choices":
        for item in value:
            if item not in declared[1:]:
                raise SuiteError(key, f"{item!r} is not one of {list(declared[1:])}")
        return Dimension(p, choices=tuple(value))
    if len(value) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise SuiteError(key, f"expected [low, high] (two numbers), got {value!r}")
    low, high = float(value[0]), float(value[1])
    if (p.kind is int and math.ceil(low) > math.floor(high)) or not low < high:
        raise SuiteError(key, f"empty range [{low:g}, {high:g}]")
    if p.log and low <= 0:
        raise SuiteError(key, f"a log range must start above 0, got {low:g}")
    for end in (low, high):
        try:
            p.coerce(int(end) if p.kind is int else end)
        except ParamError as exc:
            raise SuiteError(key, f"range end {exc}") from None
    return Dimension(p, low, high)


def entry_label(suite: Suite, component: Component) -> str:
    """The label of the suite's method entry the component comes from (the key of
    ``[tuning.space.<label>]``)."""
    entry = next((e for e in suite.methods if e.key == component.key), None)
    return (entry.label or entry.name) if entry is not None else component.label


def given_params(suite: Suite, component: Component) -> dict[str, Any]:
    """The parameters the suite sets for this component (params and grid point)."""
    entry = next((e for e in suite.methods if e.key == component.key), None)
    if entry is None:
        return {}
    return {**entry.params, **{k: component.params[k] for k in entry.grid}}
