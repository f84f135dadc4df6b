"""Influence unlearning (IU): cross-checked against Unlearn-Sparse's Wfisher restated."""

from __future__ import annotations

import torch
from conftest import first_deletion, forget_loss
from torch.autograd import grad
from unlearnbench.testing import registry, run_unlearning


def sam_grad(model, loss):
    return torch.cat([g.view(-1) for g in grad(loss, list(model.parameters()))])


def reference_wfisher(model, task, forget, retain, batch_size, alpha, n):
    """OPTML-Group/Unlearn-Sparse ``unlearn/Wfisher.py`` at 16a2dbc, restated:
    ``Wfisher`` (unshuffled forget / retain loaders of ``batch_size``, each
    batch's ``sam_grad`` times its size summed; ``retain_grad *= total /
    ((total + total_2) * total_2)``, ``forget_grad /= total + total_2``),
    ``woodfisher`` over a ``batch_size=1`` retain loader with ``N`` (1000 in
    the reference, a parameter here) and ``apply_perturb(model, alpha * k)``."""
    model.eval()
    criterion = torch.nn.CrossEntropyLoss()
    forget_grad = torch.zeros(sum(p.numel() for p in model.parameters()))
    retain_grad = torch.zeros_like(forget_grad)
    total = 0
    for i in range(0, forget.numel(), batch_size):
        idx = forget[i : i + batch_size]
        model.zero_grad()
        forget_grad += sam_grad(model, criterion(model(task.x[idx]), task.y[idx])) * idx.numel()
        total += idx.numel()
    total_2 = 0
    for i in range(0, retain.numel(), batch_size):
        idx = retain[i : i + batch_size]
        model.zero_grad()
        retain_grad += sam_grad(model, criterion(model(task.x[idx]), task.y[idx])) * idx.numel()
        total_2 += idx.numel()
    retain_grad *= total / ((total + total_2) * total_2)
    forget_grad /= total + total_2
    k_vec = torch.clone(forget_grad - retain_grad)
    o_vec = None
    for idx, point in enumerate(retain.tolist()):
        model.zero_grad()
        output = model(task.x[point : point + 1])
        sample_grad = sam_grad(model, criterion(output, task.y[point : point + 1]))
        with torch.no_grad():
            if o_vec is None:
                o_vec = torch.clone(sample_grad)
            else:
                tmp = torch.dot(o_vec, sample_grad)
                k_vec -= (torch.dot(k_vec, sample_grad) / (n + tmp)) * o_vec
                o_vec -= (tmp / (n + tmp)) * o_vec
        if idx > n:
            break
    curr = 0
    with torch.no_grad():
        for param in model.parameters():
            length = param.view(-1).shape[0]
            param += (alpha * k_vec)[curr : curr + length].view(param.shape)
            curr += length
    return model


def test_influence_matches_the_reference(make_tiny_task):
    task, ctx = make_tiny_task()
    forget, retain = first_deletion(task)
    for n in (1000, 50):  # the reference's N visits every retain point here; 50 stops early
        params = {"alpha": 20.0, "woodfisher_n": n}
        result = run_unlearning(registry().get("method", "influence"), task, ctx, params)
        theirs = reference_wfisher(
            ctx.original(), task, forget, retain, task.recipe.batch_size, 20.0, n
        )
        for p, q, p0 in zip(
            result.model.parameters(),
            theirs.parameters(),
            ctx.original().parameters(),
            strict=True,
        ):
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
            assert not torch.equal(p, p0)
        visited = min(retain.numel(), n + 2)
        expected = forget.numel() + retain.numel() + visited
        assert result.costs["retrain_sample_epochs"] == expected


def test_a_larger_step_raises_the_forget_loss(make_tiny_task):
    task, ctx = make_tiny_task()
    model = run_unlearning(registry().get("method", "influence"), task, ctx, {"alpha": 50.0}).model
    assert forget_loss(model, task) > forget_loss(ctx.original(), task)
