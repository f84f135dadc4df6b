"""DeepObliviate: exactness against naive block retraining, streams, stopping, maths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from unlearnbench.builtin.methods import deepobliviate as do
from unlearnbench.builtin.methods import residual_memory as rm
from unlearnbench.partition import block_of
from unlearnbench.task import ForgetRequest
from unlearnbench.testing import check_method_contract

SMALL = {"blocks": 8, "epochs_per_block": 2}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train many times faster on one thread on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def at(position: float, count: int) -> ForgetRequest:
    """``count`` random points of the block at ``position`` of the 8-block partition."""
    return ForgetRequest(kind="random", count=count, position=position, blocks=8)


def method(**params: Any) -> do.DeepObliviate:
    return do.create({**SMALL, **params})


def naive_retraining(task, ctx, forget: torch.Tensor, **params: Any) -> dict[str, torch.Tensor]:
    """The same blocks and seeds trained from P_0 without ``forget``, written out here."""
    cfg = do.Config.from_params({**SMALL, **params})
    blocks = method(**params).partition(task)
    model = task.new_model("init")
    for j, members in enumerate(blocks):
        optimizer = do.make_block_optimizer(model, task, cfg)
        ctx.train(
            model,
            members,
            seed_label=do.block_seed_label(j),
            epochs=cfg.epochs(task),
            exclude=forget,
            optimizer=optimizer,
        )
    return model.state_dict()


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_contract(make_tiny_task) -> None:
    check_method_contract("deepobliviate", make_tiny_task, params=SMALL)


def test_deleting_nothing_returns_the_final_model(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    m = method()
    state = m.fit(task, ctx)
    result = m.unlearn(state, task.forget_steps[0][:0], task, ctx)
    assert_same(result.model.state_dict(), state.checkpoints[-1])
    assert result.costs["blocks_retrained"] == 0


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_retraining_without_deletions_has_zero_residual_memory(make_tiny_task, epsilon) -> None:
    task, ctx = make_tiny_task()
    m = method(epsilon=epsilon)
    state = m.fit(task, ctx)
    run = m.retrain(state, 2, 2, state.deleted, task, ctx)
    assert run.residual_memory == [0.0] * len(run.residual_memory)
    assert len(run.residual_memory) == (6 if epsilon == 0 else 3)
    final = state.checkpoints[-1]
    for name, value in run.state.checkpoints[-1].items():
        assert torch.allclose(value, final[name], atol=1e-6, rtol=0), name
    if epsilon == 0:
        assert_same(run.state.checkpoints[-1], final)


@pytest.mark.parametrize(
    "request_",
    [
        ForgetRequest(kind="random", count=4),
        at(0.5, 2),
        ForgetRequest(kind="block", position=0.3, blocks=8),
    ],
    ids=["spread", "one-block", "whole-block"],
)
def test_never_stopping_equals_naive_retraining(make_tiny_task, request_) -> None:
    task, ctx = make_tiny_task(request=request_)
    m = method(epsilon=0.0)
    result = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert_same(result.model.state_dict(), naive_retraining(task, ctx, task.splits.forget))
    first = int(result.series["first_block"][0])
    assert result.costs["blocks_retrained"] == 8 - first + 1
    assert result.series["last_retrained_block"] == [8.0]
    assert result.series["stop_index"] == [8.0 - first]
    assert len(result.series["residual_memory"]) == 8 - first + 1
    assert result.series["residual_memory"][0] > 0


def test_position_requests_land_in_the_intended_block(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.6, 3))
    m = method(epsilon=1e9)
    result = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert result.series["first_block"] == [block_of(0.6, 8) + 1]
    assert result.costs["blocks_retrained"] == 3  # min_blocks: an infinite ε stops at once


def test_persisted_optimizer_state_is_exact_and_costs_storage(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    fresh = method(epsilon=0.0)
    persist = method(epsilon=0.0, optimizer_state="persist")
    fresh_state = fresh.fit(task, ctx)
    state = persist.fit(task, ctx)
    cfg = do.Config.from_params({**SMALL, "optimizer_state": "persist"})
    blocks = persist.partition(task)
    forget = task.splits.forget
    naive = do.stored_training(task, ctx, cfg, blocks, exclude=forget)
    result = persist.unlearn(state, forget, task, ctx)
    assert_same(result.model.state_dict(), naive["checkpoints"][-1])
    # Adam keeps two moments per parameter: about three times the parameters alone
    assert 2.5 < state.storage_bytes / fresh_state.storage_bytes < 3.5
    assert result.costs["storage_bytes"] == state.storage_bytes
    early = method(epsilon=1e9, optimizer_state="persist").unlearn(state, forget, task, ctx)
    first = int(early.series["first_block"][0])
    end = int(early.series["last_retrained_block"][0])
    kept = early.state.optimizer_states
    assert len(kept) == len(early.state.checkpoints) == 9
    assert all(kept[k] is state.optimizer_states[k] for k in [*range(first), *range(end + 1, 9)])
    assert not any(kept[k] is state.optimizer_states[k] for k in range(first, end + 1))


def test_plain_sgd_option(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    m = method(epsilon=0.0, optimizer="sgd", lr=0.05)
    state = m.fit(task, ctx)
    assert state.optimizer_states == []
    result = m.unlearn(state, task.splits.forget, task, ctx)
    naive = naive_retraining(task, ctx, task.splits.forget, optimizer="sgd", lr=0.05)
    assert_same(result.model.state_dict(), naive)
    adam = method().fit(task, ctx).checkpoints[-1]
    assert not torch.equal(state.checkpoints[-1]["1.weight"], adam["1.weight"])


def test_two_deletions_in_sequence_equal_one_of_both(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=6, steps=2))
    m = method(epsilon=0.0)
    state = m.fit(task, ctx)
    for forget in task.forget_steps:
        result = m.unlearn(state, forget, task, ctx)
        state = result.state
    both = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert_same(result.model.state_dict(), both.model.state_dict())
    assert sorted(state.deleted.tolist()) == sorted(task.splits.forget.tolist())
    # the stored checkpoints are those of naive training without both sets
    cfg = do.Config.from_params(SMALL)
    naive = do.stored_training(task, ctx, cfg, m.partition(task), exclude=task.splits.forget)
    for ours, theirs in zip(state.checkpoints, naive["checkpoints"], strict=True):
        assert_same(ours, theirs)


def test_stream_updates_checkpoints_so_the_next_deletion_starts_from_the_result(
    make_tiny_task,
) -> None:
    task, ctx = make_tiny_task(request=at(0.5, 2))
    early = method(epsilon=1e9)  # stops after min_blocks: stitching really happens
    state = early.fit(task, ctx)
    first = early.unlearn(state, task.splits.forget, task, ctx)
    new = first.state
    end = int(first.series["last_retrained_block"][0])
    assert end < 8
    assert_same(new.checkpoints[-1], first.model.state_dict())
    offset = {k: v - state.checkpoints[end][k] for k, v in new.checkpoints[end].items()}
    for k in range(end + 1, 8):
        for name, delta in offset.items():
            moved = new.checkpoints[k][name] - state.checkpoints[k][name]
            assert torch.allclose(moved, delta, atol=1e-6), (k, name)
    for k in range(int(first.series["first_block"][0])):
        assert new.checkpoints[k] is state.checkpoints[k]  # P_0..P_{d-1} are untouched
    # deleting a point of block 1 to the end now: starts before the first deletion,
    # so it must exclude both sets and equal naive retraining without both
    earlier = early.partition(task)[0][:1]
    exact = method(epsilon=0.0)
    second = exact.unlearn(new, earlier, task, ctx)
    both = torch.cat([task.splits.forget, earlier])
    assert_same(second.model.state_dict(), naive_retraining(task, ctx, both))
    # the first call's state is untouched (states are never mutated)
    again = exact.unlearn(state, task.splits.forget, task, ctx)
    assert_same(again.model.state_dict(), naive_retraining(task, ctx, task.splits.forget))


def test_smaller_epsilon_never_retrains_fewer_blocks(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.1, 3))
    counts = []
    for epsilon in (1e9, 0.3, 0.1, 0.05, 0.02, 0.01, 0.001, 0.0):
        m = method(epsilon=epsilon)
        counts.append(m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx).costs)
    retrained = [c["blocks_retrained"] for c in counts]
    assert retrained == sorted(retrained)
    assert retrained[0] == 3 and retrained[-1] == 8


def test_points_in_several_blocks_are_all_retrained(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    m = method(epsilon=1e9)
    blocks = m.partition(task)
    forget = torch.cat([blocks[1][:1], blocks[6][:1]])
    result = m.unlearn(m.fit(task, ctx), forget, task, ctx)
    assert result.series["first_block"] == [2.0]
    assert result.series["last_retrained_block"][0] >= 7


def test_series_start_last_block_tests_the_decay_after_the_last_affected_block(
    make_tiny_task,
) -> None:
    task, ctx = make_tiny_task()
    blocks = method().partition(task)
    forget = torch.cat([blocks[0][:1], blocks[3][:1]])
    runs = {}
    for start in ("first_block", "last_block"):
        m = method(epsilon=1e9, series_start=start)
        runs[start] = m.unlearn(m.fit(task, ctx), forget, task, ctx)
    # from d the rule is first tested after block 4 (the last affected one);
    # from the last affected block it needs min_blocks = 3 blocks of its own
    assert runs["first_block"].series["last_retrained_block"] == [4.0]
    assert runs["first_block"].series["stationarity_x"] == [4.0]
    assert runs["last_block"].series["last_retrained_block"] == [6.0]
    assert runs["last_block"].series["stationarity_x"] == [3.0]


def test_max_blocks_caps_retraining(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.0, 1))
    m = method(epsilon=0.0, max_blocks=4)
    result = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert result.costs["blocks_retrained"] == 4
    assert result.costs["block_speedup"] == 2.0


def test_bad_input_names_the_parameter(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    with pytest.raises(ValueError, match="epsilon"):
        do.create({"epsilon": -1.0})
    with pytest.raises(ValueError, match="optimizer_state"):
        do.create({"optimizer_state": "sometimes"})
    with pytest.raises(ValueError, match="blocks"):
        do.create({"blocks": "8"})
    with pytest.raises(ValueError, match="blocks"):
        do.create({"blocks": 1000}).fit(task, ctx)
    m = method()
    state = m.fit(task, ctx)
    with pytest.raises(ValueError, match="outside the target"):
        m.unlearn(state, task.splits.test[:2], task, ctx)


# ---- the maths -------------------------------------------------------------------------


def test_residual_memory_is_the_l1_distance_of_updates() -> None:
    p0 = {"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([1.0])}
    p1 = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([1.0])}
    q0 = {"w": torch.tensor([5.0, 5.0]), "b": torch.tensor([0.0])}
    q1 = {"w": torch.tensor([5.5, 8.0]), "b": torch.tensor([-1.0])}
    # updates (1, 2, 0) and (0.5, 3, -1): |0.5| + |-1| + |1| = 2.5
    assert rm.residual_memory(p0, p1, q0, q1, ["w", "b"]) == pytest.approx(2.5)
    assert rm.residual_memory(p0, p1, q0, q1, ["w"]) == pytest.approx(1.5)


def test_normalise() -> None:
    assert rm.normalise([4.0, 2.0, 1.0], "first", 10) == [1.0, 0.5, 0.25]
    assert rm.normalise([4.0, 2.0], "per_param", 4) == [1.0, 0.5]
    assert rm.normalise([0.0, 0.0], "first", 4) == [0.0, 0.0]
    with pytest.raises(ValueError, match="normalise"):
        rm.normalise([1.0], "max", 1)


def test_power_law_fit_recovers_exact_data() -> None:
    x = np.arange(1, 21, dtype=float)
    a, b = rm.fit_power_law(list(2.0 * x**-1.5 + 0.3), 1.5)
    assert a == pytest.approx(2.0) and b == pytest.approx(0.3)


def test_stationarity_uses_the_fallback_on_short_series() -> None:
    short = rm.stationarity([1.0, 0.5, 0.4], min_points=11, fallback_h=1.0)
    assert not short.used_dfa and short.h == 1.0
    assert short.slope == pytest.approx(abs(short.a * 1.0 * 3.0**-2.0))
    rng = np.random.default_rng(0)
    long = list(np.arange(1, 41) ** -1.0 + 0.01 * rng.standard_normal(40))
    test = rm.stationarity(long, min_points=11, fallback_h=1.0)
    assert test.used_dfa and test.h != 1.0 and test.x == 40
    assert rm.stationarity(long, 11, 1.0) == test  # reproducible (no RANSAC)
    flat = rm.stationarity([0.0] * 12, min_points=11, fallback_h=0.7)
    assert flat.h == 0.7 and flat.slope == 0.0


def test_stitch_and_shift() -> None:
    retrained = {
        "w": torch.tensor([1.0, 2.0]),
        "n": torch.tensor(5),
        "flag": torch.tensor(True),
    }
    final = {"w": torch.tensor([10.0, 10.0]), "n": torch.tensor(9), "flag": torch.tensor(False)}
    replaced = {"w": torch.tensor([4.0, 4.0]), "n": torch.tensor(6), "flag": torch.tensor(False)}
    out = rm.stitch(retrained, final, replaced)
    assert torch.equal(out["w"], torch.tensor([7.0, 8.0]))
    assert int(out["n"]) == 8 and out["n"].dtype == torch.int64
    assert bool(out["flag"]) is True
    moved = rm.shift(final, retrained, replaced)
    assert torch.equal(moved["w"], torch.tensor([7.0, 8.0]))
    assert rm.state_bytes([retrained, [final["w"]]]) == 8 + 8 + 1 + 8


def test_batchnorm_statistics_are_stitched() -> None:
    bn = torch.nn.BatchNorm1d(3)
    a = {k: v.clone() for k, v in bn.state_dict().items()}
    b = {k: v + 1 for k, v in a.items()}
    c = {k: v + 3 for k, v in a.items()}
    out = rm.stitch(a, c, b)
    assert torch.allclose(out["running_mean"], a["running_mean"] + 2)
    assert int(out["num_batches_tracked"]) == int(a["num_batches_tracked"]) + 2
