"""The ``u_lira`` evaluator: U-LiRA (Hayes et al. 2024) on the method's replicates."""

from __future__ import annotations

import logging

import pytest
import torch

from unlearnbench.builtin.evaluators import model_count, u_lira
from unlearnbench.specs import EvaluationInputs, resolve_params
from unlearnbench.task import TrainRecipe
from unlearnbench.testing import check_evaluator_contract, make_replicates, run_unlearning
from unlearnbench.testing import registry as get_registry

OVERFIT = {  # as tests/test_eval_lira.py: the original memorises its 300 points
    "dataset": "mnist1d",
    "dataset_params": {"samples": 1000},
    "architecture_params": {"widths": [128]},
    "recipe": TrainRecipe(epochs=40, batch_size=32, lr=0.003),
}


def test_contract(make_tiny_task):
    metrics = check_evaluator_contract("u_lira", make_tiny_task, params={"models": 3})
    assert set(metrics) == {m.name for m in u_lira.METRICS}
    for value in metrics.values():
        assert 0.0 <= value <= 1.0


def test_gaussians_pooled_and_per_point():
    phi = torch.tensor([[1.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    mean, sd = u_lira.gaussian(phi, fixed_variance=False)
    assert mean.tolist() == [2.0, 2.0] and sd.tolist() == pytest.approx([2**0.5, 8**0.5])
    _, pooled = u_lira.gaussian(phi, fixed_variance=True)
    assert pooled.tolist() == pytest.approx([5**0.5] * 2)


def _evaluate(task, ctx, method: str, unlearned, models: int) -> dict[str, float]:
    reference = run_unlearning(get_registry().get("method", "retrain"), task, ctx).model
    inputs = EvaluationInputs(
        task=task,
        original=ctx.original(),
        unlearned=reference if unlearned is None else unlearned,
        reference=reference,
        costs={},
        replicates=make_replicates(task, ctx, method),
    )
    return u_lira.create({"models": models}).evaluate(inputs, ctx).metrics


def test_retrain_scores_one_half_and_the_original_high(make_tiny_task):
    task, ctx = make_tiny_task(**OVERFIT)
    retrain = _evaluate(task, ctx, "retrain", None, 4)
    assert retrain["u_lira_auc"] == 0.5 and retrain["u_lira_auc_gap"] == 0.0
    assert retrain["u_lira_tpr_at_1fpr_gap"] == 0.0
    original = _evaluate(task, ctx, "original", ctx.original(), 4)
    assert original["u_lira_auc"] > 0.8 and original["u_lira_auc_gap"] > 0.3
    assert original["u_lira_strength"] == pytest.approx(original["u_lira_auc"])
    assert retrain["u_lira_strength"] == pytest.approx(original["u_lira_strength"])


def test_few_models_warn(caplog, monkeypatch):
    monkeypatch.setattr(model_count, "_warned", set())
    with caplog.at_level(logging.WARNING):
        u_lira.create(resolve_params(u_lira.PARAMS, {"models": 4}))
    assert "u_lira" in caplog.text
