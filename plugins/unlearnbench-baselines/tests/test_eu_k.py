"""EU-k: cross-checked against the authors' re-initialisation and loop."""

from __future__ import annotations

import torch
from conftest import first_deletion
from goel_reference import reset_final, train_loop
from unlearnbench.seeding import generator
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.common import batches
from unlearnbench_baselines.last_k import last_k_layers

DEEPER = {"widths": [32, 16]}


def test_eu_k_matches_the_reference_loop(make_tiny_task):
    task, ctx = make_tiny_task(architecture_params=DEEPER)
    params = {"k": 2, "epochs": 3, "lr": 0.05}
    ours = run_unlearning(registry().get("method", "eu_k"), task, ctx, params).model
    _, retain = first_deletion(task)
    seed = (task.seed, "eu_k", 0)
    loaders = [list(batches(retain, seed, e, task.recipe.batch_size)) for e in range(3)]
    theirs = reset_final(ctx.original(), 2, reinit=True, gen=generator(seed, "reinit"))
    theirs = train_loop(theirs, task, loaders, 0.05, 0.005, 0.9, 5e-5, 10.0)
    original = list(ctx.original().parameters())
    for i, (p, q) in enumerate(zip(ours.parameters(), theirs.parameters(), strict=True)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert torch.equal(p, original[i]) == (i < 2)


def test_eu_k_with_no_epochs_is_the_reinitialised_model(make_tiny_task):
    task, ctx = make_tiny_task(architecture_params=DEEPER)
    model = run_unlearning(registry().get("method", "eu_k"), task, ctx, {"epochs": 0}).model
    (last,) = last_k_layers(model, 1)
    assert torch.equal(last.bias, torch.zeros_like(last.bias))
    std = float(last.weight.detach().std())
    assert abs(std - (2 / last.weight.shape[1]) ** 0.5) < 0.1  # Kaiming normal, fan-in
