"""The ``lira`` evaluator: LiRA (Carlini et al. 2022) with K reference models per task."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from scipy.stats import norm
from torch import nn

from unlearnbench.builtin.evaluators import lira, mia, model_count
from unlearnbench.builtin.evaluators import lira_reference as reference
from unlearnbench.builtin.evaluators.strength import membership_auc
from unlearnbench.specs import Evaluation, EvaluationInputs, resolve_params
from unlearnbench.task import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import check_evaluator_contract

OVERFIT = {  # as tests/test_eval_attacks.py: the original memorises its 300 points
    "dataset": "mnist1d",
    "dataset_params": {"samples": 1000},
    "architecture_params": {"widths": [128]},
    "recipe": TrainRecipe(epochs=40, batch_size=32, lr=0.003),
}


def _inputs(task, original, unlearned, ref) -> EvaluationInputs:
    return EvaluationInputs(
        task=task, original=original, unlearned=unlearned, reference=ref, costs={}
    )


def _retrained(task, ctx) -> nn.Module:
    model = task.new_model("init")
    ctx.train(model, task.splits.target, exclude=task.splits.forget)
    return model


@pytest.mark.parametrize(
    "params",
    [{}, {"variant": "offline", "fixed_variance": False, "stacked": "off", "models": 8}],
)
def test_contract(make_tiny_task, params):
    metrics = check_evaluator_contract("lira", make_tiny_task, params=params)
    assert set(metrics) == {m.name for m in lira.METRICS}
    for value in metrics.values():
        assert 0.0 <= value <= 1.0


def test_phi_is_the_logit_of_the_true_label_and_stays_finite():
    logits = torch.tensor([[2.0, 0.5, -1.0], [100.0, 0.0, 0.0], [0.0, 0.0, -200.0]])
    y = torch.tensor([0, 0, 2])
    phi = reference.phi_from_logits(logits, y)
    p = torch.softmax(logits[0].double(), 0)[0]
    assert float(phi[0]) == pytest.approx(float(torch.log(p / (1 - p))))
    assert float(phi[1]) == pytest.approx(100.0 - math.log(2.0))  # p_y rounds to 1 in float
    assert float(phi[2]) == pytest.approx(-200.0 - math.log(2.0))  # p_y underflows


def test_an_ensemble_is_read_through_its_posteriors():
    class Votes(nn.Module):  # forward: votes; posteriors: the real mean softmax
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 2)

        def posteriors(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.8, 0.2]]).expand(x.shape[0], 2)

    phi = reference.model_phi(Votes(), torch.zeros(3, 4), torch.tensor([0, 1, 0]))
    expected = torch.tensor([math.log(4.0), -math.log(4.0), math.log(4.0)], dtype=torch.float64)
    assert torch.allclose(phi, expected)


@pytest.mark.parametrize(("size", "models"), [(10, 4), (11, 4), (11, 5), (700, 16)])
def test_halves_put_every_point_in_about_half_the_models(size, models):
    pool = torch.arange(100, 100 + size)
    parts = reference.halves(pool, models, seed=3)
    assert len(parts) == models
    assert {p.numel() for p in parts} == {size // 2}  # one size: one stacked step count
    for part in parts:
        assert torch.isin(part, pool).all() and part.unique().numel() == part.numel()
    ins = torch.stack([torch.isin(pool, p) for p in parts]).sum(0)
    if size % 2 == 0 and models % 2 == 0:
        assert set(ins.tolist()) == {models // 2}
    else:  # a point set aside by one pair, or an unpaired last model
        assert ins.min() >= models // 2 - 1 and ins.max() <= models // 2 + 1
        assert (models - ins).min() >= models // 2 - 1
    again = reference.halves(pool, models, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(parts, again, strict=True))


def test_reference_models_train_on_as_many_points_as_the_target(make_tiny_task):
    """The tiny task: 300 target, 100 non-member, 150 + 150 shadow points. Every
    reference model trains on 300 points (not half of the 700), and every pool
    point, the scored ones above all, is in for exactly half of the models."""
    task, ctx = make_tiny_task()
    s = task.splits
    ref = reference.reference_phi(task, ctx, 6, stacked=True)
    keep, pool = ref["keep"], ref["pool"]
    assert keep.sum(1).tolist() == [s.target.numel()] * 6
    assert keep.sum(0).tolist() == [3] * pool.numel()  # in for half, out for half
    assert pool.numel() == 2 * s.target.numel()
    assert torch.isin(torch.cat([s.target, s.nonmember]), pool).all()
    shadow = torch.cat([s.shadow_in, s.shadow_out])
    assert torch.isin(pool, torch.cat([s.target, s.nonmember, shadow])).all()
    assert ctx.work == 6 * 300 * task.recipe.epochs
    old = reference.reference_phi(task, ctx, 6, stacked=True, size="half_pool")
    assert old["keep"].sum(1).tolist() == [350] * 6  # halves of the 700-point pool


def test_a_pool_too_small_for_models_of_the_targets_size_is_refused(make_tiny_task):
    no_shadow = SplitSizes(target=300, nonmember=100, test=200, shadow_in=0, shadow_out=150)
    task, ctx = make_tiny_task(splits=no_shadow)  # 550 points, 600 needed
    with pytest.raises(ValueError, match=r"2 x 300 = 600 points.*550.*size = 'half_pool'"):
        reference.pool_of(task)
    many_nonmembers = SplitSizes(target=200, nonmember=450, test=100, shadow_in=0, shadow_out=0)
    task, ctx = make_tiny_task(splits=many_nonmembers)  # 650 scored points > 2 x 200
    with pytest.raises(ValueError, match="650 of them scored"):
        lira.create({"models": 4}).evaluate(_inputs(task, *[ctx.original()] * 3), ctx)
    assert reference.pool_of(task, "half_pool").numel() == 650


def _reference(phi: list[list[float]], keep: list[list[bool]]) -> dict[str, torch.Tensor]:
    return {
        "pool": torch.arange(len(phi[0])),
        "phi": torch.tensor(phi, dtype=torch.float64),
        "keep": torch.tensor(keep),
    }


def test_gaussians_and_scores_follow_the_formulas():
    # 4 models, 2 points; point 0 is in for models 0, 1; point 1 for models 2, 3
    ref = _reference(
        [[3.0, 0.0], [5.0, 1.0], [0.0, 6.0], [2.0, 2.0]],
        [[True, False], [True, False], [False, True], [False, True]],
    )
    per_point = lira.Gaussians(ref, fixed_variance=False)
    assert per_point.mu_in.tolist() == [4.0, 4.0] and per_point.mu_out.tolist() == [1.0, 0.5]
    assert per_point.sd_in.tolist() == pytest.approx([math.sqrt(2.0), math.sqrt(8.0)])
    assert per_point.sd_out.tolist() == pytest.approx([math.sqrt(2.0), math.sqrt(0.5)])
    fixed = lira.Gaussians(ref, fixed_variance=True)  # pooled within-point variance
    assert fixed.sd_in.tolist() == pytest.approx([math.sqrt(5.0)] * 2)
    assert fixed.sd_out.tolist() == pytest.approx([math.sqrt(1.25)] * 2)

    observed = torch.tensor([3.5, -1.0], dtype=torch.float64)
    points = torch.tensor([0, 1])
    online = per_point.score(observed, points, "online")
    expected = norm.logpdf([3.5, -1.0], [4.0, 4.0], [math.sqrt(2), math.sqrt(8)]) - norm.logpdf(
        [3.5, -1.0], [1.0, 0.5], [math.sqrt(2), math.sqrt(0.5)]
    )
    assert online.tolist() == pytest.approx(expected.tolist())
    offline = per_point.score(observed, points, "offline")
    assert offline.tolist() == pytest.approx([2.5 / math.sqrt(2), -1.5 / math.sqrt(0.5)])
    with pytest.raises(ValueError, match="not in the reference"):
        per_point.score(observed, torch.tensor([0, 7]), "online")


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_stacked_and_one_by_one_give_the_same_statistics(make_tiny_task, optimizer):
    recipe = TrainRecipe(epochs=3, batch_size=32, lr=0.01, optimizer=optimizer, weight_decay=1e-3)
    task, ctx = make_tiny_task(recipe=recipe)
    stacked = reference.reference_phi(task, ctx, 4, stacked=True)
    work = ctx.work
    one_by_one = reference.reference_phi(task, ctx, 4, stacked=False)
    assert ctx.work == pytest.approx(2 * work) and work == 4 * 300 * 3  # the target's 300
    assert torch.equal(stacked["keep"], one_by_one["keep"])
    assert torch.equal(stacked["pool"], one_by_one["pool"])
    assert float(stacked["phi"].std()) > 0.1  # the models learned something per point
    assert torch.allclose(stacked["phi"], one_by_one["phi"], atol=1e-4, rtol=0)


def test_stacked_auto_picks_mlps_on_cpu_and_refuses_what_it_cannot_stack(make_tiny_task):
    task, _ = make_tiny_task()
    mlp = task.new_model()
    assert reference.use_stacked("auto", mlp, task) is True
    assert reference.use_stacked("off", mlp, task) is False
    conv = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 2, 3), nn.Flatten())
    assert reference.use_stacked("auto", conv, task) is False  # slower stacked on CPU
    assert reference.use_stacked("on", conv, task) is True
    dropout = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Dropout(0.5))
    assert reference.use_stacked("auto", dropout, task) is False
    with pytest.raises(ValueError, match="Dropout"):
        reference.use_stacked("on", dropout, task)


def test_reference_models_are_built_once_per_task(make_tiny_task, monkeypatch):
    built = []
    real = reference.reference_phi

    def counting(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reference, "reference_phi", counting)
    metrics = []
    for request, variant in [(10, "online"), (10, "offline"), (20, "online")]:
        task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=request))
        model = _retrained(task, ctx)
        evaluator = lira.create({"models": 8, "variant": variant})
        before = ctx.work
        result = evaluator.evaluate(_inputs(task, model, model, model), ctx)
        assert isinstance(result, Evaluation)
        metrics.append(result.metrics)
        assert ctx.work - before == 8 * 300 * 5  # loading the models counts their work
    assert len(built) == 1  # shared by variants and by requests of one training identity
    assert metrics[0]["lira_auc_gap"] == 0.0
    assert metrics[0]["lira_auc"] != metrics[1]["lira_auc"]  # the variant did change


def test_few_models_warn(caplog):
    model_count._warned.clear()
    with caplog.at_level(logging.WARNING):
        lira.create({"models": 16})
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        lira.create({"models": 4})
        lira.create({"models": 4})
    assert len(caplog.records) == 1 and "models=4" in caplog.records[0].getMessage()


def test_lira_separates_original_from_retrain_better_than_the_shadow_attack(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=40), **OVERFIT)
    original, retrained = ctx.original(), _retrained(task, ctx)
    evaluator = lira.create({})
    ours = evaluator.evaluate(_inputs(task, original, original, retrained), ctx).metrics
    ref = evaluator.evaluate(_inputs(task, original, retrained, retrained), ctx).metrics

    s, params = task.splits, resolve_params(mia.PARAMS, {})
    attack, _ = mia.attack_model(task, ctx, params)

    def shadow_auc(model: nn.Module) -> float:
        return membership_auc(
            mia.member_scores(model, attack, task.x[s.forget], params),
            mia.member_scores(model, attack, task.x[s.nonmember], params),
        )

    assert ours["lira_auc"] > shadow_auc(original) + 0.05
    separation = ours["lira_auc"] - ref["lira_auc"]
    assert separation > shadow_auc(original) - shadow_auc(retrained) + 0.05
    assert ours["lira_auc_gap"] == pytest.approx(separation)
    assert ours["lira_strength"] > 0.75 and ref["lira_strength"] == ours["lira_strength"]
    assert ours["lira_tpr_at_1fpr"] > ref["lira_tpr_at_1fpr"]


@pytest.mark.slow
def test_retrains_auc_is_chance_on_average(make_tiny_task):
    """Forget and non-member points are exchangeable for retrain: AUC 0.5 in expectation.
    200 forget vs 400 non-members: about 0.025 standard error per seed, 0.0125 over 4."""
    splits = SplitSizes(
        target=600, nonmember=400, test=100, shadow_in=200, shadow_out=0, auxiliary=0
    )  # a pool of 2 x 600: reference models of the target's size
    aucs = []
    for seed in range(4):
        task, ctx = make_tiny_task(
            **{**OVERFIT, "dataset_params": {"samples": 1300}},
            splits=splits,
            request=ForgetRequest(kind="random", count=200),
            seed=seed,
        )
        retrained = _retrained(task, ctx)
        metrics = lira.create({}).evaluate(_inputs(task, retrained, retrained, retrained), ctx)
        aucs.append(metrics.metrics["lira_auc"])
    assert abs(sum(aucs) / len(aucs) - 0.5) < 0.05, aucs


def test_the_description_show_prints_is_the_one_in_the_docs() -> None:
    """``unlearnbench show lira`` prints DESCRIPTION; docs/lira.md holds the same text."""
    from pathlib import Path

    from unlearnbench.builtin.evaluators.lira_description import DESCRIPTION
    from unlearnbench.testing import registry

    docs = Path(__file__).resolve().parents[1] / "docs" / "lira.md"
    assert registry().get("evaluator", "lira").description == DESCRIPTION
    assert DESCRIPTION.strip() in docs.read_text(encoding="utf-8")
