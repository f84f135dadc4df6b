"""``backdoor``: backdoor-based unlearning verification (seed 002, after Sommer et al.).

For a ``backdoor`` forget request the forget set is poisoned before training:
each point carries the task's trigger and the label ``target_class``. A model
that still remembers those points maps triggered inputs to the target class;
one that never saw them (retrain) does not. ``backdoor_success`` is the share
of triggered test inputs classified as ``target_class``.

By default every test point is triggered and counted, the target class
included, so a clean model scores about 1/classes: DeepObliviate's Table VI
(about 11% for naive retraining on ten classes).
``include_target_class = false`` counts only test points whose true label is
not the target class, which reads 0 for a clean, accurate model.

The target is retrain's value, not 0: a model that never predicts the target
class scores below retrain and has not "forgotten better", so the board judges
``backdoor_success`` by ``backdoor_success_gap``, its distance to the
reference's value. ``backdoor_strength`` is the standard original model's
success rate: a trigger the original did not learn (below 0.5) verifies
nothing, and the board marks the backdoor metrics of that group as
uninformative.

``backdoor_success_before`` is the success on the model the method unlearns
from (``inputs.trained``): its own trained model for a method that owns its
training (SISA's ensemble, DeepObliviate's stored training), else the
original. Only where that model kept the trigger (at least
``BACKDOOR_LEARNED`` = 0.5) does a low success after unlearning show that
unlearning removed it: DeepObliviate's block training forgets points of an
early block by itself (issue 23: 9% success with the poisoned points in
block 1 of 100, 63% in block 60). It is an ``attack_strength`` metric that
differs between rows, so the board marks the backdoor metrics of just the
rows below 0.5 as uninformative (the claim is not tested there). A task
without a backdoor yields no metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from unlearnbench import EvaluatorSpec, Metric, Param, hookimpl
from unlearnbench.specs import EvaluationInputs, MethodContext
from unlearnbench.training import predict_logits

PARAMS = (
    Param(
        "include_target_class",
        True,
        "count test points of the target class too (a clean model then scores ~1/classes)",
    ),
)

BACKDOOR_LEARNED = 0.5
"""Documented threshold: the check is informative when the model (the original
for ``backdoor_strength``, the one the method unlearns from for
``backdoor_success_before``) maps at least half the triggered test inputs to
the target class."""

METRICS = (
    Metric(
        "backdoor_success",
        "none",  # retrain's value is the target: see backdoor_success_gap
        "fraction",
        "share of triggered test inputs classified as the target class (test points of the "
        "target class included unless include_target_class = false)",
        role="attack",
    ),
    Metric(
        "backdoor_success_gap",
        "lower",
        "fraction",
        "|backdoor_success of the evaluated model - that of the reference (retrain)|",
        role="attack",
    ),
    Metric(
        "backdoor_strength",
        "higher",
        "fraction",
        "backdoor_success of the original model: below 0.5 the trigger was never learned "
        "and the check verifies nothing",
        role="attack_strength",
        informative_above=BACKDOOR_LEARNED,
    ),
    Metric(
        "backdoor_success_before",
        "higher",
        "fraction",
        "backdoor_success of the model the method unlearns from (its own trained model, "
        "else the original): below 0.5 that model never kept the trigger and the row's "
        "backdoor metrics verify nothing",
        role="attack_strength",
        informative_above=BACKDOOR_LEARNED,
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

        def success(model: nn.Module) -> float:
            predicted = predict_logits(model, triggered).argmax(1)
            return float((predicted == backdoor.target_class).float().mean())

        ours = success(inputs.unlearned)
        original = success(inputs.original)
        before = original if inputs.trained is inputs.original else success(inputs.trained)
        return {
            "backdoor_success": ours,
            "backdoor_success_gap": abs(ours - success(inputs.reference)),
            "backdoor_strength": original,
            "backdoor_success_before": before,
        }


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
