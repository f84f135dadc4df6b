"""MSG: cross-checked against DeepUnlearn's kgltop2 restated, on LeNet-5."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from conftest import first_deletion
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from unlearnbench.seeding import generator
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.common import batches
from unlearnbench_baselines.msg import SNIP_RETAIN_BATCH, linear_annealing


class Masker(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, mask):
        ctx.save_for_backward(mask)
        return x

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class MaskConv2d(nn.Conv2d):
    def __init__(self, mask, conv):
        super().__init__(
            conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding
        )
        self.mask = mask

    def forward(self, input):
        return self._conv_forward(input, Masker.apply(self.weight, self.mask), self.bias)


class LinearAnnealingLR(LRScheduler):
    def __init__(self, optimizer, num_annealing_steps, num_total_steps):
        self.num_annealing_steps = num_annealing_steps
        self.num_total_steps = num_total_steps
        super().__init__(optimizer)

    def get_lr(self):
        if self._step_count <= self.num_annealing_steps:
            return [b * self._step_count / self.num_annealing_steps for b in self.base_lrs]
        return [
            b
            * (self.num_total_steps - self._step_count)
            / (self.num_total_steps - self.num_annealing_steps)
            for b in self.base_lrs
        ]


def reference_msg(net, task, forget, retain, seed, init_rate, lr, epochs):
    """xcadet/deepunlearn ``kgltop2.py`` at d3dacb6, restated:
    ``get_grads_for_snip`` (``+CE`` over a retain subset of the forget set's
    size in batches of 64, ``−CE`` over the forget batches, accumulated),
    ``re_init_model_snip_ver2_little_grad`` (per Conv2d, the ``init_rate``
    smallest ``|grad|`` weights re-drawn Kaiming-normal fan-out; ``MaskConv2d``
    scales the other weights' gradients by 0.1) and the SGD fine-tuning on
    retain with ``LinearAnnealingLR``. The subset, the batch orders and the
    Kaiming draws are ours (the reference takes them from torch's global
    generator)."""
    size = task.recipe.batch_size
    perm = torch.randperm(retain.numel(), generator=generator(seed, "msg-subset"))
    subset = retain[perm[: forget.numel()]]
    net.eval()
    net.zero_grad()
    for idx in batches(subset, (*seed, "msg-retain"), 0, SNIP_RETAIN_BATCH):
        F.cross_entropy(net(task.x[idx]), task.y[idx]).backward()
    for idx in batches(forget, (*seed, "msg-forget"), 0, size):
        (-F.cross_entropy(net(task.x[idx]), task.y[idx])).backward()
    gen = generator(seed, "msg-init")
    with torch.no_grad():
        for name, m in list(net.named_modules()):
            if isinstance(m, nn.Conv2d):
                mask = torch.zeros_like(m.weight).bool()
                topk = torch.topk(-m.weight.grad.abs().view(-1), k=round(init_rate * mask.numel()))
                mask.view(-1)[topk.indices] = True
                grad_mask = mask.clone().float()
                grad_mask[grad_mask == 0] += 0.1
                new_conv = MaskConv2d(grad_mask, m)
                nn.init.kaiming_normal_(
                    new_conv.weight, mode="fan_out", nonlinearity="relu", generator=gen
                )
                new_conv.weight.data[~mask] = m.weight[~mask]
                new_conv.bias = m.bias
                parent, _, attr = name.rpartition(".")
                setattr(net.get_submodule(parent), attr, new_conv)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = LinearAnnealingLR(optimizer, (epochs + 1) // 2, epochs + 1)
    net.train()
    for epoch in range(epochs):
        for idx in batches(retain, seed, epoch, size):
            optimizer.zero_grad()
            F.cross_entropy(net(task.x[idx]), task.y[idx]).backward()
            optimizer.step()
        scheduler.step()
    return net


def test_msg_matches_the_reference(make_tiny_task):
    task, ctx = make_tiny_task(architecture="lenet5")
    params = {"epochs": 3, "lr": 0.01, "init_rate": 0.3}
    ours = run_unlearning(registry().get("method", "msg"), task, ctx, params).model
    forget, retain = first_deletion(task)
    theirs = reference_msg(
        ctx.original(), task, forget, retain, (task.seed, "msg", 0), 0.3, 0.01, 3
    )
    for p, q, p0 in zip(
        ours.parameters(), theirs.parameters(), ctx.original().parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
        assert not torch.equal(p, p0)


def test_linear_annealing_matches_the_reference_scheduler():
    for epochs in (1, 2, 5, 8):
        opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = LinearAnnealingLR(opt, (epochs + 1) // 2, epochs + 1)
        for epoch in range(epochs):
            assert abs(opt.param_groups[0]["lr"] - linear_annealing(epoch, epochs)) < 1e-12
            opt.step()
            scheduler.step()


def test_without_fine_tuning_only_the_chosen_share_of_conv_weights_changes(make_tiny_task):
    task, ctx = make_tiny_task(architecture="lenet5")
    model = run_unlearning(registry().get("method", "msg"), task, ctx, {"epochs": 0}).model
    convs = 0
    for m, m0 in zip(model.modules(), ctx.original().modules(), strict=True):
        if isinstance(m, nn.Conv2d):
            convs += 1
            assert int((m.weight != m0.weight).sum()) == round(0.3 * m.weight.numel())
            assert torch.equal(m.bias, m0.bias)
        elif isinstance(m, nn.Linear):
            assert torch.equal(m.weight, m0.weight)
    assert convs == 2
