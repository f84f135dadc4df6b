"""The shared training loop: reproducible, exclusion-consistent, divergence-aware."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unlearnbench.config import TrainRecipe
from unlearnbench.training import (
    TrainingDiverged,
    accuracy,
    epoch_order,
    predict_logits,
    predict_proba,
    train_model,
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
