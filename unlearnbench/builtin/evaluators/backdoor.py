"""``backdoor``: backdoor-based unlearning verification (seed 002, after Sommer et al.).

For a ``backdoor`` forget request the forget set is poisoned before training:
each point carries the task's trigger and the label ``target_class``. A model
that still remembers those points maps triggered inputs to the target class;
one that never saw them (retrain) does not. ``backdoor_success`` is the share
of triggered test inputs classified as ``target_class``.

By default every test point is triggered and counted, the target class
included, so a clean model scores about 1/classes: the issue's definition, and
DeepObliviate's Table VI (about 11% for naive retraining on ten classes).
``include_target_class = false`` counts only test points whose true label is
not the target class, which reads 0 for a clean, accurate model.
The metric is computed for the evaluated (unlearned) model only: the original
and retrain are rows of their own. A task without a backdoor yields no metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.specs import EvaluationInputs
from unlearnbench.task import MethodContext
from unlearnbench.training import predict_logits

PARAMS = (
    Param(
        "include_target_class",
        True,
        "count test points of the target class too (a clean model then scores ~1/classes)",
    ),
)

METRICS = (
    Metric(
        "backdoor_success",
        "lower",
        "fraction",
        "share of triggered test inputs (true label != target class) classified as the target",
    ),
)


class BackdoorSuccess:
    def __init__(self, params: Mapping[str, Any]) -> None:
        self.include_target = bool(params["include_target_class"])

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        task = inputs.task
        backdoor = task.backdoor
        if backdoor is None:
            return {}
        test = task.splits.test
        if not self.include_target:
            test = test[task.y[test] != backdoor.target_class]
        if test.numel() == 0:
            return {}
        triggered = backdoor.apply(task.x[test])
        predicted = predict_logits(inputs.unlearned, triggered).argmax(1)
        return {"backdoor_success": float((predicted == backdoor.target_class).float().mean())}


def create(params: Mapping[str, Any]) -> BackdoorSuccess:
    return BackdoorSuccess(params)


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="backdoor",
            create=create,
            metrics=METRICS,
            params=PARAMS,
            description=__doc__ or "",
        )
    ]
