"""The host's ``inputs.replicates(n, label)``: training randomisations of a cell."""

from __future__ import annotations

import pytest
import torch

from unlearnbench.execution import cell, context
from unlearnbench.task import ForgetRequest
from unlearnbench.testing import make_replicates

REQUEST = ForgetRequest(kind="random", count=10, steps=2)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_replicates_keep_the_data_and_differ_in_training(make_tiny_task):
    task, ctx = make_tiny_task(request=REQUEST)
    reps = make_replicates(task, ctx, "finetune")(2, "replicate")
    assert len(reps) == 2
    own = ctx.original()
    originals = [r.original for r in reps]
    assert not _same(originals[0], originals[1])
    assert not any(_same(o, own) for o in originals)
    assert not _same(reps[0].retrained, reps[1].retrained)
    assert not _same(reps[0].unlearned, reps[0].retrained)
    assert all(r.work > 0 for r in reps)
    for i in range(2):  # the same splits, forget set and stream; only the seed differs
        twin = cell.replicate_task(task, "replicate", i)
        assert twin.seed != task.seed and twin.train_key != task.train_key
        assert twin.key != task.key
        for name, part in vars(task.splits).items():
            assert torch.equal(getattr(twin.splits, name), part)
        steps = zip(twin.forget_steps, task.forget_steps, strict=True)
        assert all(torch.equal(a, b) for a, b in steps)
        assert torch.equal(twin.x, task.x) and torch.equal(twin.y, task.y)
    other = cell.replicate_task(task, "other", 0)
    assert other.seed != cell.replicate_task(task, "replicate", 0).seed


def test_same_seed_same_replicates_and_the_second_call_trains_nothing(make_tiny_task, monkeypatch):
    task, ctx = make_tiny_task(request=REQUEST)
    first = make_replicates(task, ctx, "finetune")(2, "replicate")
    calls = []
    real = context.train_model
    monkeypatch.setattr(context, "train_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = make_replicates(task, ctx, "finetune")(2, "replicate")  # a new cell, same cache
    assert calls == []
    for a, b in zip(first, again, strict=True):
        assert _same(a.original, b.original) and _same(a.unlearned, b.unlearned)
        assert _same(a.retrained, b.retrained)
        assert a.work == pytest.approx(b.work)  # cached work still counts
    # a fresh cache folder: trained again, to the same weights (deterministic on CPU)
    task2, ctx2 = make_tiny_task(request=REQUEST, seed=0)
    ctx2.cache = type(ctx.cache)(ctx.cache.root.parent / "other")
    rebuilt = make_replicates(task2, ctx2, "finetune")(1, "replicate")
    assert calls and _same(rebuilt[0].unlearned, first[0].unlearned)


def test_the_reference_replicate_is_its_own_retrained_model(make_tiny_task):
    task, ctx = make_tiny_task()
    (rep,) = make_replicates(task, ctx, "retrain")(1, "replicate")
    assert rep.unlearned is rep.retrained
    (orig,) = make_replicates(task, ctx, "original")(1, "replicate")
    assert _same(orig.unlearned, orig.original) and _same(orig.retrained, rep.retrained)


def test_a_count_below_one_is_refused(make_tiny_task):
    task, ctx = make_tiny_task()
    with pytest.raises(ValueError, match="count"):
        make_replicates(task, ctx)(0, "replicate")


@pytest.mark.parametrize("name", ["u_lira", "unlearning_score"])
def test_an_evaluator_needing_replicates_names_itself_when_the_host_gives_none(
    name: str, make_tiny_task
) -> None:
    from unlearnbench.specs import EvaluationInputs
    from unlearnbench.testing import registry

    task, ctx = make_tiny_task()
    original = ctx.original()
    inputs = EvaluationInputs(
        task=task, original=original, unlearned=original, reference=original, costs={}
    )
    spec = registry().get("evaluator", name)
    evaluator = spec.create({"models": 8})  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=f"{name} needs inputs.replicates"):
        evaluator.evaluate(inputs, ctx)


def test_naive_models_are_built_only_when_asked_and_only_for_methods_with_naive(
    make_tiny_task, monkeypatch
):
    from unlearnbench.builtin.methods import sisa

    calls = []
    real = sisa.Sisa.naive
    monkeypatch.setattr(sisa.Sisa, "naive", lambda *a, **k: calls.append(1) or real(*a, **k))
    task, ctx = make_tiny_task()
    plain = make_replicates(task, ctx, "sisa")(2, "replicate")
    assert calls == [] and all(r.naive is None for r in plain)  # not asked: not paid for
    source = make_replicates(task, ctx, "sisa")
    with_naive = source(2, "replicate", naive=True)
    assert len(calls) == 2
    for r, p in zip(with_naive, plain, strict=True):
        assert r.naive is not None and not r.of_reference
        assert r.work > p.work  # the naive retraining's work counts
        # SISA's unlearning is its naive retraining (stacked: up to float order)
        x = task.x[task.splits.test]
        assert torch.allclose(r.naive.posteriors(x), r.unlearned.posteriors(x), atol=1e-5)
    again = source(2, "replicate", naive=True)  # the same cell: kept, not retrained
    assert len(calls) == 2 and again[0].naive is with_naive[0].naive
    (first, second) = with_naive
    x = task.x[task.splits.test]
    assert not torch.allclose(first.naive.posteriors(x), second.naive.posteriors(x))
    (finetune,) = make_replicates(task, ctx, "finetune")(1, "replicate", naive=True)
    assert finetune.naive is None
    (retrain,) = make_replicates(task, ctx, "retrain")(1, "replicate", naive=True)
    assert retrain.naive is None and retrain.of_reference


def test_deepobliviate_naive_replicates_are_cached_across_cells(make_tiny_task, monkeypatch):
    task, ctx = make_tiny_task()
    first = make_replicates(task, ctx, "deepobliviate")(1, "replicate", naive=True)
    calls = []
    real = context.train_model
    monkeypatch.setattr(context, "train_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = make_replicates(task, ctx, "deepobliviate")(1, "replicate", naive=True)
    assert calls == [] and _same(first[0].naive, again[0].naive)
    assert not _same(first[0].naive, first[0].retrained)
