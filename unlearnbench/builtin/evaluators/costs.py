"""``costs``: what a method keeps, what a prediction costs, how much it retrains.

Read from the counters the method reports in ``Unlearned.costs`` (over a
request stream the runner sums work counters and keeps the largest size):

- ``storage_bytes``: bytes the method keeps to be able to unlearn (SISA's S·R
  checkpoints, DeepObliviate's stored blocks).
- ``prediction_cost``: forward passes per prediction relative to one model
  (SISA: the number of shards).
- ``retrain_sample_epochs``: training examples processed while unlearning
  (examples x epochs), a machine-independent measure of work.

A counter the method does not report is left out, never invented. Lower is
better for all three. Declaring them here gives them a direction and a unit on
leaderboards (undeclared counters are shown without one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs, MethodContext

METRICS = (
    Metric(
        "storage_bytes",
        "lower",
        "bytes",
        "bytes the method stores to be able to unlearn",
        role="cost",
    ),
    Metric(
        "prediction_cost",
        "lower",
        "x",
        "forward passes per prediction relative to one model",
        role="cost",
    ),
    Metric(
        "retrain_sample_epochs",
        "lower",
        "samples",
        "training examples processed while unlearning (examples x epochs)",
        role="cost",
    ),
)


class Costs:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        out = {}
        for metric in METRICS:
            value = inputs.costs.get(metric.name)
            if value is None:
                continue
            value = float(value)
            if not math.isfinite(value) or value < 0:
                raise ValueError(
                    f"the method reported {metric.name}={value}; costs must be finite and >= 0"
                )
            out[metric.name] = value
        return out


def create(params: Mapping[str, Any]) -> Costs:
    return Costs()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [EvaluatorSpec(name="costs", create=create, metrics=METRICS, description=__doc__ or "")]
