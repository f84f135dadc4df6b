"""The ``costs`` evaluator: storage, prediction cost and retraining work, as reported."""

from __future__ import annotations

import math

import pytest
from torch import nn

from unlearnbench.builtin.evaluators import costs
from unlearnbench.specs import EvaluationInputs
from unlearnbench.testing import check_evaluator_contract, registry


def _evaluate(task, ctx, reported):
    model = nn.Identity()
    inputs = EvaluationInputs(
        task=task, original=model, unlearned=model, reference=model, costs=reported
    )
    return costs.create({}).evaluate(inputs, ctx)


def test_contract(make_tiny_task):
    metrics = check_evaluator_contract("costs", make_tiny_task)
    # check_evaluator_contract reports all three counters.
    assert metrics == {
        "storage_bytes": 1000.0,
        "prediction_cost": 1.0,
        "retrain_sample_epochs": 0.0,
    }


def test_every_metric_is_lower_is_better_with_a_unit():
    spec = registry().get("evaluator", "costs")
    for metric in spec.metrics:
        assert metric.direction == "lower"
        assert metric.unit


def test_missing_counters_are_omitted_not_invented(make_tiny_task):
    task, ctx = make_tiny_task()
    reported = {"unlearn_seconds": 2.0, "prediction_cost": 4, "blocks_retrained": 3.0}
    assert _evaluate(task, ctx, reported) == {"prediction_cost": 4.0}
    assert _evaluate(task, ctx, {"unlearn_seconds": 1.0}) == {}


def test_sisa_like_counters_pass_through(make_tiny_task):
    task, ctx = make_tiny_task()
    reported = {"storage_bytes": 5.0e6, "prediction_cost": 5.0, "retrain_sample_epochs": 1234.0}
    assert _evaluate(task, ctx, reported) == reported


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_counter_is_an_error_naming_it(make_tiny_task, bad):
    task, ctx = make_tiny_task()
    with pytest.raises(ValueError, match="storage_bytes"):
        _evaluate(task, ctx, {"storage_bytes": bad})
