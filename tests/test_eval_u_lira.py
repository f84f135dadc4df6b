"""The ``u_lira`` evaluator: U-LiRA (Hayes et al. 2024) on the method's replicates."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.replicate_source import Recording
from unlearnbench.builtin.evaluators import model_count, u_lira
from unlearnbench.builtin.evaluators.replicate_sides import INDEPENDENT, LABEL
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
    # the contract's method (original) has no naive retraining: no naive comparison
    assert set(metrics) == {m.name for m in u_lira.METRICS if "_naive" not in m.name}
    for value in metrics.values():
        assert 0.0 <= value <= 1.0


def test_gaussians_pooled_and_per_point():
    phi = torch.tensor([[1.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    mean, sd = u_lira.gaussian(phi, fixed_variance=False)
    assert mean.tolist() == [2.0, 2.0] and sd.tolist() == pytest.approx([2**0.5, 8**0.5])
    _, pooled = u_lira.gaussian(phi, fixed_variance=True)
    assert pooled.tolist() == pytest.approx([5**0.5] * 2)


def _evaluate(
    task, ctx, method: str, unlearned, models: int, naive=None, source=None
) -> dict[str, float]:
    reference = run_unlearning(get_registry().get("method", "retrain"), task, ctx).model
    inputs = EvaluationInputs(
        task=task,
        original=ctx.original(),
        unlearned=reference if unlearned is None else unlearned,
        reference=reference,
        costs={},
        naive=naive,
        replicates=source or make_replicates(task, ctx, method),
    )
    return u_lira.create({"models": models}).evaluate(inputs, ctx).metrics


def test_retrain_is_attacked_with_independent_retrains_and_the_original_high(
    make_tiny_task, monkeypatch
):
    task, ctx = make_tiny_task(**OVERFIT)
    source = Recording(make_replicates(task, ctx, "retrain"))
    scored = []
    real = u_lira.Ratio.score
    monkeypatch.setattr(u_lira.Ratio, "score", lambda self, m: scored.append(m) or real(self, m))
    retrain = _evaluate(task, ctx, "retrain", None, 4, source=source)
    # the out side and the positive: other training randomisations of retrain
    assert source.calls == [(4, LABEL, False), (5, INDEPENDENT, False)]
    mine, others = source.given
    assert scored[0] is others[4].retrained  # the positive: a retrain in neither sample
    assert all(not _same(others[4].retrained, r.unlearned) for r in mine)
    # not exactly 0.5 as a model against itself: the floor at 4 replicates
    assert retrain["u_lira_auc"] != 0.5 and retrain["u_lira_auc_gap"] > 0.0
    original = _evaluate(task, ctx, "original", ctx.original(), 4)
    assert original["u_lira_auc"] > 0.8 and original["u_lira_auc_gap"] > 0.3
    assert original["u_lira_auc_gap"] > retrain["u_lira_auc_gap"]
    assert original["u_lira_strength"] == pytest.approx(original["u_lira_auc"])
    assert retrain["u_lira_strength"] == pytest.approx(original["u_lira_strength"])
    assert not any("_naive" in name for name in retrain | original)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_sisa_is_also_attacked_against_its_own_naive_retraining(make_tiny_task):
    task, ctx = make_tiny_task(**OVERFIT)
    sisa = run_unlearning(get_registry().get("method", "sisa"), task, ctx).model
    source = Recording(make_replicates(task, ctx, "sisa"))
    metrics = _evaluate(task, ctx, "sisa", sisa, 4, naive=sisa, source=source)
    assert source.calls == [(4, LABEL, False), (5, INDEPENDENT, True)]
    assert all(r.naive is not None for r in source.given[1])
    for name in ("u_lira_naive_auc", "u_lira_naive_tpr_at_1fpr"):
        assert 0.0 <= metrics[name] <= 1.0
        assert metrics[f"{name}_gap"] == pytest.approx(
            abs(metrics[name] - (0.5 if name.endswith("auc") else 0.0))
        )
    # exact under its own procedure: closer to its naive retraining than to retrain's
    assert metrics["u_lira_naive_auc_gap"] < metrics["u_lira_auc_gap"]


def test_few_models_warn(caplog, monkeypatch):
    monkeypatch.setattr(model_count, "_warned", set())
    with caplog.at_level(logging.WARNING):
        u_lira.create(resolve_params(u_lira.PARAMS, {"models": 4}))
    assert "u_lira" in caplog.text
