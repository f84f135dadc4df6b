"""LiRA's reference models: K models on seeded halves of a pool, and their per-example φ.

By default (``size = "target"``) each model trains on as many points as the
original model, drawn in complementary pairs of halves of a pool holding every
scored point, so each point is "in" for exactly half of the models; the models
train one by one through ``ctx.train`` or all at once with
:func:`unlearnbench.training.train_stacked` (on the CPU bit for bit what
``torch.optim`` gives on the stacked tensors). How the pool and halves are drawn,
and why: docs/lira.md, "LiRA's reference models".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from unlearnbench.seeding import generator
from unlearnbench.task import MethodContext, Task
from unlearnbench.training import (
    StackedJob,
    predict_logits,
    stacking_pays,
    stacking_unsupported,
    train_stacked,
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
    """Resolve ``stacked``: ``auto`` stacks small MLPs on CPU (:func:`stacking_pays`:
    stacked CNNs and larger MLPs are slower there) and any supported model on CUDA;
    ``on`` refuses what it cannot stack; mixed precision (``recipe.amp``) is never
    stacked, as the stacked loop is float32 only."""
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


def reference_phi(
    task: Task, ctx: MethodContext, models: int, stacked: bool, size: str = "target"
) -> dict[str, torch.Tensor]:
    """Train the K reference models and return, for every pool point, each model's φ
    (``phi``, K x N, float64) and whether it trained on the point (``keep``, K x N)."""
    pool = pool_of(task, size)
    parts = halves(pool, models, task.seed)
    nets = [task.new_model(("lira", k)) for k in range(models)]
    if stacked:
        jobs = [StackedJob(part, seed_of(task, k)) for k, part in enumerate(parts)]
        ctx.add_work(sum(train_stacked(nets, jobs, task.x, task.y, task.recipe)))
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
