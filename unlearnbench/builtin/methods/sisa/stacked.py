"""Train K models of one architecture at once: torch.func over stacked parameters.

SISA trains S shard models of the same architecture on different index sets.
Instead of S training loops, :func:`train_stacked` stacks their parameters
(``torch.func.stack_module_state``) and runs one loop in which every step is a
``vmap`` of ``grad_and_value`` of a ``functional_call``. On these 2-core CPUs
this is faster for small MLPs and slower for CNNs (DESIGN.md: 1.6-2x for K=8
MLPs, 0.7-0.8x for CNNs); on a GPU it is the big win.
:func:`unlearnbench.training.stacking_pays` encodes that rule.

What it reproduces of :func:`unlearnbench.training.train_model`, per model:

- the batch order: ``epoch_order(indices, seed, epoch, exclude)`` with each
  job's own seed, cut into batches of ``recipe.batch_size``;
- the loss: mean cross-entropy over the batch's (real) points;
- the optimizer: a fresh Adam or SGD (with momentum and weight decay) per call,
  written out functionally with the same formulas and the same order of
  operations as ``torch.optim``'s single-tensor path;
- the divergence check: :class:`TrainingDiverged` when an epoch's loss of any
  model is not finite.

How it differs (why results agree only up to floating-point order):

- models whose epochs have fewer batches than the longest one are padded: the
  missing batches are masked out (parameters and optimizer state unchanged,
  the Adam step count not advanced), and the short last batch is padded with
  zero-weight points; the padded sums and the batched (``vmap``) matrix
  products can round differently from the one-model kernels;
- Adam's bias corrections are per-model tensors (float64, cast to float32)
  rather than Python floats.

Not supported (the caller falls back to one-by-one training): models with
buffers (batch norm) and models with randomness in training mode (dropout),
because ``vmap`` cannot reproduce the per-epoch seeded global RNG stream of
the one-by-one loop, nor update running statistics in place.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from unlearnbench.config import TrainRecipe
from unlearnbench.training import TrainingDiverged, epoch_order, stacking_unsupported

_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


@dataclass(frozen=True)
class Job:
    """One model's training data: what ``train_model(indices, seed=, exclude=)`` gets."""

    indices: torch.Tensor
    seed: object
    exclude: torch.Tensor | None = None


class _StackedOptimizer:
    """Adam or SGD over stacked parameters, updating only the active models."""

    def __init__(self, params: dict[str, torch.Tensor], recipe: TrainRecipe) -> None:
        self.recipe = recipe
        first = next(iter(params.values()))
        self.steps = torch.zeros(first.shape[0], dtype=torch.float64, device=first.device)
        self.first = {n: torch.zeros_like(p) for n, p in params.items()}
        self.second = (
            {n: torch.zeros_like(p) for n, p in params.items()}
            if recipe.optimizer == "adam"
            else {}
        )

    def step(
        self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], active: torch.Tensor
    ) -> None:
        recipe = self.recipe
        steps = self.steps + active.to(torch.float64)
        if recipe.optimizer == "adam":
            beta1, beta2 = _BETAS
            done = steps.clamp(min=1.0)
            step_size = (recipe.lr / (1 - beta1**done)).to(torch.float32)
            bias2_sqrt = (1 - beta2**done).sqrt().to(torch.float32)
        for name, param in params.items():
            grad = grads[name]
            if recipe.weight_decay:
                grad = grad.add(param, alpha=recipe.weight_decay)
            mask = active.view(-1, *([1] * (param.dim() - 1)))
            if recipe.optimizer == "adam":
                avg = self.first[name].lerp(grad, 1 - beta1)
                avg_sq = self.second[name].mul(beta2).addcmul(grad, grad, value=1 - beta2)
                shape = (-1, *([1] * (param.dim() - 1)))
                denom = (avg_sq.sqrt() / bias2_sqrt.view(shape)).add(_ADAM_EPS)
                updated = param - step_size.view(shape) * (avg / denom)
                self.second[name] = torch.where(mask, avg_sq, self.second[name])
            else:
                avg = self.first[name].mul(recipe.momentum).add(grad) if recipe.momentum else grad
                updated = param.add(avg, alpha=-recipe.lr)
            self.first[name] = torch.where(mask, avg, self.first[name])
            params[name] = torch.where(mask, updated, param)
        self.steps = steps


def train_stacked(
    models: Sequence[nn.Module],
    jobs: Sequence[Job],
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    *,
    epochs: int,
) -> list[int]:
    """Train ``models[i]`` on ``jobs[i]`` for ``epochs`` epochs, all at once, in place.

    Returns each model's sample-epochs (points visited, summed over epochs),
    as :class:`unlearnbench.training.TrainStats` would count them. Raises
    ValueError when the models differ in architecture or cannot be stacked.
    """
    if len(models) != len(jobs) or not models:
        raise ValueError(
            f"train_stacked needs one job per model, got {len(models)} and {len(jobs)}"
        )
    reason = stacking_unsupported(models[0])
    if reason is not None:
        raise ValueError(f"cannot train this model stacked: {reason}")
    names = [name for name, _ in models[0].named_parameters()]
    per_model = [dict(m.named_parameters()) for m in models]
    if any(list(p) != names for p in per_model):
        raise ValueError("train_stacked needs models of one architecture")
    params = {n: torch.stack([p[n].detach() for p in per_model]).clone() for n in names}
    base = copy.deepcopy(models[0]).to("meta")
    base.train()

    def loss_fn(
        p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
    ) -> torch.Tensor:
        out = functional_call(base, p, (xb,))
        losses = F.cross_entropy(out, yb, reduction="none")
        return (losses * wb).sum() / wb.sum().clamp(min=1.0)

    step_fn = vmap(grad_and_value(loss_fn))
    optimizer = _StackedOptimizer(params, recipe)
    k, batch = len(models), recipe.batch_size
    sample_epochs = [0] * k
    for epoch in range(epochs):
        orders = [epoch_order(j.indices, j.seed, epoch, j.exclude) for j in jobs]
        longest = max(o.numel() for o in orders)
        n_batches = math.ceil(longest / batch)
        if n_batches == 0:
            continue
        padded = torch.zeros(k, n_batches * batch, dtype=torch.long, device=x.device)
        weight = torch.zeros(k, n_batches * batch, dtype=x.dtype, device=x.device)
        for i, order in enumerate(orders):
            padded[i, : order.numel()] = order.to(x.device)
            weight[i, : order.numel()] = 1.0
            sample_epochs[i] += order.numel()
        padded = padded.view(k, n_batches, batch)
        weight = weight.view(k, n_batches, batch)
        epoch_loss = torch.zeros(k, device=x.device)
        for t in range(n_batches):
            idx, w = padded[:, t], weight[:, t]
            grads, loss = step_fn(params, x[idx], y[idx], w)
            optimizer.step(params, grads, w[:, 0] > 0)
            epoch_loss += loss.detach() * w.sum(1)
        if not bool(torch.isfinite(epoch_loss).all()):
            raise TrainingDiverged(
                f"training diverged: the loss of epoch {epoch + 1} is not finite; "
                f"lower the learning rate (train.lr={recipe.lr})"
            )
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(params[name][i])
            model.eval()
    return sample_epochs
