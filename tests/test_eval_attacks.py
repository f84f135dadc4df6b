"""``mia_efficacy`` (SalUn-style population SVC attack) and ``loss_attack`` (loss ROC)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unlearnbench.builtin.evaluators import attacks
from unlearnbench.specs import Evaluation, EvaluationInputs, ParamError, resolve_params
from unlearnbench.task_values import ForgetRequest, TrainRecipe
from unlearnbench.testing import check_evaluator_contract

EFFICACY = resolve_params(attacks.EFFICACY_PARAMS, {})
OVERFIT = {  # MNIST-1D: an MLP fits its 300 points and generalises poorly, so membership leaks
    "dataset": "mnist1d",
    "dataset_params": {"samples": 1000},
    "architecture_params": {"widths": [128]},
    "recipe": TrainRecipe(epochs=40, batch_size=32, lr=0.003),
}


class Memoriser(nn.Module):
    """Near one-hot posteriors (on the true label) for memorised points, uniform elsewhere."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.keys = x.flatten(1)
        self.logits = 30.0 * nn.functional.one_hot(y, num_classes).float()
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x.shape[0], self.num_classes, device=x.device)
        if self.keys.shape[0]:
            dist = torch.cdist(x.flatten(1), self.keys, compute_mode="donot_use_mm_for_euclid_dist")
            best, where = dist.min(1)
            hit = best < 1e-5
            out[hit] = self.logits[where[hit]]
        return out


def _memoriser(task, points: torch.Tensor) -> Memoriser:
    return Memoriser(task.x[points], task.y[points], task.num_classes)


def _inputs(task, unlearned, reference) -> EvaluationInputs:
    return EvaluationInputs(
        task=task, original=unlearned, unlearned=unlearned, reference=reference, costs={}
    )


@pytest.mark.parametrize("name", ["mia_efficacy", "loss_attack"])
def test_contract(make_tiny_task, name):
    metrics = check_evaluator_contract(name, make_tiny_task)
    assert metrics
    for value in metrics.values():
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("features", attacks.FEATURES)
def test_efficacy_known_answers(make_tiny_task, features):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=30))
    s = task.splits
    remembers = _memoriser(task, s.target)  # retain and forget memorised
    forgot = _memoriser(task, s.retain)  # forget set looks like test data
    params = {**EFFICACY, "features": features}
    evaluator = attacks.create_efficacy(params)
    assert attacks.mia_efficacy(remembers, task, params) == 0.0
    assert attacks.mia_efficacy(forgot, task, params) == 1.0
    metrics = evaluator.evaluate(_inputs(task, remembers, forgot), ctx)
    # the original (here: the memoriser) tells held-out members from non-members perfectly
    assert metrics == {"mia_efficacy": 0.0, "mia_efficacy_gap": 1.0, "mia_efficacy_strength": 1.0}


def test_efficacy_constant_model_is_at_chance(make_tiny_task):
    task, _ = make_tiny_task()
    constant = Memoriser(task.x[:0], task.y[:0], task.num_classes)
    assert attacks.mia_efficacy(constant, task, EFFICACY) == 0.5


def test_efficacy_original_below_retrain(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=40), **OVERFIT)
    original = ctx.original()
    retrained = task.new_model("init")
    ctx.train(retrained, task.splits.target, exclude=task.splits.forget)
    ours = attacks.mia_efficacy(original, task, EFFICACY)
    ref = attacks.mia_efficacy(retrained, task, EFFICACY)
    assert ours + 0.3 < ref
    # Deterministic: the subsample is seeded and the SVC has no randomness.
    assert attacks.mia_efficacy(original, task, EFFICACY) == ours


def test_modified_entropy_matches_formula():
    p = torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64)
    y = torch.tensor([0])
    expected = -(0.3 * math.log(0.7)) - (0.2 * math.log(0.8) + 0.1 * math.log(0.9))
    assert float(attacks._modified_entropy(p, y)) == pytest.approx(expected)


def test_loss_attack_known_answers(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=30))
    evaluator = attacks.create_loss({})
    remembers = _memoriser(task, task.splits.forget)
    result = evaluator.evaluate(_inputs(task, remembers, remembers), ctx)
    assert isinstance(result, Evaluation)
    # strength on the original: the 30 memorised of 300 members beat every non-member,
    # the other 270 tie with them: AUC = (30 + 270 / 2) / 300
    assert result.metrics == {
        "loss_attack_auc": 1.0,
        "loss_attack_tpr_at_1fpr": 1.0,
        "loss_attack_auc_gap": 0.0,
        "loss_attack_tpr_at_1fpr_gap": 0.0,
        "loss_attack_strength": pytest.approx(0.55),
    }
    fpr, tpr = result.series["roc_fpr"], result.series["roc_tpr"]
    assert len(fpr) == len(tpr) >= 2
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert fpr == sorted(fpr) and tpr == sorted(tpr)

    constant = Memoriser(task.x[:0], task.y[:0], task.num_classes)
    blind = evaluator.evaluate(_inputs(task, constant, remembers), ctx)
    assert blind.metrics["loss_attack_auc"] == 0.5
    assert blind.metrics["loss_attack_tpr_at_1fpr"] == 0.0
    assert blind.metrics["loss_attack_auc_gap"] == 0.5  # |0.5 - the reference's 1.0|


def test_an_attack_that_cannot_tell_the_originals_members_reports_it(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=30))
    constant = Memoriser(task.x[:0], task.y[:0], task.num_classes)
    loss = attacks.create_loss({}).evaluate(_inputs(task, constant, constant), ctx)
    efficacy = attacks.create_efficacy(EFFICACY).evaluate(_inputs(task, constant, constant), ctx)
    assert loss.metrics["loss_attack_strength"] == 0.5
    assert efficacy["mia_efficacy_strength"] == 0.5


def test_attacks_read_an_ensembles_posteriors_not_its_votes(make_tiny_task):
    task, _ = make_tiny_task(request=ForgetRequest(kind="random", count=30))

    class Votes(nn.Module):  # forward: floored log vote shares; posteriors: the real ones
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.full((x.shape[0], task.num_classes), math.log(1e-8))
            out[:, 0] = 0.0
            return out

        def posteriors(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], task.num_classes), 1.0 / task.num_classes)

    x, y = task.x[task.splits.test], task.y[task.splits.test]
    loss = attacks.per_example_loss(Votes(), x, y)
    assert torch.allclose(loss, torch.full_like(loss, math.log(task.num_classes)))


def test_loss_attack_original_above_retrain(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=40), **OVERFIT)
    original = ctx.original()
    retrained = task.new_model("init")
    ctx.train(retrained, task.splits.target, exclude=task.splits.forget)
    ours, _ = attacks.loss_attack(original, task)
    ref, _ = attacks.loss_attack(retrained, task)
    assert ours["loss_attack_auc"] > 0.75
    assert abs(ref["loss_attack_auc"] - 0.5) < 0.15


@pytest.mark.parametrize(("name", "value"), [("C", 0.0), ("max_points", -1), ("C", math.nan)])
def test_bad_params_name_the_parameter(name, value):
    with pytest.raises(ParamError, match=name):
        resolve_params(attacks.EFFICACY_PARAMS, {name: value})
