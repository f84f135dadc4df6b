"""``accuracy``: accuracy of the unlearned model on test, retain and forget.

For a method that changes the training procedure and so defines a naive
retraining under its own procedure (SISA, DeepObliviate),
``naive_test_accuracy_gap`` is |test accuracy - that of the naive model|: how
much the shortcut costs against the procedure's own exact retraining, beside
the gap to ``retrain`` that the leaderboard computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs, MethodContext
from unlearnbench.training import accuracy

METRICS = (
    Metric(
        "test_accuracy",
        "higher",
        "fraction",
        "accuracy on the test split",
        role="utility",
        avg_gap=True,
    ),
    Metric(
        "retain_accuracy",
        "higher",
        "fraction",
        "accuracy on the retained target points (memorisation, not quality: not a "
        "utility role, since a sharded model memorises less and is not collapsed)",
        avg_gap=True,
    ),
    Metric(
        "forget_accuracy",
        "none",
        "fraction",
        "accuracy on the forgotten points (compare with retrain's, not maximise)",
        role="forgetting",
        avg_gap=True,
    ),
    Metric(
        "naive_test_accuracy_gap",
        "lower",
        "fraction",
        "|test accuracy - that of exact retraining under the method's own procedure| "
        "(methods that change the training procedure only)",
    ),
)


class Accuracy:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        task, model = inputs.task, inputs.unlearned
        s = task.splits
        test_x, test_y = task.x[s.test], task.y[s.test]
        out = {
            "test_accuracy": accuracy(model, test_x, test_y),
            "retain_accuracy": accuracy(model, task.x[s.retain], task.y[s.retain]),
            "forget_accuracy": accuracy(model, task.x[s.forget], task.y[s.forget]),
        }
        if inputs.naive is not None:
            naive = accuracy(inputs.naive, test_x, test_y)
            out["naive_test_accuracy_gap"] = abs(out["test_accuracy"] - naive)
        return out


def create(params: Mapping[str, Any]) -> Accuracy:
    return Accuracy()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [EvaluatorSpec(name="accuracy", create=create, metrics=METRICS, description=__doc__)]
