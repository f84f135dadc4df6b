"""DeepObliviate: exactness against naive block retraining, streams, stopping, maths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from unlearnbench.builtin.methods import deepobliviate as do
from unlearnbench.builtin.methods.deepobliviate import blocks as do_blocks
from unlearnbench.builtin.methods.deepobliviate import method as do_method
from unlearnbench.builtin.methods.deepobliviate import residual_memory as rm
from unlearnbench.execution.cell import run_method
from unlearnbench.execution.plan import Component
from unlearnbench.partition import block_of
from unlearnbench.specs import combine_stream_costs, resolve_params
from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import check_method_contract, registry

SMALL = {"blocks": 8, "epochs_per_block": 2}
# stops at the first test of the rule (after min_blocks blocks), whatever Δ does
EARLY = {"epsilon": 1e9, "stop_guard": "none", "min_blocks": 3}


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
    cfg = do.Settings.from_params({**SMALL, **params})
    blocks = method(**params).partition(task)
    model = task.new_model("init")
    for j, members in enumerate(blocks):
        optimizer = do_blocks.make_block_optimizer(model, task, cfg)
        ctx.train(
            model,
            members,
            seed_label=do_blocks.block_seed_label(j),
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
    m = method(epsilon=epsilon, min_blocks=3)
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
    m = method(**EARLY)
    result = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert result.series["first_block"] == [block_of(0.6, 8) + 1]
    assert result.costs["blocks_retrained"] == 3  # min_blocks: an infinite ε stops at once


def test_persisted_optimizer_state_is_exact_and_costs_storage(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    fresh = method(epsilon=0.0)
    persist = method(epsilon=0.0, optimizer_state="persist")
    fresh_state = fresh.fit(task, ctx)
    state = persist.fit(task, ctx)
    cfg = do.Settings.from_params({**SMALL, "optimizer_state": "persist"})
    blocks = persist.partition(task)
    forget = task.splits.forget
    naive = do_blocks.stored_training(task, ctx, cfg, blocks, exclude=forget)
    result = persist.unlearn(state, forget, task, ctx)
    assert_same(result.model.state_dict(), naive["checkpoints"][-1])
    # Adam keeps two moments per parameter: about three times the parameters alone
    assert 2.5 < state.storage_bytes / fresh_state.storage_bytes < 3.5
    assert result.costs["storage_bytes"] == state.storage_bytes
    early = method(**EARLY, optimizer_state="persist").unlearn(state, forget, task, ctx)
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
    cfg = do.Settings.from_params(SMALL)
    naive = do_blocks.stored_training(task, ctx, cfg, m.partition(task), exclude=task.splits.forget)
    for ours, theirs in zip(state.checkpoints, naive["checkpoints"], strict=True):
        assert_same(ours, theirs)


def test_stream_updates_checkpoints_so_the_next_deletion_starts_from_the_result(
    make_tiny_task,
) -> None:
    task, ctx = make_tiny_task(request=at(0.5, 2))
    early = method(**EARLY)  # stops after min_blocks: stitching really happens
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
    assert retrained[0] >= 3 and retrained[-1] == 8


def test_points_in_several_blocks_are_all_retrained(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    m = method(**EARLY)
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
        m = method(**EARLY, series_start=start)
        runs[start] = m.unlearn(m.fit(task, ctx), forget, task, ctx)
    # from d the rule is first tested after block 4 (the last affected one);
    # from the last affected block it needs min_blocks = 3 blocks of its own
    assert runs["first_block"].series["last_retrained_block"] == [4.0]
    assert runs["first_block"].series["stationarity_x"] == [4.0]
    assert runs["last_block"].series["last_retrained_block"] == [6.0]
    assert runs["last_block"].series["stationarity_x"] == [6.0]  # x is the block order


def test_max_blocks_caps_retraining(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.0, 1))
    m = method(epsilon=0.0, max_blocks=4)
    result = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert result.costs["blocks_retrained"] == 4
    assert result.costs["block_speedup"] == 2.0


def test_bad_input_names_the_parameter(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
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


@pytest.mark.parametrize(
    ("name", "bad", "edge"),
    [
        ("blocks", 0, 1),
        ("epochs_per_block", -1, 0),
        ("epsilon", -0.01, 0.0),
        ("epsilon", float("inf"), 0.0),
        ("min_blocks", 1, 2),
        ("dfa_min_points", 3, 4),
        ("fallback_h", 0.0, 1e-3),
        ("max_blocks", -1, 0),
        ("lr", -1e-3, 0.0),
    ],
)
def test_parameter_bounds(name: str, bad: Any, edge: Any) -> None:
    with pytest.raises(ValueError, match=f"parameter {name}:.*valid range|finite"):
        do.create({name: bad})
    assert getattr(do.create({name: edge}).cfg, name) == edge


def test_every_numeric_parameter_declares_its_range() -> None:
    for p in do.PARAMS:
        if p.kind in (int, float):
            assert p.minimum is not None, p.name


# ---- stopping costs and naive retraining -------------------------------------------------


def test_stopping_is_recorded_as_costs_and_series(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.0, 2))
    m = method(**EARLY)
    fallback = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert fallback.costs["stop_block_final"] == 3.0 == fallback.series["last_retrained_block"][0]
    assert fallback.costs["rule_stopped"] == 1.0
    assert fallback.costs["dfa_decided"] == 0.0  # 3 points: the fallback h decided
    assert fallback.costs["dfa_h_final"] == 1.0 and fallback.series["dfa_used"] == [0.0]
    m = method(**{**EARLY, "min_blocks": 5}, dfa_min_points=4)
    dfa = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert dfa.costs["stop_block_final"] == 5.0
    assert dfa.costs["rule_stopped"] == 1.0 and dfa.costs["dfa_decided"] == 1.0
    assert dfa.costs["dfa_h_final"] == dfa.series["dfa_h"][-1] != 1.0
    m = method(epsilon=0.0, dfa_min_points=4)
    end = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)
    assert end.costs["stop_block_final"] == 8.0
    assert end.costs["rule_stopped"] == 0.0 == end.costs["dfa_decided"]
    assert end.series["stationarity"] == []  # ε = 0 tests nothing ...
    delta = rm.normalise(end.series["residual_memory"], "first", 0)
    assert end.costs["dfa_h_final"] == rm.StopRule(0.0, dfa_min_points=4).test(delta, 1).h


def test_stopping_costs_combine_over_a_stream(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=6, steps=2))
    m = method(**EARLY)
    state = m.fit(task, ctx)
    steps = []
    for forget in task.forget_steps:
        result = m.unlearn(state, forget, task, ctx)
        steps.append(result.costs)
        state = result.state
    combined = combine_stream_costs(steps)
    assert combined["stop_block_final"] == steps[-1]["stop_block_final"]
    assert combined["rule_stopped"] == 2.0  # a count of rule-decided deletions
    assert combined["blocks_retrained"] == sum(s["blocks_retrained"] for s in steps)


def snapshot_state(state: do.DeepObliviateState) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in c.items()} for c in state.checkpoints]


@pytest.mark.parametrize("optimizer_state", ["fresh", "persist"])
def test_naive_is_the_never_stopping_model_built_once_for_every_epsilon(
    make_tiny_task, monkeypatch, optimizer_state
) -> None:
    task, ctx = make_tiny_task(request=at(0.4, 2))
    forget = task.splits.forget
    builds = []
    real = do_method.retrain_to_end

    def counting(*args: Any, **kwargs: Any) -> dict[str, Any]:
        builds.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(do_method, "retrain_to_end", counting)
    models, work = [], []
    for epsilon in (0.1, 0.02):
        m = method(epsilon=epsilon, optimizer_state=optimizer_state)
        state = m.fit(task, ctx)
        kept = snapshot_state(state)
        before = ctx.work
        naive = m.naive(state, forget, task, ctx)
        work.append(ctx.work - before)
        models.append(naive.model.state_dict())
        # fit's state is unchanged
        assert state.deleted.numel() == 0
        for ours, theirs in zip(state.checkpoints, kept, strict=True):
            assert_same(ours, theirs)
    assert builds == [block_of(0.4, 8)]  # built once (from the first affected block), then loaded
    assert work[0] == work[1] == naive.costs["retrain_sample_epochs"] > 0  # counted both times
    assert_same(models[0], models[1])
    exact = method(epsilon=0.0, optimizer_state=optimizer_state)
    never = exact.unlearn(exact.fit(task, ctx), forget, task, ctx)
    assert_same(models[0], never.model.state_dict())
    other = method(optimizer_state=optimizer_state).naive(state, forget[:1], task, ctx)
    assert len(builds) == 2  # another deleted set is another artifact
    assert not torch.equal(other.model.state_dict()["1.weight"], models[0]["1.weight"])


def test_the_runner_calls_naive_before_unlearning_and_counts_its_work(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=6, steps=2))
    spec = registry().get("method", "deepobliviate")
    params = resolve_params(spec.params, {**SMALL, "epsilon": 0.0})
    outcome = run_method(spec, Component("deepobliviate", params, "do"), task, ctx)
    assert outcome.naive is not None
    assert_same(outcome.naive.state_dict(), outcome.model.state_dict())  # ε = 0 is exact
    first = min(block_of_point(task, int(i)) for i in task.splits.forget)
    per_epoch = sum(len(b) for b in method().partition(task)[first:]) - 6
    assert outcome.naive_work == per_epoch * SMALL["epochs_per_block"]


def block_of_point(task, index: int) -> int:
    blocks = method().partition(task)
    return next(j for j, members in enumerate(blocks) if index in members.tolist())


def test_naive_after_a_stitched_deletion_still_retrains_exactly(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.5, 2))
    m = method(**EARLY)
    first = m.unlearn(m.fit(task, ctx), task.splits.forget, task, ctx)  # stitched: approximate
    earlier = m.partition(task)[1][:1]
    naive = m.naive(first.state, earlier, task, ctx)
    both = torch.cat([task.splits.forget, earlier])
    assert_same(naive.model.state_dict(), naive_retraining(task, ctx, both))
    assert first.state.deleted.numel() == 2  # the stream's state is not changed


def test_storage_counts_the_b_stored_models(make_tiny_task) -> None:
    task, ctx = make_tiny_task()
    state = method().fit(task, ctx)
    one = rm.state_bytes([task.new_model("init").state_dict()])
    assert state.storage_bytes == 8 * one  # P_1..P_8; P_0 is the seeded initialisation


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
    x = np.arange(31, 51, dtype=float)  # at block orders 31..50
    a, b = rm.fit_power_law(list(2.0 * x**-1.5 + 0.3), 1.5, first_x=31)
    assert a == pytest.approx(2.0) and b == pytest.approx(0.3)
    assert rm.fit_power_law([0.1] * 5, 1.0, first_x=7) == (0.0, pytest.approx(0.1))


def test_dfa_falls_back_on_short_or_undefined_series() -> None:
    assert rm.dfa_exponent([1.0, 0.5, 0.4], 11, 0.7) == (0.7, False)
    rng = np.random.default_rng(0)
    long = list(np.arange(1, 41) ** -1.0 + 0.01 * rng.standard_normal(40))
    h, used = rm.dfa_exponent(long, 11, 0.7)
    assert used and h > 0 and h != 0.7
    assert rm.dfa_exponent(long, 11, 0.7) == (h, True)  # reproducible (no RANSAC)
    assert rm.dfa_exponent([0.3] * 12, 11, 0.7) == (0.7, False)  # every fluctuation is zero


T = np.arange(1, 81, dtype=float)
NOISE = np.random.default_rng(1).standard_normal(80)
DECAY = list(T**-1.0 + 0.002 * NOISE)
RISING = list(1.0 + 0.03 * T + 0.005 * NOISE)
PLATEAU = list(1.0 + 0.05 * NOISE)
DROP_FLAT = [1.0, 0.5] + [0.3] * 78
EPSILONS = (0.1, 0.05, 0.02, 0.005)


@pytest.mark.parametrize("first_block", [1, 31])
@pytest.mark.parametrize("x_axis", rm.POWER_LAW_X)
def test_a_power_law_decay_stops_later_for_smaller_epsilon(first_block, x_axis) -> None:
    stops = [rm.StopRule(e, power_law_x=x_axis).first_stop(DECAY, first_block) for e in EPSILONS]
    assert None not in stops
    assert stops == sorted(stops) and len(set(stops)) == len(stops), stops


@pytest.mark.parametrize("first_block", [1, 31])
def test_the_block_order_reading_needs_more_blocks_after_the_first_block(first_block) -> None:
    paper = rm.StopRule(0.02).first_stop(DECAY, first_block)
    from_one = rm.StopRule(0.02, power_law_x="from_one").first_stop(DECAY, first_block)
    assert paper is not None and from_one is not None
    assert paper == from_one if first_block == 1 else paper > from_one


@pytest.mark.parametrize("series", [RISING, list(1.0 + 0.5 * np.log(T))], ids=["linear", "log"])
def test_a_rising_series_never_stops(series) -> None:
    for epsilon in (*EPSILONS, 1e9):
        for x_axis in rm.POWER_LAW_X:
            rule = rm.StopRule(epsilon, power_law_x=x_axis)
            assert rule.first_stop(series, 11) is None
    # the paper's literal |slope| < ε accepts it once the fitted slope is small
    assert rm.StopRule(0.1, guard="none", power_law_x="from_one").first_stop(series, 11)


def test_each_half_of_the_guard_holds_on_its_own() -> None:
    """A fit tilting upwards, and a new maximum at the end, each block a stop."""
    tilting = [1.0, 1.1, 1.2, 1.3, 1.25]  # the newest is not the largest, but a < 0
    test = rm.StopRule(0.1).test(tilting, 31)
    assert test.a < 0 and abs(test.slope) < 0.1 and test.rising and not test.stop
    # a > 0 (a steady decline), but the newest is the largest; the decline is long and
    # even so that the fit's sign holds for any DFA exponent (a single early drop did
    # not: its sign followed nolds' h, which moved with numpy/scipy versions)
    spike = [1.0 - 0.02 * i for i in range(19)] + [1.01]
    test = rm.StopRule(0.1).test(spike, 31)
    assert test.a > 0 and abs(test.slope) < 0.1 and test.rising and not test.stop
    for series in (tilting, spike):
        assert rm.StopRule(0.1, guard="none").test(series, 31).stop


@pytest.mark.parametrize("epsilon", [0.1, 0.02])
def test_a_noisy_plateau_stops(epsilon) -> None:
    stop = rm.StopRule(epsilon).first_stop(PLATEAU, 21)
    assert stop is not None
    test = rm.StopRule(epsilon).test(PLATEAU[:stop], 21)
    assert test.stop and not test.rising and abs(test.slope) < epsilon


def test_a_flat_series_after_a_drop_stops_and_smaller_epsilon_waits_longer() -> None:
    stops = [rm.StopRule(e).first_stop(DROP_FLAT, 11) for e in EPSILONS]
    assert None not in stops and stops == sorted(stops) and stops[0] < stops[-1], stops
    assert rm.StopRule(1e9).first_stop([0.0] * 5, 1) == 3  # no influence at all: stop


def test_short_series_decisions_depend_on_the_data() -> None:
    """Below dfa_min_points h is the fallback, but a and b are fitted and the guard applies."""
    rule = rm.StopRule(0.1)
    steep, gentle, up = [1.0, 0.6, 0.3], [1.0, 0.97, 0.95], [1.0, 1.05, 1.1]
    tests = {
        name: rule.test(s, 31) for name, s in [("steep", steep), ("gentle", gentle), ("up", up)]
    }
    assert all(not t.used_dfa and t.h == 1.0 for t in tests.values())
    assert not tests["steep"].stop and tests["steep"].slope < -0.1
    assert tests["gentle"].stop
    assert tests["up"].rising and not tests["up"].stop and abs(tests["up"].slope) < 0.1
    assert not rm.StopRule(0.1).test(steep[:2], 31).stop  # before min_points: never


def test_replaying_the_rule_on_the_full_series_gives_the_real_stop(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=at(0.0, 3))
    state = method().fit(task, ctx)
    full = method(epsilon=0.0).unlearn(state, task.splits.forget, task, ctx)
    delta = full.series["residual_memory_normalised"]
    for options in ({"epsilon": 0.1}, {"epsilon": 0.3, "stop_guard": "none"}, EARLY):
        m = method(**options)
        real = m.unlearn(state, task.splits.forget, task, ctx).costs["blocks_retrained"]
        assert real == (m.cfg.rule.first_stop(delta, 1) or len(delta)), options
    assert rm.StopRule(1e9, guard="none").first_stop(delta, 1, shortest=6) == 6


def test_the_rule_uses_dfa_from_dfa_min_points_on() -> None:
    rule = rm.StopRule(0.1)
    assert not rule.test(DECAY[:10], 1).used_dfa
    long = rule.test(DECAY[:11], 1)
    assert long.used_dfa and long.h != 1.0 and long.x == 11.0 and long.n == 11


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


def test_the_description_show_prints_is_the_one_in_the_docs() -> None:
    """``unlearnbench show deepobliviate`` prints DESCRIPTION; docs/methods.md holds the
    same text, so the two cannot drift apart."""
    from pathlib import Path

    from unlearnbench.builtin.methods.deepobliviate.description import DESCRIPTION

    docs = Path(__file__).resolve().parents[1] / "docs" / "methods.md"
    assert registry().get("method", "deepobliviate").description == DESCRIPTION
    assert DESCRIPTION.strip() in docs.read_text(encoding="utf-8")
