"""SSD: cross-checked against the authors' update, and it forgets."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import first_deletion, forget_loss
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.common import batches


def reference_ssd(model, x, y, forget, held, seed, batch_size, alpha, dampening):
    """if-loops/selective-synaptic-dampening ``ssd.py`` at 77161cc, restated:
    ``calc_importance`` (sum of ``grad.pow(2)`` over batches, divided by the
    number of batches, model in eval mode) and ``modify_weight``
    (``locations = where(fimp > oimp * alpha)``, ``weight = (oimp * lambda /
    fimp) ** exponent``, entries above ``lower_bound`` set to it, ``p[locations]
    *= update``) with exponent 1 and lower bound 1. Same batches as ours."""
    model.eval()

    def calc_importance(indices, label):
        imp = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
        loader = list(batches(indices, (*seed, label), 0, batch_size))
        for idx in loader:
            model.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            for n, p in model.named_parameters():
                imp[n].data += p.grad.data.clone().pow(2)
        for v in imp.values():
            v.data /= float(len(loader))
        return imp

    fimp_all = calc_importance(forget, "forget")
    oimp_all = calc_importance(held, "full")
    with torch.no_grad():
        for n, p in model.named_parameters():
            oimp, fimp = oimp_all[n], fimp_all[n]
            locations = torch.where(fimp > oimp.mul(alpha))
            weight = (oimp.mul(dampening).div(fimp)).pow(1)
            update = weight[locations]
            update[torch.where(update > 1)] = 1
            p[locations] = p[locations].mul(update)
    return model


def test_ssd_matches_the_reference_update(overfit_task):
    task, ctx = overfit_task
    for alpha, dampening in [(10.0, 1.0), (0.5, 0.3)]:
        ours = run_unlearning(
            registry().get("method", "ssd"), task, ctx, {"alpha": alpha, "dampening": dampening}
        ).model
        forget, retain = first_deletion(task)
        held = torch.cat([retain, forget])
        seed = (task.seed, "ssd", 0)
        size = task.recipe.batch_size
        theirs = reference_ssd(
            ctx.original(), task.x, task.y, forget, held, seed, size, alpha, dampening
        )
        changed = 0
        for p, q, p0 in zip(
            ours.parameters(), theirs.parameters(), ctx.original().parameters(), strict=True
        ):
            torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
            changed += int((p != p0).sum())
        assert changed > 0  # the check compares an edit, not two untouched models


def test_ssd_raises_the_forget_loss_and_only_shrinks_weights(overfit_task):
    task, ctx = overfit_task
    original = ctx.original()
    model = run_unlearning(registry().get("method", "ssd"), task, ctx, {"alpha": 1.0}).model
    assert forget_loss(model, task) > forget_loss(original, task)
    for p, q in zip(model.parameters(), original.parameters(), strict=True):
        assert (p.abs() <= q.abs() + 1e-12).all()
