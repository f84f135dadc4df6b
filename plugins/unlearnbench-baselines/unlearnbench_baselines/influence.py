"""``influence`` (IU, influence unlearning): a WoodFisher Newton step removing the forget set.

Influence unlearning as in Jia et al. 2023 ("Model Sparsity Can Simplify
Machine Unlearning"; OPTML-Group Unlearn-Sparse ``wfisher``), after Izzo et al.
2021 and Koh & Liang 2017, with the WoodFisher inverse-Hessian estimate of
Singh & Alistarh 2020. With ``n_f`` forget and ``n_r`` retain points, ``g_f``
the summed per-example loss gradient over the forget set and ``g_r`` over the
retain set (at the trained model, eval mode), the direction is ``v = g_f /
(n_f + n_r) − g_r · n_f / ((n_f + n_r) · n_r)``; the WoodFisher recursion over
single retain examples (``N`` = 1000, stopping after example ``N + 1``) turns
it into ``k ≈ H⁻¹v``, and the weights move by ``alpha · k``.

Source: OPTML-Group/Unlearn-Sparse ``unlearn/Wfisher.py`` (``Wfisher``,
``woodfisher``, ``sam_grad``, ``apply_perturb``), commit
``16a2dbc8d88f222e238556baca717cebb6269dc2``. The gradient sums use batches of
the task recipe's size in index order (the reference: ``args.batch_size``,
unshuffled); the recursion visits retain examples in index order, one at a
time, as its ``batch_size=1`` loader does. ``alpha`` 0.2 is the reference's
``arg_parser`` default (its README leaves it to the user, ``--alpha
${alpha}``), tuned on a log scale over [0.01, 100].

Cost: a forward and backward pass per forget and retain example, plus one
per example of the recursion (up to ``N + 2`` retain examples), and three
flattened copies of the weights: on large models that, and the per-example
gradients, are the method's cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import PostHocMethod, UnlearnStep, finish_step

NAME = "influence"
PARAMS = (
    Param(
        "alpha",
        0.2,
        "step size along the inverse-Hessian direction (Unlearn-Sparse arg_parser "
        "default); tuned on a log scale over [0.01, 100]",
        minimum=0.0,
        tunable=True,
        log=True,
        search_range=(0.01, 100.0),
    ),
    Param(
        "woodfisher_n",
        1000,
        "WoodFisher's N: dampening and the number of retain examples visited "
        "(the reference's hard-coded N = 1000)",
        minimum=1,
    ),
)


def flat_grad(model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    grads = torch.autograd.grad(loss, list(model.parameters()))
    return torch.cat([g.reshape(-1) for g in grads])


def summed_grad(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, indices: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """The sum over ``indices`` of per-example loss gradients (batch mean × size)."""
    total = torch.cat([torch.zeros_like(p).reshape(-1) for p in model.parameters()])
    for begin in range(0, indices.numel(), batch_size):
        idx = indices[begin : begin + batch_size]
        total += flat_grad(model, F.cross_entropy(model(x[idx]), y[idx])) * idx.numel()
    return total


def woodfisher(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    retain: torch.Tensor,
    v: torch.Tensor,
    n: int,
) -> tuple[torch.Tensor, int]:
    """The reference's WoodFisher recursion; returns ``k`` and the examples visited."""
    k = v.clone()
    o = None
    visited = 0
    for i, point in enumerate(retain.tolist()):
        g = flat_grad(model, F.cross_entropy(model(x[point : point + 1]), y[point : point + 1]))
        visited += 1
        with torch.no_grad():
            if o is None:
                o = g.clone()
            else:
                tmp = torch.dot(o, g)
                k -= (torch.dot(k, g) / (n + tmp)) * o
                o -= (tmp / (n + tmp)) * o
        if i > n:
            break
    return k, visited


class InfluenceUnlearning(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        model, x, y, size = step.model, task.x, task.y, task.recipe.batch_size
        model.eval()
        n_f, n_r = step.forget.numel(), step.retain.numel()
        g_f = summed_grad(model, x, y, step.forget, size)
        g_r = summed_grad(model, x, y, step.retain, size)
        v = g_f / (n_f + n_r) - g_r * (n_f / ((n_f + n_r) * max(n_r, 1)))
        k, visited = woodfisher(model, x, y, step.retain, v, self.params["woodfisher_n"])
        with torch.no_grad():
            start = 0
            for p in model.parameters():
                p.add_(self.params["alpha"] * k[start : start + p.numel()].view_as(p))
                start += p.numel()
        step.work += n_f + n_r + visited
        return finish_step(step, retain_passes=n_r + visited, forget_passes=n_f)


def create(params: Mapping[str, Any]) -> InfluenceUnlearning:
    return InfluenceUnlearning(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
