"""Amnesiac: its recorded training is the task's original, and its subtraction
matches the authors' notebook restated."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import first_deletion, same_weights
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import resolve_params
from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import registry, run_unlearning
from unlearnbench.training import epoch_order, make_optimizer


def reference_amnesiac(task, forget):
    """lmgraves/AmnesiacML ``Amnesiac Unlearning - MNIST.ipynb`` at ae594cd,
    restated: ``train`` keeps ``after - before`` of every ``weight``/``bias``
    state entry for each batch that holds a sensitive point, then the
    unlearning cell subtracts every kept step (``const = 1``) in order. The
    batches are the task's training batches (same order and seeds)."""
    recipe, x, y = task.recipe, task.x, task.y
    model = task.new_model("init")
    optimizer = make_optimizer(model.parameters(), recipe)
    seed = (task.seed, "train")
    model.train()
    steps = []
    for epoch in range(recipe.epochs):
        torch.manual_seed(derive_seed(seed, "noise", epoch))
        order = epoch_order(task.splits.target, seed, epoch)
        for begin in range(0, order.numel(), recipe.batch_size):
            idx = order[begin : begin + recipe.batch_size]
            sensitive = bool(torch.isin(idx, forget).any())
            optimizer.zero_grad()
            output = model(x[idx])
            if sensitive:
                before = {
                    k: v.clone()
                    for k, v in model.state_dict().items()
                    if "weight" in k or "bias" in k
                }
            F.cross_entropy(output, y[idx]).backward()
            optimizer.step()
            if sensitive:
                after = {k: v.clone() for k, v in model.state_dict().items() if k in before}
                steps.append({k: after[k] - before[k] for k in before})
    with torch.no_grad():
        state = model.state_dict()
        for step in steps:
            for key in step:
                state[key] = state[key] - 1 * step[key]
        model.load_state_dict(state)
    return model, len(steps)


def test_amnesiac_matches_the_reference_subtraction(make_tiny_task):
    task, ctx = make_tiny_task()
    spec = registry().get("method", "amnesiac")
    result = run_unlearning(spec, task, ctx, {"epochs": 0})
    forget, _ = first_deletion(task)
    theirs, undone = reference_amnesiac(task, forget)
    assert result.costs["batches_undone"] == undone > 0
    for p, q in zip(result.model.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not same_weights(result.model, ctx.original())


def test_amnesiac_records_the_tasks_own_training(make_tiny_task):
    task, ctx = make_tiny_task()
    spec = registry().get("method", "amnesiac")
    state = spec.create(resolve_params(spec.params, {})).fit(task, ctx)
    assert same_weights(state.model, ctx.original())
    steps = state.batch_of_step.shape[0]
    per_epoch = -(-task.splits.target.numel() // task.recipe.batch_size)
    assert steps == task.recipe.epochs * per_epoch


def test_a_stream_never_undoes_a_batch_twice(make_tiny_task):
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    result = run_unlearning(registry().get("method", "amnesiac"), task, ctx, {"epochs": 0})
    state = result.state
    removed = torch.cat(task.forget_steps)
    hit = torch.isin(state.batch_of_step, removed).any(dim=1)
    assert torch.equal(state.undone, hit)
    assert result.costs["storage_bytes"] > 0
