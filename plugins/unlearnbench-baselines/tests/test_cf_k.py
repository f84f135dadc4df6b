"""CF-k: cross-checked against the authors' loop; only the last k layers move."""

from __future__ import annotations

import torch
from conftest import first_deletion
from goel_reference import reset_final, train_loop
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.common import batches

DEEPER = {"widths": [32, 16]}  # three linear layers, so k = 2 leaves one frozen


def test_cf_k_matches_the_reference_loop(make_tiny_task):
    task, ctx = make_tiny_task(architecture_params=DEEPER)
    params = {"k": 2, "epochs": 3, "lr": 0.05, "clip": 0.5}
    ours = run_unlearning(registry().get("method", "cf_k"), task, ctx, params).model
    _, retain = first_deletion(task)
    seed = (task.seed, "cf_k", 0)
    loaders = [list(batches(retain, seed, e, task.recipe.batch_size)) for e in range(3)]
    theirs = reset_final(ctx.original(), 2, reinit=False, gen=None)
    theirs = train_loop(theirs, task, loaders, 0.05, 0.005, 0.9, 5e-5, 0.5)
    original = list(ctx.original().parameters())
    for i, (p, q) in enumerate(zip(ours.parameters(), theirs.parameters(), strict=True)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert torch.equal(p, original[i]) == (i < 2)  # the first linear layer is frozen
