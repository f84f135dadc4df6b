"""GAN unlearning (seed 000): WGAN-GP on sorted posteriors.

What is pinned down: the method contract (documented, shapes, streams,
deterministic for a seed); that the adversarial term, and not the CE term,
moves the forget set's confidence to the non-member level on an overfit model
while retain accuracy holds; that α = 0 is exactly fine-tuning on the retain
subset; that batch-norm statistics do not move; the stopping rule; streams;
and errors that name the bad parameter.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.builtin.methods.gan import PARAMS, GanState, create, retain_subset
from unlearnbench.builtin.methods.gan.critic import critic_loss, gradient_penalty
from unlearnbench.specs import resolve_params
from unlearnbench.task_values import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import check_method_contract
from unlearnbench.training import accuracy, epoch_order, predict_proba

FAST = {"max_steps": 12, "min_steps": 0, "critic_warmup": 5, "check_every": 4}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread. On a busy 2-core machine two threads were 25x slower here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def method(**params):
    return create(resolve_params(PARAMS, params))


def overfit_mnist1d(make_tiny_task, count: int = 30):
    """An MLP that memorises 300 MNIST-1D points: train 100%, test about 30%."""
    return make_tiny_task(
        dataset="mnist1d",
        dataset_params={"samples": 1000},
        splits=SplitSizes(target=300, nonmember=100, test=200, shadow_in=150, shadow_out=150),
        architecture_params={"widths": [64]},
        recipe=TrainRecipe(epochs=80, batch_size=32, lr=0.003),
        request=ForgetRequest(kind="random", count=count),
    )


def top1(model: nn.Module, x: torch.Tensor) -> float:
    return float(predict_proba(model, x).max(1).values.mean())


def test_contract(make_tiny_task):
    check_method_contract("gan", make_tiny_task, params=FAST)


def test_adversarial_term_moves_forget_posteriors_to_nonmember_level(make_tiny_task):
    task, ctx = overfit_mnist1d(make_tiny_task)
    s = task.splits
    original = ctx.original()
    nonmember_conf = top1(original, task.x[s.nonmember])
    gap_before = top1(original, task.x[s.forget]) - nonmember_conf
    assert gap_before > 0.15, "the fixture model must be overfit for this test to mean anything"
    steps = {"min_steps": 150, "max_steps": 150}
    gaps, retain_acc = {}, {}
    for alpha in (0.0, 0.5):
        gan = method(alpha=alpha, **steps)
        result = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
        assert result.costs["gan_steps"] == 150
        gaps[alpha] = abs(top1(result.model, task.x[s.forget]) - nonmember_conf)
        retain_acc[alpha] = accuracy(result.model, task.x[s.retain], task.y[s.retain])
    # The adversarial term closes most of the confidence gap (measured: 0.28 -> 0.02);
    # fine-tuning alone, same steps, closes less than half of it (measured: 0.21).
    assert gaps[0.5] < 0.25 * gap_before
    assert gaps[0.0] > 0.5 * gap_before
    # Stated bound: retain accuracy stays within 5 points of the original's (100%).
    original_retain = accuracy(original, task.x[s.retain], task.y[s.retain])
    assert retain_acc[0.5] >= original_retain - 0.05


def test_default_stopping_rule_ends_early_with_small_distance(make_tiny_task):
    task, ctx = overfit_mnist1d(make_tiny_task)
    gan = method()
    result = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
    curve = result.series["gan_distance"]
    assert curve[0] > 0.15, "after warm-up the critic must see the overfit model's gap"
    assert result.costs["gan_steps"] < 1000, "should stop before the cap"
    assert all(d < 0.03 for d in curve[-3:])
    assert result.costs["gan_distance_final"] == curve[-1]
    assert result.costs["prediction_cost"] == 1.0
    assert result.costs["storage_bytes"] == 0.0


@pytest.mark.parametrize("weights", ["adversarial", "convex"])
def test_alpha_zero_is_fine_tuning_on_the_retain_subset(make_tiny_task, weights):
    task, ctx = make_tiny_task()
    n_steps, batch, lr = 15, 16, 3e-4
    gan = method(
        alpha=0.0,
        alpha_weights=weights,
        min_steps=n_steps,
        max_steps=n_steps,
        batch_size=batch,
        critic_warmup=3,
    )
    result = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
    assert result.costs["gan_steps"] == n_steps

    # A plain fine-tune: same start, optimiser, subset and batch order; eval mode.
    model = ctx.original()
    model.eval()
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.5, 0.9))
    subset = retain_subset(task, 0.01, 64)
    assert subset.numel() == 64 and bool(torch.isin(subset, task.splits.retain).all())
    batches = [
        order[i : i + batch]
        for epoch in range(n_steps)
        for order in [epoch_order(subset, (task.seed, "gan", 0), epoch)]
        for i in range(0, order.numel(), batch)
    ][:n_steps]
    for idx in batches:
        loss = F.cross_entropy(model(task.x[idx]), task.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (name, mine), theirs in zip(
        result.model.state_dict().items(), model.state_dict().values(), strict=True
    ):
        assert torch.allclose(mine, theirs, atol=1e-6), name
    assert not torch.equal(result.model.state_dict()["1.weight"], ctx.original()[1].weight)


def test_batchnorm_statistics_do_not_drift(make_tiny_task):
    task, ctx = make_tiny_task()
    task.build_model = lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10)
    )
    original = ctx.original()
    gan = method(**FAST)
    result = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
    before, after = original.state_dict(), result.model.state_dict()
    for key in ("2.running_mean", "2.running_var", "2.num_batches_tracked"):
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["1.weight"], after["1.weight"]), "G must still be trained"


def test_stream_continues_from_the_current_generator(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    gan = method(**FAST)
    state = gan.fit(task, ctx)
    first = gan.unlearn(state, task.forget_steps[0], task, ctx)
    snapshot = copy.deepcopy(first.model.state_dict())
    second = method(**{**FAST, "max_steps": 1}).unlearn(
        first.state, task.forget_steps[1], task, ctx
    )
    assert isinstance(second.state, GanState) and second.state.deletions == 2
    assert torch.equal(second.state.nonmember_sorted, state.nonmember_sorted)
    for key, value in first.model.state_dict().items():  # the returned model is not mutated
        assert torch.equal(value, snapshot[key])

    def dist(a: nn.Module, b: nn.Module) -> float:
        return sum(
            float((p - q).detach().norm())
            for p, q in zip(a.parameters(), b.parameters(), strict=True)
        )

    # One step from the first generator stays near it, far from the original.
    assert dist(second.model, first.model) < 0.2 * dist(second.model, ctx.original())


def test_stopping_rule_and_cap(make_tiny_task):
    task, ctx = make_tiny_task()
    common = {"critic_warmup": 2, "check_every": 5, "patience": 3}
    gan = method(threshold=10.0, min_steps=12, max_steps=100, **common)  # always "close"
    early = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
    assert early.costs["gan_steps"] == 15  # first check at or after min_steps, 3 checks below
    assert len(early.series["gan_distance"]) == 4  # after warm-up, at 5, 10, 15
    gan = method(threshold=0.0, min_steps=0, max_steps=12, **common)  # never close enough
    capped = gan.unlearn(gan.fit(task, ctx), task.forget_steps[0], task, ctx)
    assert capped.costs["gan_steps"] == 12
    assert len(capped.series["gan_distance"]) == 4  # after warm-up, at 5, 10 and the cap
    assert capped.costs["critic_steps"] == 12 * 5 + 2


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.5, "alpha_weights": "convex"}, "alpha"),
        ({"critic_steps": 0}, "critic_steps"),
        ({"lr": 0.0}, "lr"),
        ({"retain_fraction": 2.0}, "retain_fraction"),
        ({"beta1": 1.0}, "beta1"),
        ({"alpha": float("nan")}, "alpha"),
    ],
)
def test_bad_parameters_name_themselves(params, name):
    with pytest.raises(ValueError, match=name):
        method(**params)


def test_critic_losses():
    critic = nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]))  # unit norm: 1-Lipschitz, exactly
    real, fake = torch.rand(8, 3), torch.rand(8, 3)
    eps = torch.rand(8, 1)
    assert float(gradient_penalty(critic, real, fake, eps).detach()) == pytest.approx(
        0.0, abs=1e-10
    )
    with torch.no_grad():
        expected = float(critic(fake).mean() - critic(real).mean())  # GP term is 0 here
    assert float(critic_loss(critic, real, fake, eps, 10.0).detach()) == pytest.approx(expected)
    with torch.no_grad():
        critic.weight.mul_(2.0)  # gradient norm 2: penalty (2 - 1)^2 = 1
    assert float(gradient_penalty(critic, real, fake, eps).detach()) == pytest.approx(1.0)
