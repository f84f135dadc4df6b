"""The ``unlearning_score`` evaluator: the NeurIPS 2023 unlearning challenge's score."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from unlearnbench.builtin.evaluators import model_count
from unlearnbench.builtin.evaluators import unlearning_score as us
from unlearnbench.specs import EvaluationInputs, resolve_params
from unlearnbench.task import TrainRecipe
from unlearnbench.testing import check_evaluator_contract, make_replicates

OVERFIT = {  # as tests/test_eval_lira.py: the original memorises its 300 points
    "dataset": "mnist1d",
    "dataset_params": {"samples": 1000},
    "architecture_params": {"widths": [128]},
    "recipe": TrainRecipe(epochs=40, batch_size=32, lr=0.003),
}


def _single_threshold_epsilon(a: np.ndarray, b: np.ndarray) -> float:
    """The challenge's single-threshold family on a 0.01 grid, its formula written out."""
    pos, neg = (a, b) if np.median(a) > np.median(b) else (b, a)
    best = 0.0
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    for t in np.linspace(lo, hi, int(np.ceil((hi - lo) * 100))):
        fnr, fpr = np.mean(pos < t), np.mean(neg >= t)
        if fpr == 0 and fnr == 0:
            return us.EPSILON_CAP
        if fpr == 0 or fnr == 0:
            continue
        with np.errstate(invalid="ignore"):
            eps = np.nanmax(
                [np.log(1 - us.DELTA - fpr) - np.log(fnr), np.log(1 - us.DELTA - fnr) - np.log(fpr)]
            )
        best = max(best, float(np.nan_to_num(eps, nan=0.0)))
    return best


def test_epsilon_limits():
    same = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    assert us.example_epsilon(same, same.copy()) == 0.0
    assert us.example_epsilon(same, same + 10) == us.EPSILON_CAP  # separable
    peaky = np.array([1.0, 1.0, 1.0, 1.001, 1.0])
    assert us.example_epsilon(peaky, same) == us.EPSILON_CAP


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 2.0])
def test_epsilon_is_at_least_the_challenge_single_threshold_attack(shift):
    rng = np.random.default_rng(int(shift * 10))
    a, b = rng.normal(size=32), rng.normal(size=32) + shift
    mine = us.example_epsilon(a, b)
    assert mine >= _single_threshold_epsilon(a, b) - 1e-9
    assert 0.0 <= mine <= us.EPSILON_CAP


def test_epsilon_of_one_rule_by_hand():
    # a: 3 of 4 below 1.5, b: 1 of 4 below 1.5. The best rule here is phi < 1.5:
    # FPR = 1/4, FNR = 1/4 -> eps = log(1 - delta - 1/4) - log(1/4) = log(3 - 4 delta)
    a = np.array([0.0, 1.0, 1.2, 2.0])
    b = np.array([1.0 + 0.1, 2.0, 2.5, 3.0])
    assert us.example_epsilon(a, b) == pytest.approx(np.log(3 - 4 * us.DELTA))


def test_points_per_bin():
    # 8 models: ceil(ln 7) = 2, so bins [0, .5), [.5, 1), [1, 1.5), [1.5, 2)
    assert [us.example_points(e, 8) for e in (0.0, 0.49, 0.5, 1.2, 1.9, 2.0, 50.0)] == [
        1.0,
        1.0,
        0.5,
        0.25,
        0.125,
        0.0,
        0.0,
    ]
    assert us.example_points(6.9, 512) == 0.5**13 and us.example_points(7.0, 512) == 0.0


def test_contract(make_tiny_task):
    metrics = check_evaluator_contract("unlearning_score", make_tiny_task, params={"models": 3})
    assert set(metrics) == {m.name for m in us.METRICS}
    assert 0.0 <= metrics["unlearning_forget_quality"] <= 1.0


def test_few_models_warn(caplog, monkeypatch):
    monkeypatch.setattr(model_count, "_warned", set())
    with caplog.at_level(logging.WARNING):
        us.create(resolve_params(us.PARAMS, {"models": 4}))
    assert "512" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        us.create(resolve_params(us.PARAMS, {"models": 8}))
    assert caplog.text == ""


def _score(task, ctx, method: str, models: int) -> dict[str, float]:
    original = ctx.original()
    inputs = EvaluationInputs(
        task=task,
        original=original,
        unlearned=original,
        reference=original,
        costs={},
        replicates=make_replicates(task, ctx, method),
    )
    return us.create({"models": models}).evaluate(inputs, ctx).metrics


def test_retrain_against_itself_is_perfect(make_tiny_task):
    task, ctx = make_tiny_task()
    metrics = _score(task, ctx, "retrain", 3)  # the same replicates on both sides: ε = 0
    assert metrics["unlearning_forget_quality"] == 1.0
    assert metrics["unlearning_score"] == 1.0
    assert metrics["unlearning_score_sample_passes"] > 0


def test_the_original_scores_below_retrain_on_an_overfit_task(make_tiny_task):
    task, ctx = make_tiny_task(**OVERFIT)
    retrain = _score(task, ctx, "retrain", 4)
    original = _score(task, ctx, "original", 4)
    assert retrain["unlearning_forget_quality"] == 1.0
    assert original["unlearning_forget_quality"] < 0.5
    assert original["unlearning_score"] < retrain["unlearning_score"]
