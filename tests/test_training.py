"""The shared training loop: reproducible, exclusion-consistent, divergence-aware."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from unlearnbench.task_values import TrainRecipe
from unlearnbench.training import (
    StackedJob,
    TrainingDiverged,
    accuracy,
    epoch_order,
    make_optimizer,
    predict_logits,
    predict_proba,
    train_model,
    train_stacked,
)


def _data(n: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=gen)
    y = (x[:, 0] > 0).long()
    return x, y


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def test_same_seed_same_model() -> None:
    x, y = _data()
    recipe = TrainRecipe(epochs=3, batch_size=16)
    a, b = _model(), _model()
    train_model(a, x, y, torch.arange(100), recipe, seed=(0, "t"))
    train_model(b, x, y, torch.arange(100), recipe, seed=(0, "t"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = _model()
    train_model(c, x, y, torch.arange(100), recipe, seed=(1, "t"))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_exclusion_keeps_the_order_of_the_rest() -> None:
    idx = torch.arange(50)
    full = epoch_order(idx, seed=7, epoch=2)
    drop = torch.tensor([3, 17, 40])
    reduced = epoch_order(idx, seed=7, epoch=2, exclude=drop)
    assert torch.equal(reduced, full[~torch.isin(full, drop)])


def test_training_learns_and_reports_sample_epochs() -> None:
    x, y = _data()
    model = _model()
    stats = train_model(
        model,
        x,
        y,
        torch.arange(100),
        TrainRecipe(epochs=20, batch_size=16, lr=0.01),
        seed=0,
        exclude=torch.tensor([0, 1]),
    )
    assert stats.sample_epochs == 20 * 98
    assert accuracy(model, x[100:], y[100:]) > 0.8
    assert not model.training


def test_divergence_is_reported() -> None:
    x, y = _data()
    x[5] = float("nan")
    with pytest.raises(TrainingDiverged, match="diverged"):
        train_model(_model(), x, y, torch.arange(100), TrainRecipe(epochs=1), seed=0)


def test_predict_logits_batches_and_restores_mode() -> None:
    x, _ = _data()
    model = _model()
    model.train()
    out = predict_logits(model, x, batch_size=7)
    assert out.shape == (120, 2) and model.training
    model.eval()
    assert torch.allclose(out, model(x))


def test_cycled_batches_cover_each_epoch_once_and_repeat_by_seed() -> None:
    from itertools import islice

    from unlearnbench.training import cycled_batches

    idx = torch.arange(10) * 2
    first = list(islice(cycled_batches(idx, seed=3, batch_size=4), 6))  # 3 batches an epoch
    again = list(islice(cycled_batches(idx, seed=3, batch_size=4), 6))
    assert [b.numel() for b in first] == [4, 4, 2, 4, 4, 2]
    assert torch.cat(first[:3]).sort().values.equal(idx)
    assert torch.cat(first[:3]).equal(epoch_order(idx, 3, 0))
    assert torch.cat(first[3:]).equal(epoch_order(idx, 3, 1))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_predict_proba_reads_a_models_own_posteriors() -> None:
    class Voting(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # log vote shares, floored
            return torch.full((x.shape[0], 2), -18.4)

        def posteriors(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.25, 0.75]]).expand(x.shape[0], 2)

    probs = predict_proba(Voting(), torch.zeros(5, 3))
    assert torch.allclose(probs, torch.tensor([[0.25, 0.75]]).expand(5, 2))


def _mlps(k: int) -> list[nn.Module]:
    torch.manual_seed(1)
    return [nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2)) for _ in range(k)]


def _optim_on_stacked_tensors(
    models: list[nn.Module], jobs: list[StackedJob], x: torch.Tensor, y: torch.Tensor, recipe
) -> None:
    """Written out: ``torch.optim`` stepping the stacked parameters of equal-size jobs
    (LiRA's reference models were trained so before ``train_stacked`` served both)."""
    stacked, _ = stack_module_state(models)
    params = {n: p.detach().clone().requires_grad_(True) for n, p in stacked.items()}
    optimizer = make_optimizer(params.values(), recipe)
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(p, xb, yb):
        return F.cross_entropy(functional_call(base, p, (xb,)), yb)

    step = vmap(grad_and_value(loss_fn))
    for epoch in range(recipe.epochs):
        orders = torch.stack([epoch_order(j.indices, j.seed, epoch) for j in jobs])
        for begin in range(0, orders.shape[1], recipe.batch_size):
            idx = orders[:, begin : begin + recipe.batch_size]
            grads, _ = step({n: p.detach() for n, p in params.items()}, x[idx], y[idx])
            for name, param in params.items():
                param.grad = grads[name]
            optimizer.step()
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(params[name][k])


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_stacked_training_gives_torch_optims_numbers_bit_for_bit(optimizer: str) -> None:
    """Equal-size jobs (LiRA's reference models): the numbers ``torch.optim`` gives on
    the stacked tensors, exactly, so LiRA's statistics did not move when its own
    stacked loop gave way to this one (SISA's stacked Adam differed by rounding)."""
    x, y = _data()
    recipe = TrainRecipe(epochs=3, batch_size=16, lr=0.01, optimizer=optimizer, weight_decay=1e-3)
    jobs = [StackedJob(torch.randperm(120)[:50], (7, ("lira", k))) for k in range(3)]
    expected, got = _mlps(3), _mlps(3)
    _optim_on_stacked_tensors(expected, jobs, x, y, recipe)
    counts = train_stacked(got, jobs, x, y, recipe)
    assert counts == [150, 150, 150]
    for a, b in zip(expected, got, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_a_stacked_model_with_a_shorter_epoch_trains_as_if_alone() -> None:
    """Jobs of unequal size (SISA's shards, minus deleted points): the shorter one's
    missing batches leave its parameters and optimizer state untouched."""
    x, y = _data()
    recipe = TrainRecipe(epochs=2, batch_size=16, lr=0.01, optimizer="adam")
    long = StackedJob(torch.arange(80), (3, "long"))
    short = StackedJob(torch.arange(80, 120), (3, "short"), exclude=torch.tensor([81, 90]))
    pair, alone = _mlps(2), _mlps(2)[1:]
    assert train_stacked(pair, [long, short], x, y, recipe) == [160, 76]
    assert train_stacked(alone, [short], x, y, recipe) == [76]
    for p, q in zip(pair[1].parameters(), alone[0].parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6, rtol=0)
    one_by_one = _mlps(2)[1]
    train_model(one_by_one, x, y, short.indices, recipe, seed=short.seed, exclude=short.exclude)
    for p, q in zip(pair[1].parameters(), one_by_one.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-5, rtol=0)


def test_stacked_training_refuses_what_it_cannot_stack() -> None:
    x, y = _data()
    recipe = TrainRecipe(epochs=1, batch_size=16)
    jobs = [StackedJob(torch.arange(20), (0, k)) for k in range(2)]
    with pytest.raises(ValueError, match="one job per model"):
        train_stacked(_mlps(2), jobs[:1], x, y, recipe)
    with pytest.raises(ValueError, match="random layer"):
        train_stacked([_model(), _model()], jobs, x, y, recipe)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_foreach_optimizer_gives_the_for_loop_numbers_bit_for_bit(optimizer: str) -> None:
    """foreach (Adam's default, faster on the CPU) leaves every result as the
    per-tensor loop gave it, momentum and weight decay included; fused rounds
    differently and is opt-in, close but not asserted equal."""
    x, y = _data()
    recipe = TrainRecipe(
        epochs=3, batch_size=16, lr=0.01, optimizer=optimizer, momentum=0.9, weight_decay=1e-3
    )
    trained = {}
    for impl in ("for_loop", "foreach", "fused"):
        model = _model()
        opt = make_optimizer(model.parameters(), recipe, impl=impl)
        train_model(model, x, y, torch.arange(120), recipe, seed=3, optimizer=opt)
        trained[impl] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(trained["foreach"], trained["for_loop"])
    assert torch.allclose(trained["fused"], trained["for_loop"], atol=1e-5)
    default = _model()
    train_model(default, x, y, torch.arange(120), recipe, seed=3)
    assert torch.equal(
        torch.cat([p.detach().flatten() for p in default.parameters()]), trained["foreach"]
    )


def test_the_recipes_optimizer_impl_chooses_the_implementation() -> None:
    """``make_optimizer`` follows ``recipe.optimizer_impl`` (``auto``: the defaults),
    and an explicit ``impl`` wins over it."""
    params = list(_model().parameters())
    assert make_optimizer(params, TrainRecipe()).defaults["foreach"] is True
    sgd = make_optimizer(params, TrainRecipe(optimizer="sgd"))
    assert sgd.defaults["foreach"] is False
    fused = make_optimizer(params, TrainRecipe(optimizer_impl="fused"))
    assert fused.defaults["fused"] is True
    assert make_optimizer(params, TrainRecipe(optimizer_impl="fused"), impl="foreach").defaults[
        "foreach"
    ]
    x, y = _data()
    trained = []
    for impl in ("auto", "fused"):
        model = _model()
        recipe = TrainRecipe(epochs=2, batch_size=16, lr=0.01, optimizer_impl=impl)
        train_model(model, x, y, torch.arange(120), recipe, seed=3)
        trained.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(trained[0], trained[1], atol=1e-5)


def test_an_unknown_optimizer_impl_is_refused() -> None:
    from unlearnbench import UnlearnbenchError

    with pytest.raises(UnlearnbenchError, match="choose from"):
        make_optimizer(_model().parameters(), TrainRecipe(), impl="fast")
