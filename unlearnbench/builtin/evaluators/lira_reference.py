"""LiRA's reference models: K models on seeded halves of a pool, and their per-example φ.

Size (``size``). LiRA's reference models imitate the target model's training,
and the gap between a point's "in" and "out" confidence shrinks as the
training set grows, so by default (``size = "target"``) every reference model
trains on exactly as many points as the original model (``len(splits.target)``,
n). The pool is then the scored points, ``target ∪ nonmember`` (the attack
reads the forget set, which is in the target set, against the non-members;
``lira_strength`` reads the target set against them), topped up to 2n points
with a seeded draw from ``shadow_in ∪ shadow_out``: its complementary halves
are n points each and every pool point is "in" for exactly half of the
models, the balance LiRA's in/out Gaussians need. That needs at least 2n
points in ``target ∪ nonmember ∪ shadow_in ∪ shadow_out`` and no more
non-members than target points; a task without them is refused with a
message saying so. ``size = "half_pool"`` (the earlier default) trains on
halves of the whole of ``target ∪ nonmember ∪ shadow_in ∪ shadow_out`` (on the
default MNIST-1D suites 1,600 points per model against the target's 1,200).
Never ``test`` (it measures utility) nor ``auxiliary`` (read by no evaluator).

Halves come in complementary pairs: pair ``j`` draws a seeded permutation of
the pool, model ``2j`` trains on its first half and model ``2j + 1`` on the
second, so every point is "in" for exactly K/2 models when K and the pool
size are even (always so with ``size = "target"``). When the pool size is odd
(``half_pool`` only), pair ``j`` first sets one point aside (a different one
for each pair, from a seeded permutation): every model then trains on exactly
``len(pool) // 2`` points, which is what lets the stacked path share one
``torch.optim`` step count across models. An odd last model draws a half of
its own.

Training: one-by-one through ``ctx.train`` (each model with seed label
``("lira", k)`` and initialisation ``task.new_model(("lira", k))``), or all K
at once (:func:`train_stacked`: ``torch.func.stack_module_state`` +
``functional_call`` + ``vmap`` of ``grad_and_value``, then the recipe's own
optimizer from :func:`unlearnbench.training.make_optimizer` stepping the
stacked tensors). Both use the same initial weights, the same per-model batch
order (``epoch_order(half_k, (task.seed, ("lira", k)), epoch)``), the same mean
cross-entropy and the same optimizer formulas; Adam and SGD are elementwise,
so stacking their tensors changes nothing. What differs is the order of
floating-point sums in the batched matrix products, so the two paths agree to
float tolerance, not bit for bit.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap

from unlearnbench.seeding import generator
from unlearnbench.task import MethodContext, Task
from unlearnbench.training import (
    TrainingDiverged,
    epoch_order,
    make_optimizer,
    predict_logits,
    stacking_pays,
    stacking_unsupported,
)

STACKED_CHOICES = ("auto", "on", "off")
SIZE_CHOICES = ("target", "half_pool")
_FLOOR = 1e-300


def pool_of(task: Task, size: str = "target") -> torch.Tensor:
    """The sorted pool the reference models' halves are drawn from (on CPU): for
    ``size = "target"`` the scored points topped up to twice the target's size
    from the shadow splits, for ``"half_pool"`` every point of the four splits."""
    s = task.splits
    cpu = [p.detach().cpu() for p in (s.target, s.nonmember, s.shadow_in, s.shadow_out)]
    everything = torch.unique(torch.cat(cpu))
    if size == "half_pool":
        return everything
    if size != "target":
        raise ValueError(f"lira: size must be one of {SIZE_CHOICES}, got {size!r}")
    n = torch.unique(cpu[0]).numel()
    scored = torch.unique(torch.cat(cpu[:2]))
    if scored.numel() > 2 * n or everything.numel() < 2 * n:
        raise ValueError(
            f"lira: reference models of the target's size ({n} points) with every scored "
            f"point in exactly half of them need a pool of 2 x {n} = {2 * n} points holding "
            f"the {scored.numel()} target and non-member points (target ∪ nonmember ∪ "
            f"shadow_in ∪ shadow_out); this task has {everything.numel()} such points, "
            f"{scored.numel()} of them scored. Give the splits more shadow points (or fewer "
            "non-members than target points), or set lira's size = 'half_pool'"
        )
    rest = everything[~torch.isin(everything, scored)]
    fill = rest[torch.randperm(rest.numel(), generator=generator(task.seed, "lira-fill"))]
    return torch.unique(torch.cat([scored, fill[: 2 * n - scored.numel()]]))


def halves(pool: torch.Tensor, models: int, seed: int) -> list[torch.Tensor]:
    """Each model's training indices: complementary halves in pairs, all of one size."""
    n = pool.numel()
    size = n // 2
    aside = pool[torch.randperm(n, generator=generator(seed, "lira-aside"))]
    out: list[torch.Tensor] = []
    for pair in range((models + 1) // 2):
        rest = pool[pool != aside[pair % n]] if n % 2 else pool
        perm = torch.randperm(rest.numel(), generator=generator(seed, "lira-half", pair))
        out.append(rest[perm[:size]])
        out.append(rest[perm[size : 2 * size]])
    return out[:models]


def phi_from_logits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """φ = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j, stably, in float64."""
    z = logits.double()
    true = z.gather(1, y[:, None]).squeeze(1)
    others = z.scatter(1, y[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def model_phi(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """φ of ``model`` on ``(x, y)``. A model that defines ``posteriors`` (an ensemble)
    is read through them, as every membership attack here reads it: log-posteriors
    are logits of the same softmax."""
    if x.shape[0] == 0:
        return torch.empty(0, dtype=torch.float64)
    own = getattr(model, "posteriors", None)
    if callable(own):
        model.eval()
        with torch.no_grad():
            probs = torch.cat([own(x[i : i + 1024]) for i in range(0, x.shape[0], 1024)])
        logits = probs.double().clamp_min(_FLOOR).log()
    else:
        logits = predict_logits(model, x)
    return phi_from_logits(logits, y).cpu()


def use_stacked(mode: str, model: nn.Module, task: Task) -> bool:
    """Resolve ``stacked``: ``auto`` stacks MLPs on CPU and any supported model on
    CUDA (DESIGN.md: stacked CNNs are slower on CPU); ``on`` refuses what it cannot
    stack; mixed precision (``recipe.amp``) is never stacked, as the stacked loop is
    float32 only."""
    reason = stacking_unsupported(model)
    if reason is None and task.recipe.amp:
        reason = "the recipe trains in mixed precision (train.amp), the stacked loop in float32"
    if mode == "off":
        return False
    if mode == "on":
        if reason is not None:
            raise ValueError(f"lira: stacked = 'on' cannot train this model stacked: {reason}")
        return True
    return reason is None and stacking_pays(model, task.device)


def seed_of(task: Task, k: int) -> tuple[int, tuple[str, int]]:
    """The batch-order seed of reference model ``k``, as ``ctx.train`` forms it."""
    return (task.seed, ("lira", k))


def train_stacked(models: list[nn.Module], parts: list[torch.Tensor], task: Task) -> int:
    """Train ``models[k]`` on ``parts[k]`` (all of one size) at once, in place.

    Returns the sample-passes done (K x points x epochs), for ``ctx.add_work``.
    """
    recipe = task.recipe
    size = parts[0].numel()
    if any(p.numel() != size for p in parts):
        raise ValueError("train_stacked needs training sets of one size")
    stacked, _ = stack_module_state(models)
    params = {name: p.detach().clone().requires_grad_(True) for name, p in stacked.items()}
    optimizer = make_optimizer(params.values(), recipe)
    base = copy.deepcopy(models[0]).to("meta")
    base.train()

    def loss_fn(p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, p, (xb,)), yb)

    step = vmap(grad_and_value(loss_fn))
    x, y = task.x, task.y
    on_device = [p.to(x.device) for p in parts]
    for epoch in range(recipe.epochs):
        orders = torch.stack(
            [epoch_order(p, seed_of(task, k), epoch) for k, p in enumerate(on_device)]
        )
        epoch_loss = torch.zeros(len(models), device=x.device)
        for begin in range(0, size, recipe.batch_size):
            idx = orders[:, begin : begin + recipe.batch_size]
            grads, loss = step({n: p.detach() for n, p in params.items()}, x[idx], y[idx])
            for name, param in params.items():
                param.grad = grads[name]
            optimizer.step()
            epoch_loss += loss.detach() * idx.shape[1]
        if not bool(torch.isfinite(epoch_loss).all()):
            raise TrainingDiverged(
                f"training diverged: a LiRA reference model's loss in epoch {epoch + 1} is not "
                f"finite; lower the learning rate (train.lr={recipe.lr})"
            )
    with torch.no_grad():
        for k, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(params[name][k])
            model.eval()
    return len(models) * size * recipe.epochs


def reference_phi(
    task: Task, ctx: MethodContext, models: int, stacked: bool, size: str = "target"
) -> dict[str, torch.Tensor]:
    """Train the K reference models and return, for every pool point, each model's φ
    (``phi``, K x N, float64) and whether it trained on the point (``keep``, K x N)."""
    pool = pool_of(task, size)
    parts = halves(pool, models, task.seed)
    nets = [task.new_model(("lira", k)) for k in range(models)]
    if stacked:
        ctx.add_work(train_stacked(nets, parts, task))
    else:
        for k, (net, part) in enumerate(zip(nets, parts, strict=True)):
            ctx.train(net, part.to(task.device), seed_label=("lira", k))
    on_device = pool.to(task.device)
    x, y = task.x[on_device], task.y[on_device]
    phi = torch.stack([model_phi(net, x, y) for net in nets])
    keep = torch.stack([torch.isin(pool, part) for part in parts])
    return {"pool": pool, "phi": phi, "keep": keep}


def cached_reference(
    task: Task, ctx: MethodContext, models: int, stacked: bool, size: str = "target"
) -> dict[str, torch.Tensor]:
    """:func:`reference_phi`, built once per task training identity and shared by
    every cell (and every request) of it."""
    key: dict[str, Any] = {"models": models, "stacked": stacked}
    if size != "half_pool":  # the earlier key stays that of the earlier models
        key["size"] = size
    value: Mapping[str, Any] = ctx.cached(
        "lira-reference", key, lambda: reference_phi(task, ctx, models, stacked, size)
    )
    return {name: torch.as_tensor(value[name]).cpu() for name in ("pool", "phi", "keep")}
