"""SISA: exact at S=R=1, retrains only what a deletion touches, counts its work,
stacked training matches one-by-one, and many shards cost accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from unlearnbench.builtin.methods.sisa import ShardEnsemble, SisaSettings, create
from unlearnbench.builtin.methods.sisa.shards import make_layout, slice_epochs, train_shards
from unlearnbench.partition import block_of
from unlearnbench.specs import ParamError
from unlearnbench.task_values import ForgetRequest, TrainRecipe
from unlearnbench.testing import check_method_contract, registry, run_unlearning
from unlearnbench.training import accuracy, predict_logits, predict_proba
from unlearnbench.training import stacking_pays as prefer_stacked
from unlearnbench.training import stacking_unsupported as unsupported_reason


def fit(task, ctx, **params):
    method = create(params)
    return method, method.fit(task, ctx)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("aggregation", ["vote", "mean"])
def test_contract(make_tiny_task, aggregation):
    check_method_contract(
        "sisa", make_tiny_task, params={"shards": 3, "slices": 2, "aggregation": aggregation}
    )


def test_one_shard_one_slice_is_exact_retraining(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    reg = registry()
    sisa = run_unlearning(reg.get("method", "sisa"), task, ctx, {"shards": 1, "slices": 1})
    ref = run_unlearning(reg.get("method", "retrain"), task, ctx)
    (member,) = sisa.model.members
    assert same(member.state_dict(), ref.model.state_dict())
    x = task.x[task.splits.test]
    assert torch.equal(
        predict_logits(sisa.model, x).argmax(1), predict_logits(ref.model, x).argmax(1)
    )
    assert sisa.costs["retrain_sample_epochs"] == ref.costs["retrain_sample_epochs"]


def test_deletion_retrains_one_shard_from_its_first_affected_slice(make_tiny_task):
    task, ctx = make_tiny_task()
    method, state = fit(task, ctx, shards=4, slices=3, stacked="off")
    forget = torch.cat([state.layout[2][1][:2], state.layout[2][2][:1]])
    result = method.unlearn(state, forget, task, ctx)
    assert result.costs["shards_retrained"] == 1
    assert result.costs["slices_retrained"] == 2
    for s in range(4):
        for r in range(3):
            unchanged = same(result.state.checkpoints[s][r], state.checkpoints[s][r])
            assert unchanged == (s != 2 or r < 1), (s, r)


def test_request_with_position_hits_one_shard_of_a_shared_partition(make_tiny_task):
    request = ForgetRequest(kind="random", count=5, position=0.6, blocks=4)
    task, ctx = make_tiny_task(request=request)
    method, state = fit(task, ctx, shards=4, slices=2)
    shards = set(state.shard_of[task.splits.forget].tolist())
    assert shards == {block_of(0.6, 4)}
    assert method.unlearn(state, task.splits.forget, task, ctx).costs["shards_retrained"] == 1


def test_slice_epochs_follow_the_authors_schedule():
    assert slice_epochs(20, 1) == [20]
    assert slice_epochs(20, 5) == [6, 7, 7, 6, 7]  # 2E/(R+1) = 6.67 per step, floors spread
    for epochs, slices in [(5, 3), (7, 4), (30, 10), (3, 20)]:
        steps = slice_epochs(epochs, slices)
        assert sum(steps) == 2 * epochs * slices // (slices + 1)
        assert max(steps) - min(steps) <= 1


def test_retrained_sample_epochs_match_the_schedule(make_tiny_task):
    task, ctx = make_tiny_task()
    method, state = fit(task, ctx, shards=3, slices=4, epochs=6, stacked="off")
    schedule = slice_epochs(6, 4)
    sizes = [[sum(int(p.numel()) for p in sl[: r + 1]) for r in range(4)] for sl in state.layout]
    assert state.fit_sample_epochs == sum(
        e * n for row in sizes for e, n in zip(schedule, row, strict=True)
    )
    forget = torch.cat([state.layout[0][2][:3], state.layout[1][0][:1]])
    result = method.unlearn(state, forget, task, ctx)
    # shard 0 redoes steps 2, 3 without 3 points; shard 1 redoes every step without 1 point
    expected = sum(schedule[r] * (sizes[0][r] - 3) for r in (2, 3))
    expected += sum(schedule[r] * (sizes[1][r] - 1) for r in range(4))
    assert result.costs["retrain_sample_epochs"] == expected
    assert result.costs["slices_retrained"] == 2 + 4


def test_unlearning_equals_training_without_the_points(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=12, steps=3))
    config = SisaSettings(shards=3, slices=3, stacked="off")
    method = create({"shards": 3, "slices": 3, "stacked": "off"})
    state = method.fit(task, ctx)
    for forget in task.forget_steps:
        state = method.unlearn(state, forget, task, ctx).state
    assert set(state.deleted.tolist()) == set(task.splits.forget.tolist())
    models = {s: task.new_model(("sisa-shard", s)) for s in range(3)}
    scratch, _, _ = train_shards(
        task, ctx, config, make_layout(task, config), models, dict.fromkeys(range(3), 0),
        task.splits.forget, stacked=False,
    )  # fmt: skip
    for s in range(3):
        for r in range(3):
            assert same(state.checkpoints[s][r], scratch[s][r]), (s, r)


def test_repeated_and_emptying_deletions(make_tiny_task):
    task, ctx = make_tiny_task()
    method, state = fit(task, ctx, shards=3, slices=2)
    first = method.unlearn(state, state.layout[1][0][:2], task, ctx)
    again = method.unlearn(first.state, state.layout[1][0][:2], task, ctx)
    assert again.costs["shards_retrained"] == 0 and again.costs["retrain_sample_epochs"] == 0
    emptied = method.unlearn(again.state, torch.cat(state.layout[0]), task, ctx)
    assert emptied.costs["prediction_cost"] == 2
    with pytest.raises(ValueError, match="not in the target set"):
        method.unlearn(state, task.splits.test[:2], task, ctx)


def test_storage_is_one_checkpoint_per_slice(make_tiny_task):
    task, ctx = make_tiny_task()
    method, state = fit(task, ctx, shards=3, slices=4)
    result = method.unlearn(state, task.splits.forget, task, ctx)
    per_model = sum(p.numel() * p.element_size() for p in task.new_model().state_dict().values())
    assert result.costs["storage_bytes"] == 3 * 4 * per_model
    assert result.costs["prediction_cost"] == 3


RECIPES = [
    TrainRecipe(epochs=4, batch_size=32, lr=0.003),
    TrainRecipe(epochs=4, batch_size=16, lr=0.003, weight_decay=1e-3),
    TrainRecipe(epochs=4, batch_size=32, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=1e-4),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=["adam", "adam-wd", "sgd-momentum"])
def test_stacked_training_matches_one_by_one(make_tiny_task, recipe):
    task, ctx = make_tiny_task(recipe=recipe, request=ForgetRequest(kind="random", count=8))
    states = {}
    for mode in ("off", "on"):
        method, state = fit(task, ctx, shards=4, slices=3, stacked=mode)
        # forget points in two shards at the same slice so stacked retraining is used too
        forget = torch.cat([state.layout[0][1][:2], state.layout[3][1][:1]])
        states[mode] = (state, method.unlearn(state, forget, task, ctx).state)
    for before_after in zip(*states.values(), strict=True):
        off, on = before_after
        for s in range(4):
            for r in range(3):
                a, b = off.checkpoints[s][r], on.checkpoints[s][r]
                for key in a:
                    assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), (s, r, key)
    assert states["on"][0].stacked and not states["off"][0].stacked


def test_stacked_cnn_matches_one_by_one(make_tiny_task):
    recipe = TrainRecipe(epochs=2, batch_size=32, lr=0.003)
    task, ctx = make_tiny_task(architecture="lenet5", recipe=recipe)
    off = fit(task, ctx, shards=3, slices=2, stacked="off")[1]
    on = fit(task, ctx, shards=3, slices=2, stacked="on")[1]
    for a_steps, b_steps in zip(off.checkpoints, on.checkpoints, strict=True):
        for a, b in zip(a_steps, b_steps, strict=True):
            for key in a:  # batched convolutions round differently: a looser tolerance
                assert torch.allclose(a[key], b[key], atol=1e-4, rtol=1e-3), key


def test_auto_stacking_rule(make_tiny_task):
    cpu = torch.device("cpu")
    assert prefer_stacked(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)), cpu)
    # benchmarks/stacking.py: an MLP of MNIST's 784 inputs trains slower stacked on CPU
    mnist_mlp = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64))
    assert not prefer_stacked(mnist_mlp, cpu)
    assert prefer_stacked(mnist_mlp, torch.device("cuda"))
    assert not prefer_stacked(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), cpu)
    assert prefer_stacked(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), torch.device("cuda"))
    assert unsupported_reason(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    task, ctx = make_tiny_task(architecture_params={"widths": [16], "dropout": 0.5})
    assert not create({"shards": 3}).use_stacked(task)
    with pytest.raises(ParamError, match="stacked"):
        create({"shards": 3, "stacked": "on"}).fit(task, ctx)


class Constant(nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


def test_vote_aggregation_breaks_ties_to_the_lowest_class():
    models = [Constant([0, 0, 0, 5.0]), Constant([0, 5.0, 0, 0]), Constant([0, 0, 0, 4.0])]
    out = ShardEnsemble(models[:2], 4)(torch.zeros(2, 1))
    assert out.argmax(1).tolist() == [1, 1]
    assert torch.allclose(out.exp()[0, [1, 3]], torch.tensor([0.5, 0.5]))
    assert ShardEnsemble(models, 4)(torch.zeros(1, 1)).argmax(1).item() == 3
    mean = ShardEnsemble(models, 4, aggregation="mean")(torch.zeros(1, 1))
    assert torch.isfinite(mean).all() and abs(float(mean.exp().sum()) - 1) < 1e-5


def test_bad_parameters_name_the_parameter(make_tiny_task):
    task, ctx = make_tiny_task()
    with pytest.raises(ParamError, match="shards"):
        create({"shards": 0})
    with pytest.raises(ParamError, match="aggregation"):
        create({"aggregation": "median"})
    with pytest.raises(ParamError, match="shards"):
        create({"shards": 301, "slices": 1}).fit(task, ctx)
    with pytest.raises(ParamError, match="slices"):
        create({"shards": 100, "slices": 4}).fit(task, ctx)


def test_many_shards_are_weaker_learners(make_tiny_task):
    """The weak-learner effect (DeepObliviate's SISA discussion): the same data
    split over 20 shards gives a less accurate aggregate than one model."""
    recipe = TrainRecipe(epochs=12, batch_size=32, lr=0.003)
    for seed in (0, 1):
        task, ctx = make_tiny_task(recipe=recipe, seed=seed)
        acc = {}
        for shards in (1, 20):
            method, state = fit(task, ctx, shards=shards, slices=1)
            model = method.unlearn(state, task.splits.forget, task, ctx).model
            test = task.splits.test
            acc[shards] = accuracy(model, task.x[test], task.y[test])
        assert acc[1] > acc[20], (seed, acc)


def test_attacks_read_mean_posteriors_whatever_the_aggregation():
    models = [Constant([0, 0, 0, 5.0]), Constant([0, 5.0, 0, 0]), Constant([0, 0, 0, 4.0])]
    x = torch.zeros(2, 1)
    expected = torch.stack([torch.softmax(m(x), dim=1) for m in models]).mean(0)
    for aggregation in ("vote", "mean"):
        ensemble = ShardEnsemble(models, 4, aggregation=aggregation)
        assert torch.allclose(predict_proba(ensemble, x), expected)
    # the vote itself stays what accuracy reads: two of three shards say class 3
    assert ShardEnsemble(models, 4)(x).exp()[0, 3] == pytest.approx(2 / 3)


def test_stacked_training_counts_its_work(make_tiny_task):
    task, ctx = make_tiny_task()
    before = ctx.work
    state = fit(task, ctx, shards=3, slices=2, stacked="on")[1]
    assert state.stacked and ctx.work - before == state.fit_sample_epochs > 0


@pytest.mark.parametrize("stream", [1, 2])
def test_naive_is_sisa_retrained_from_scratch_and_unlearning_matches_it(make_tiny_task, stream):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=12, steps=stream))
    method, state = fit(task, ctx, shards=3, slices=3, stacked="off", aggregation="mean")
    kept = [dict(c[-1]) for c in state.checkpoints]
    before = ctx.work
    naive = method.naive(state, task.splits.forget, task, ctx).model
    work = ctx.work - before
    schedule = slice_epochs(task.recipe.epochs, 3)
    expected = 0  # every shard, every slice step, without the forget points
    for slices in state.layout:
        for r, epochs in enumerate(schedule):
            seen = torch.cat(slices[: r + 1])
            expected += epochs * int((~torch.isin(seen, task.splits.forget)).sum())
    assert work == expected
    for s in range(3):  # fit's state is left alone
        assert same(state.checkpoints[s][-1], kept[s]) and state.deleted.numel() == 0
    result = None
    for forget in task.forget_steps:
        result = method.unlearn(state, forget, task, ctx)
        state = result.state
    assert result is not None
    for ours, theirs in zip(result.model.members, naive.members, strict=True):
        assert same(ours.state_dict(), theirs.state_dict())
    x = task.x[task.splits.test]
    assert torch.equal(predict_logits(result.model, x), predict_logits(naive, x))


def test_naive_is_cached_by_procedure_not_aggregation(make_tiny_task):
    task, ctx = make_tiny_task()
    vote, state = fit(task, ctx, shards=3, slices=2, stacked="off")
    first = vote.naive(state, task.splits.forget, task, ctx).model
    mean, state2 = fit(task, ctx, shards=3, slices=2, stacked="off", aggregation="mean")
    calls = []
    original_train = ctx.train
    ctx.train = lambda *a, **k: calls.append(1) or original_train(*a, **k)
    try:
        second = mean.naive(state2, task.splits.forget, task, ctx).model
    finally:
        ctx.train = original_train
    assert not calls  # loaded from the cache: aggregation does not change training
    for a, b in zip(first.members, second.members, strict=True):
        assert same(a.state_dict(), b.state_dict())
    assert second.aggregation == "mean" and first.aggregation == "vote"
