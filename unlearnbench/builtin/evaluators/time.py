"""``time``: wall time of the unlearning step and speed-up over the reference.

``speedup`` = reference (retrain) seconds / method seconds, both the timed
``unlearn`` step summed over a request stream. Methods that do nothing get a
huge speed-up; the time is floored at one microsecond to stay finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs
from unlearnbench.task import MethodContext

FLOOR_SECONDS = 1e-6


class Time:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        seconds = float(inputs.costs["unlearn_seconds"])
        reference = float(inputs.costs["reference_seconds"])
        return {
            "unlearn_seconds": seconds,
            "speedup": reference / max(seconds, FLOOR_SECONDS),
        }


def create(params: Mapping[str, Any]) -> Time:
    return Time()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="time",
            create=create,
            metrics=(
                Metric("unlearn_seconds", "lower", "s", "wall time of the unlearning step"),
                Metric("speedup", "higher", "x", "reference seconds / method seconds"),
            ),
            description=__doc__,
        )
    ]
