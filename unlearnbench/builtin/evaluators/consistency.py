"""``consistency``: share of test points where the unlearned model and the
reference (retrain) predict the same label (DeepObliviate's consistency).

``naive_consistency``: the same agreement with exact retraining under the
method's own training procedure (DeepObliviate's "Naive" columns, Definition 1
of paper 002), reported by methods that change the procedure (SISA,
DeepObliviate): how exact the shortcut is, apart from how good the procedure is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs, MethodContext
from unlearnbench.training import predict_logits


class Consistency:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        x = inputs.task.x[inputs.task.splits.test]
        ours = predict_logits(inputs.unlearned, x).argmax(1)
        out = {"consistency": agreement(ours, inputs.reference, x)}
        if inputs.naive is not None:
            out["naive_consistency"] = agreement(ours, inputs.naive, x)
        return out


def agreement(labels: torch.Tensor, model: nn.Module, x: torch.Tensor) -> float:
    """Share of ``x`` where ``model`` predicts ``labels``."""
    return float((predict_logits(model, x).argmax(1) == labels).float().mean())


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
                Metric(
                    "naive_consistency",
                    "higher",
                    "fraction",
                    "agreement on test with exact retraining under the method's own procedure",
                ),
            ),
            description=__doc__,
        )
    ]
