"""``consistency``: share of test points where the unlearned model and the
reference (retrain) predict the same label (DeepObliviate's consistency)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs
from unlearnbench.task import MethodContext
from unlearnbench.training import predict_logits


class Consistency:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        x = inputs.task.x[inputs.task.splits.test]
        ours = predict_logits(inputs.unlearned, x).argmax(1)
        theirs = predict_logits(inputs.reference, x).argmax(1)
        return {"consistency": float((ours == theirs).float().mean())}


def create(params: Mapping[str, Any]) -> Consistency:
    return Consistency()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="consistency",
            create=create,
            metrics=(
                Metric("consistency", "higher", "fraction", "agreement with retrain on test"),
            ),
            description=__doc__,
        )
    ]
