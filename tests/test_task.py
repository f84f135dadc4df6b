"""The protocol: disjoint deterministic splits, forget requests, backdoors, streams."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.partition import block_of, label_balanced_blocks
from unlearnbench.task import Backdoor, build_splits, default_trigger_size, select_forget
from unlearnbench.task_values import ForgetRequest, SplitSizes, TaskError


def test_splits_are_disjoint_sized_and_deterministic() -> None:
    sizes = SplitSizes(target=0.4, nonmember=100, test=0.2, shadow_in=0.1, shadow_out=0.1)
    a = build_splits(1000, sizes, seed=3)
    b = build_splits(1000, sizes, seed=3)
    c = build_splits(1000, sizes, seed=4)
    assert {k: len(v) for k, v in a.items()} == {
        "target": 400,
        "nonmember": 100,
        "test": 200,
        "shadow_in": 100,
        "shadow_out": 100,
        "auxiliary": 50,
    }
    together = torch.cat(list(a.values()))
    assert together.unique().numel() == together.numel()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["target"], c["target"])


def test_impossible_split_sizes_are_refused() -> None:
    with pytest.raises(TaskError, match="need 1100 points"):
        build_splits(
            1000,
            SplitSizes(target=900, nonmember=199, test=1, shadow_in=0, shadow_out=0, auxiliary=0),
            0,
        )
    with pytest.raises(TaskError, match="fraction must be < 1"):
        SplitSizes(target=1.5).counts(100)


def test_the_shadow_model_trains_on_as_many_points_as_the_target_by_default() -> None:
    counts = SplitSizes().counts(1797)
    assert counts["shadow_in"] == counts["target"]
    assert SplitSizes().warnings() == []
    (warning,) = SplitSizes(target=0.4, shadow_in=0.15).warnings()
    assert "splits.shadow_in" in warning and "ML-Leaks" in warning
    assert SplitSizes(shadow_in=0, shadow_out=0).warnings() == []  # no shadow model at all


def test_label_balanced_blocks() -> None:
    labels = torch.arange(103) % 4
    idx = torch.arange(103)
    blocks = label_balanced_blocks(idx, labels, 10, seed=1)
    sizes = [b.numel() for b in blocks]
    assert max(sizes) - min(sizes) <= 1 and sum(sizes) == 103
    assert torch.cat(blocks).sort().values.equal(idx)
    for block in blocks:
        counts = torch.bincount(labels[block], minlength=4)
        assert int(counts.max() - counts.min()) <= 1
    again = label_balanced_blocks(idx, labels, 10, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(blocks, again, strict=True))
    assert block_of(0.0, 10) == 0 and block_of(1.0, 10) == 9 and block_of(0.55, 10) == 5


def _target(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.arange(1000) % 10
    return torch.arange(n) * 3, y


def test_random_request_is_a_subset_of_target() -> None:
    target, y = _target()
    forget = select_forget(target, y, ForgetRequest(kind="random", count=15), seed=0)
    assert forget.numel() == 15 and torch.isin(forget, target).all()
    frac = select_forget(target, y, ForgetRequest(kind="random", fraction=0.1), seed=0)
    assert frac.numel() == 20


def test_class_and_block_requests() -> None:
    target, y = _target()
    forget = select_forget(target, y, ForgetRequest(kind="class", label=3), seed=0)
    assert (y[forget] == 3).all() and forget.numel() == int((y[target] == 3).sum())
    request = ForgetRequest(kind="block", position=0.5, blocks=8)
    block = select_forget(target, y, request, seed=0)
    assert torch.equal(block, label_balanced_blocks(target, y, 8, 0)[4])
    positioned = select_forget(
        target, y, ForgetRequest(kind="random", count=3, position=0.5, blocks=8), seed=0
    )
    assert torch.isin(positioned, block).all()


def test_a_positioned_request_larger_than_its_block_fills_the_next_blocks() -> None:
    target, y = _target()  # 200 points, 8 blocks of 25
    parts = label_balanced_blocks(target, y, 8, 0)
    request = ForgetRequest(kind="random", count=60, position=0.25, blocks=8)
    forget = select_forget(target, y, request, seed=0)
    assert forget.numel() == 60 and forget.unique().numel() == 60
    assert torch.isin(parts[2], forget).all() and torch.isin(parts[3], forget).all()
    assert int(torch.isin(parts[4], forget).sum()) == 10
    assert not torch.isin(torch.cat(parts[:2] + parts[5:]), forget).any()
    assert torch.equal(forget, select_forget(target, y, request, seed=0))
    too_many = ForgetRequest(kind="random", count=60, position=0.9, blocks=8)
    with pytest.raises(TaskError, match=r"from block 7 on, but blocks 7..7 hold only 25"):
        select_forget(target, y, too_many, seed=0)


def test_requests_larger_than_possible_fail_clearly() -> None:
    target, y = _target(50)
    with pytest.raises(TaskError, match="forget 80 points but the target set has only 50"):
        select_forget(target, y, ForgetRequest(kind="random", count=80), seed=0)
    with pytest.raises(TaskError, match="not a class"):
        select_forget(target, y, ForgetRequest(kind="class", label=12), seed=0)
    with pytest.raises(TaskError, match="exactly one of count or fraction"):
        ForgetRequest(kind="random")


def test_backdoor_trigger_shapes() -> None:
    assert default_trigger_size((3, 32, 32)) == 5 and default_trigger_size((1, 8, 8)) == 3
    images = torch.zeros(2, 1, 8, 8)
    stamped = Backdoor(0, 3, 1.0).apply(images)
    assert stamped[:, :, -3:, -3:].eq(1.0).all() and stamped[:, :, :5, :].eq(0).all()
    assert images.eq(0).all(), "apply must not modify its input"
    seq = Backdoor(0, 4, 2.0).apply(torch.zeros(2, 1, 40))
    assert seq[0, 0, -4:].tolist() == [2.0, -2.0, 2.0, -2.0]


def test_backdoor_task_poisons_exactly_the_forget_set(make_tiny_task) -> None:
    task, _ = make_tiny_task(request=ForgetRequest(kind="backdoor", count=20, target_class=1))
    forget = task.splits.forget
    assert task.backdoor is not None
    assert (task.y[forget] == 1).all()
    size = task.backdoor.trigger_size
    assert task.x[forget][:, :, -size:, -size:].eq(task.backdoor.value).all()
    clean, _ = make_tiny_task()
    others = task.splits.retain
    assert torch.equal(task.x[others], clean.x[others])


def test_stream_steps_partition_the_forget_set(make_tiny_task) -> None:
    task, _ = make_tiny_task(request=ForgetRequest(kind="random", count=11, steps=3))
    assert [s.numel() for s in task.forget_steps] == [4, 4, 3]
    assert torch.cat(task.forget_steps).sort().values.equal(task.splits.forget.sort().values)


def test_new_model_is_seeded_and_leaves_global_rng_alone(make_tiny_task) -> None:
    task, _ = make_tiny_task()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = task.new_model("init"), task.new_model("init")
    after = torch.rand(1)
    assert torch.equal(before, after)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = task.new_model("shadow")
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_stream_costs_combine_by_name_suffix() -> None:
    from unlearnbench.specs import combine_stream_costs

    steps = [
        {
            "blocks_retrained": 3,
            "storage_bytes": 100,
            "block_speedup": 10,
            "x_final": 0.5,
        },
        {
            "blocks_retrained": 5,
            "storage_bytes": 90,
            "block_speedup": 20,
            "x_final": 0.1,
        },
    ]
    combined = combine_stream_costs(steps)
    assert combined == {
        "blocks_retrained": 8.0,
        "storage_bytes": 100.0,
        "block_speedup": pytest.approx(200**0.5),  # geometric, never (10 + 20) / 2
        "x_final": 0.1,
    }


def test_a_methods_ratio_counters_are_recorded_as_speed() -> None:
    from unlearnbench.execution.cell import counter_role

    assert counter_role("block_speedup") == "speed"
    assert counter_role("compression_ratio") == "speed"
    assert counter_role("blocks_retrained") == "cost"


def test_backdoor_position_lands_in_the_methods_block(make_tiny_task) -> None:
    """Partitions use the labels from before poisoning, so a backdoor request with
    a position and a method with the same block count agree on the block."""
    request = ForgetRequest(kind="backdoor", count=5, target_class=0, position=0.5, blocks=6)
    task, _ = make_tiny_task(request=request)
    blocks = label_balanced_blocks(task.splits.target, task.clean_y, 6, task.seed)
    assert torch.isin(task.splits.forget, blocks[3]).all()
    assert not torch.equal(task.clean_y, task.y)


def test_request_labels_tell_backdoors_apart() -> None:
    a = ForgetRequest(kind="backdoor", count=10, target_class=0)
    b = ForgetRequest(kind="backdoor", count=10, target_class=1, trigger_size=3)
    assert a.label_text == "backdoor:10→0" and b.label_text == "backdoor:10→1/t3"
