"""The ``unlearning_score`` evaluator: the NeurIPS 2023 unlearning challenge's score."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from tests.replicate_source import Recording
from unlearnbench.builtin.evaluators import model_count
from unlearnbench.builtin.evaluators import unlearning_score as us
from unlearnbench.builtin.evaluators.replicate_sides import INDEPENDENT, LABEL
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
    # the contract's method (original) has no naive retraining: no naive comparison
    assert set(metrics) == {m.name for m in us.METRICS if "_naive" not in m.name}
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


def _score(task, ctx, method: str, models: int, naive=None, source=None) -> dict[str, float]:
    original = ctx.original()
    inputs = EvaluationInputs(
        task=task,
        original=original,
        unlearned=original,
        reference=original,
        costs={},
        naive=naive,
        replicates=source or make_replicates(task, ctx, method),
    )
    return us.create({"models": models}).evaluate(inputs, ctx).metrics


def _same(a, b) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_retrain_is_scored_against_independent_retrain_replicates(make_tiny_task, monkeypatch):
    """Retrain's row: its replicates against other training randomisations of retrain,
    never against themselves (which scored exactly 1 whatever the number of models)."""
    task, ctx = make_tiny_task()
    source = Recording(make_replicates(task, ctx, "retrain"))
    compared = []
    real = us.challenge_score
    monkeypatch.setattr(
        us, "challenge_score", lambda sides, *a: compared.append(sides) or real(sides, *a)
    )
    metrics = _score(task, ctx, "retrain", 3, source=source)
    assert source.calls == [(3, LABEL, False), (3, INDEPENDENT, False)]
    (sides,) = compared
    mine, others = source.given
    assert [id(m) for m in sides.unlearned] == [id(r.unlearned) for r in mine]
    assert [id(m) for m in sides.other] == [id(r.retrained) for r in others]
    for a in sides.unlearned:  # two disjoint sets of distinct models
        assert not any(_same(a, b) for b in sides.other)
    assert metrics["unlearning_forget_quality"] < 1.0
    assert metrics["unlearning_score"] < 1.0
    work = sum(r.work for r in mine) + sum(r.work for r in others)
    assert metrics["unlearning_score_sample_passes"] == pytest.approx(work)


def test_retrains_ceiling_with_8_models_a_side_is_well_below_one(make_tiny_task):
    """Two independent sets of 8 retrainings: the ceiling at N = 8 (about 0.17 in the
    issue's simulation) is nowhere near 1."""
    task, ctx = make_tiny_task()
    metrics = _score(task, ctx, "retrain", 8)
    assert metrics["unlearning_forget_quality"] < 0.6
    assert metrics["unlearning_score"] < 0.6


def test_indistinguishable_samples_score_well_below_one_at_8_models():
    """The issue's simulation replayed: per example both sides are 8 draws of one
    Gaussian (a method truly indistinguishable from retraining)."""
    rng = np.random.default_rng(0)
    mu, sd = rng.normal(size=100) * 3, rng.uniform(0.5, 2.0, size=100)
    a, b = rng.normal(mu, sd, size=(8, 100)), rng.normal(mu, sd, size=(8, 100))
    quality, _ = us.forget_quality(a, b)
    assert 0.05 < quality < 0.4
    assert us.forget_quality(a, a.copy())[0] == 1.0  # what comparing with itself gave


def test_the_original_scores_below_retrain_on_an_overfit_task(make_tiny_task):
    task, ctx = make_tiny_task(**OVERFIT)
    retrain = _score(task, ctx, "retrain", 4)
    original = _score(task, ctx, "original", 4)
    assert retrain["unlearning_forget_quality"] < 1.0  # the ceiling at N = 4, not 1
    assert original["unlearning_forget_quality"] < 0.5
    assert original["unlearning_score"] < retrain["unlearning_score"]
    assert not any("_naive" in name for name in retrain | original)


def test_sisa_is_also_scored_against_its_own_naive_retraining(make_tiny_task, monkeypatch):
    task, ctx = make_tiny_task(**OVERFIT)
    source = Recording(make_replicates(task, ctx, "sisa"))
    compared = []
    real = us.challenge_score
    monkeypatch.setattr(
        us, "challenge_score", lambda sides, *a: compared.append(sides) or real(sides, *a)
    )
    metrics = _score(task, ctx, "sisa", 4, naive=ctx.original(), source=source)
    assert source.calls == [(4, LABEL, False), (4, INDEPENDENT, True)]
    mine, others = source.given
    standard, own = compared
    assert [id(m) for m in own.other] == [id(r.naive) for r in others]
    assert all(r.naive is not None for r in others) and all(r.naive is None for r in mine)
    assert [id(m) for m in standard.other] == [id(r.retrained) for r in mine]
    # SISA is exact under its own procedure, far from standard retraining's outputs
    assert metrics["unlearning_forget_quality_naive"] > metrics["unlearning_forget_quality"]
    assert metrics["unlearning_score_naive"] > metrics["unlearning_score"]
