"""CT: cross-checked against DeepUnlearn's kgltop5 restated, on LeNet-5 and the 1-D CNN."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import first_deletion
from torch import nn
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.common import batches
from unlearnbench_baselines.conv_transpose import NotTransposable, transpose_kernels


def reference_ct(net, task, retain, seed, lr, epochs):
    """xcadet/deepunlearn ``kgltop5.py`` at d3dacb6, restated: ``rotate_weight``
    (every ``Conv2d`` weight becomes ``Parameter(weight.swapaxes(2, 3))``), then
    ``SGD(lr, momentum=0.9, weight_decay=5e-4)`` over the retain batches with
    ``CosineAnnealingLR(T_max=epochs)`` stepped per epoch. Batch order: ours."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.conv.Conv2d):
            module.weight = torch.nn.Parameter(module.weight.swapaxes(2, 3))
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    net.train()
    for epoch in range(epochs):
        for idx in batches(retain, seed, epoch, task.recipe.batch_size):
            optimizer.zero_grad()
            F.cross_entropy(net(task.x[idx]), task.y[idx]).backward()
            optimizer.step()
        scheduler.step()
    return net


def test_conv_transpose_matches_the_reference(make_tiny_task):
    task, ctx = make_tiny_task(architecture="lenet5")
    params = {"epochs": 3, "lr": 0.01}
    ours = run_unlearning(registry().get("method", "conv_transpose"), task, ctx, params).model
    _, retain = first_deletion(task)
    theirs = reference_ct(ctx.original(), task, retain, (task.seed, "conv_transpose", 0), 0.01, 3)
    for p, q, p0 in zip(
        ours.parameters(), theirs.parameters(), ctx.original().parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert not torch.equal(p, p0)


def test_kernels_are_transposed_or_reversed():
    conv2 = nn.Conv2d(2, 3, 3)
    conv1 = nn.Conv1d(2, 3, 5)
    model = nn.Sequential(conv2, conv1)
    before2, before1 = conv2.weight.detach().clone(), conv1.weight.detach().clone()
    assert transpose_kernels(model, "reverse") == 2
    assert torch.equal(conv2.weight, before2.transpose(2, 3))
    assert torch.equal(conv1.weight, before1.flip(2))
    assert transpose_kernels(nn.Sequential(nn.Conv1d(2, 3, 5)), "keep") == 0
    with pytest.raises(NotTransposable, match="only square kernels"):
        transpose_kernels(nn.Sequential(nn.Conv2d(1, 1, (3, 5))), "reverse")
