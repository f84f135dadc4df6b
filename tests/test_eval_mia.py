"""The ``mia`` evaluator: shadow model + ML-Leaks attack, FNR on the forget set."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unlearnbench.builtin.evaluators import mia
from unlearnbench.specs import EvaluationInputs, ParamError, resolve_params
from unlearnbench.task_values import ForgetRequest, TrainRecipe
from unlearnbench.testing import check_evaluator_contract

# MNIST-1D is hard for an MLP: it fits its 300 training points and generalises
# poorly, so membership leaks (on the tiny digits task train/test accuracy differ
# by a few points only and the attack is near chance).
OVERFIT = {
    "dataset": "mnist1d",
    "dataset_params": {"samples": 1000},
    "architecture_params": {"widths": [128]},
    "recipe": TrainRecipe(epochs=40, batch_size=32, lr=0.003),
}
PARAMS = resolve_params(mia.PARAMS, {})


class Memoriser(nn.Module):
    """Near one-hot posteriors on the points it memorised, ``other`` logits elsewhere."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, num_classes: int, other: nn.Module):
        super().__init__()
        self.keys = x.flatten(1)
        self.logits = 30.0 * nn.functional.one_hot(y, num_classes).float()
        self.other = other

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x.flatten(1), self.keys, compute_mode="donot_use_mm_for_euclid_dist")
        best, where = dist.min(1)
        out = self.other(x).clone()
        hit = best < 1e-5
        out[hit] = self.logits[where[hit]]
        return out


def _evaluate(task, ctx, unlearned, reference, **params):
    evaluator = mia.create(resolve_params(mia.PARAMS, params))
    inputs = EvaluationInputs(
        task=task, original=unlearned, unlearned=unlearned, reference=reference, costs={}
    )
    return evaluator.evaluate(inputs, ctx)


def test_contract(make_tiny_task):
    metrics = check_evaluator_contract("mia", make_tiny_task)
    assert set(metrics) == {m.name for m in mia.METRICS}
    for value in metrics.values():
        assert 0.0 <= value <= 1.0


def test_original_fnr_below_retrain_and_attack_beats_chance(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=40), **OVERFIT)
    original = ctx.original()
    retrained = task.new_model("init")
    ctx.train(retrained, task.splits.target, exclude=task.splits.forget)
    as_original = _evaluate(task, ctx, original, retrained)
    as_retrain = _evaluate(task, ctx, retrained, retrained)
    assert as_original["mia_attack_accuracy"] > 0.6
    assert as_original["mia_fnr"] + 0.2 < as_retrain["mia_fnr"]
    assert as_retrain["mia_fnr_gap"] == 0.0
    assert as_original["mia_fnr_gap"] == pytest.approx(
        as_retrain["mia_fnr"] - as_original["mia_fnr"]
    )
    # The same attack answers both models: the shadow-based metrics do not move.
    assert as_original["mia_attack_accuracy"] == as_retrain["mia_attack_accuracy"]


def test_memorised_forget_set_gives_zero_fnr(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=40), **OVERFIT)
    s = task.splits
    never_saw = task.new_model("init")
    ctx.train(never_saw, s.retain)
    memoriser = Memoriser(task.x[s.forget], task.y[s.forget], task.num_classes, never_saw)
    remembered = _evaluate(task, ctx, memoriser, never_saw)
    forgotten = _evaluate(task, ctx, never_saw, never_saw)
    assert remembered["mia_fnr"] == 0.0
    assert forgotten["mia_fnr"] > 0.3
    # Outside the forget set the memoriser is the never-saw model.
    assert remembered["mia_nonmember_tnr"] == forgotten["mia_nonmember_tnr"]


def test_shadow_and_attack_are_cached_and_deterministic(make_tiny_task, tmp_path):
    task, ctx = make_tiny_task()
    model = ctx.original()
    first = _evaluate(task, ctx, model, model)
    calls = []
    real_train = ctx.train

    def counting_train(*args, **kwargs):
        calls.append(kwargs.get("seed_label"))
        return real_train(*args, **kwargs)

    ctx.train = counting_train  # type: ignore[method-assign]
    again = _evaluate(task, ctx, model, model)
    assert calls == []  # the shadow came from the artifact cache
    assert first == again
    # A fresh cache folder rebuilds the same shadow and attack from the seed.
    from unlearnbench.testing import make_task

    task2, ctx2 = make_task(tmp_path / "other-cache")
    assert _evaluate(task2, ctx2, ctx2.original(), ctx2.original()) == first


def test_attack_features_are_sorted_top_k():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    feats = mia.attack_features(probs, 2, "posteriors")
    assert torch.allclose(feats, torch.tensor([[0.6, 0.3], [0.6, 0.2]]))
    assert mia.attack_features(probs, 5, "posteriors").shape == (2, 3)
    assert torch.allclose(mia.attack_features(probs, 1, "log"), torch.tensor([[0.6], [0.6]]).log())


def test_holdout_zero_reports_training_accuracy(make_tiny_task):
    task, ctx = make_tiny_task()
    model = ctx.original()
    metrics = _evaluate(task, ctx, model, model, holdout=0.0, features="log", top_k=1)
    assert 0.5 <= metrics["mia_attack_accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("name", "value"),
    [("top_k", 0), ("hidden", 0), ("attack_steps", 0), ("attack_lr", 0.0), ("holdout", 1.0)],
)
def test_bad_params_name_the_parameter(name, value):
    with pytest.raises(ParamError, match=name):
        mia.create({**PARAMS, name: value})


def _sisa_cell(make_tiny_task, method: str = "sisa", params: dict | None = None):
    """A SISA (or ``method``) cell through the host's path, with ``shadow_in`` the
    target's size as ML-Leaks trains it, and the cell's ``trained_on``."""
    from unlearnbench.execution.cell import TrainedOn, run_method
    from unlearnbench.execution.plan import Component
    from unlearnbench.task_values import SplitSizes
    from unlearnbench.testing import registry

    splits = SplitSizes(target=300, nonmember=100, test=200, shadow_in=300, shadow_out=300)
    task, ctx = make_tiny_task(splits=splits)
    reg = registry()
    spec = reg.get("method", method)
    component = Component(method, resolve_params(spec.params, params or {}), method)
    outcome = run_method(spec, component, task, ctx)
    reference = run_method(reg.get("method", "retrain"), Component("retrain", {}, "r"), task, ctx)
    return task, ctx, outcome, reference, TrainedOn(task, ctx.cache, (spec, component))


def _mia(task, ctx, outcome, reference, trained_on, shadow: str) -> dict[str, float]:
    inputs = EvaluationInputs(
        task=task,
        original=ctx.original(),
        unlearned=outcome.model,
        reference=reference.model,
        costs={},
        trained=outcome.trained,
        trained_on=trained_on,
    )
    return mia.create({"shadow": shadow}).evaluate(inputs, ctx)


def test_a_sisa_shadow_is_a_sisa_ensemble_and_calls_its_retained_points_members(
    make_tiny_task,
):
    """Issue 23: calibrated on one standard model, the attack called 99.6% of SISA's
    retained points non-members on MNIST-1D; a shadow trained by SISA's own
    procedure (an ensemble on shadow_in) does not."""
    from unlearnbench.builtin.methods.sisa import ShardEnsemble

    task, ctx, outcome, reference, trained_on = _sisa_cell(
        make_tiny_task, params={"shards": 5, "slices": 2}
    )
    shadow = trained_on(task.splits.shadow_in, "mia-shadow")
    assert isinstance(shadow, ShardEnsemble) and len(shadow.members) == 5
    standard = _mia(task, ctx, outcome, reference, trained_on, "standard")
    own = _mia(task, ctx, outcome, reference, trained_on, "method")
    # the FNR on SISA's retained training points: 1.0 with the standard shadow and
    # 0.53 with SISA's own when this test was written
    fnr_standard, fnr_own = 1 - standard["mia_retain_tpr"], 1 - own["mia_retain_tpr"]
    assert fnr_standard > 0.9
    assert fnr_own < fnr_standard - 0.3
    assert own == _mia(task, ctx, outcome, reference, trained_on, "method")  # cached, same


def test_a_method_without_its_own_training_gets_the_standard_shadow(make_tiny_task):
    task, ctx, outcome, reference, trained_on = _sisa_cell(make_tiny_task, method="original")
    assert trained_on(task.splits.shadow_in, "mia-shadow") is None
    assert _mia(task, ctx, outcome, reference, trained_on, "method") == _mia(
        task, ctx, outcome, reference, trained_on, "standard"
    )


def test_trained_on_fits_the_method_on_the_given_points_with_its_own_seed(make_tiny_task):
    from unlearnbench.execution.cell import task_trained_on

    task, _ctx, outcome, _reference, trained_on = _sisa_cell(
        make_tiny_task, method="deepobliviate", params={"blocks": 4, "epochs_per_block": 1}
    )
    sub = task_trained_on(task, task.splits.shadow_in, "mia-shadow")
    assert torch.equal(sub.splits.target, task.splits.shadow_in)
    assert sub.splits.forget.numel() == 0 and sub.seed != task.seed
    assert sub.train_key != task.train_key
    shadow = trained_on(task.splits.shadow_in, "mia-shadow")
    assert isinstance(shadow, nn.Module) and trained_on.work > 0
    x = task.x[task.splits.test]
    with torch.no_grad():
        assert not torch.equal(shadow(x), outcome.trained(x))  # not the cell's own training
        work = trained_on.work
        again = trained_on(task.splits.shadow_in, "mia-shadow")
        assert torch.equal(again(x), shadow(x)) and trained_on.work == work  # memoised
