"""``accuracy``: accuracy of the unlearned model on test, retain and forget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs
from unlearnbench.task import MethodContext
from unlearnbench.training import accuracy

METRICS = (
    Metric("test_accuracy", "higher", "fraction", "accuracy on the test split"),
    Metric("retain_accuracy", "higher", "fraction", "accuracy on the retained target points"),
    Metric(
        "forget_accuracy",
        "none",
        "fraction",
        "accuracy on the forgotten points (compare with retrain's, not maximise)",
    ),
)


class Accuracy:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        task, model = inputs.task, inputs.unlearned
        s = task.splits
        return {
            "test_accuracy": accuracy(model, task.x[s.test], task.y[s.test]),
            "retain_accuracy": accuracy(model, task.x[s.retain], task.y[s.retain]),
            "forget_accuracy": accuracy(model, task.x[s.forget], task.y[s.forget]),
        }


def create(params: Mapping[str, Any]) -> Accuracy:
    return Accuracy()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [EvaluatorSpec(name="accuracy", create=create, metrics=METRICS, description=__doc__)]
