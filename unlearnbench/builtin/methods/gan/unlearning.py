"""GAN unlearning (paper 000): the model as generator against a WGAN-GP critic.

The critic judges sorted posteriors of the forget set against those of third-party
data; generator and critic alternate until the critic's Wasserstein estimate stays
below a threshold, with cross-entropy on a small retain subset keeping utility.
The loss, update, stopping and cost rules are explained in docs/methods.md.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import Unlearned
from unlearnbench.builtin.methods.gan.critic import (
    Critic,
    critic_loss,
    distance_estimate,
    sorted_posteriors,
)
from unlearnbench.builtin.methods.gan.params import check_params
from unlearnbench.seeding import derive_seed, generator
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task
from unlearnbench.training import (
    cycled_batches,
    predict_logits,
    recipe_impl_options,
)


@dataclass
class GanState:
    """What a deletion hands to the next: the generator and the fixed S(P1)."""

    model: nn.Module
    nonmember_sorted: torch.Tensor
    deletions: int = 0


def retain_subset(task: Task, fraction: float, minimum: int) -> torch.Tensor:
    """The fixed retain subset of the CE term: a seeded random share of ``task.splits.retain``."""
    retain = task.splits.retain
    count = min(retain.numel(), max(minimum, round(fraction * retain.numel())))
    perm = torch.randperm(retain.numel(), generator=generator(task.seed, "gan", "retain"))
    return retain[perm[:count].to(retain.device)]


def _draw(pool_size: int, batch: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(pool_size, (batch,), generator=gen).to(device)


def _fake_batches(
    model: nn.Module, forget_x: torch.Tensor, n_batches: int, batch: int, gen: torch.Generator
) -> torch.Tensor:
    """S(P2) for ``n_batches`` critic batches drawn from the forget set.

    G does not change during a round of critic steps, so its posteriors are
    computed once per round: over the drawn points, or over the whole forget
    set when that is smaller than the draw (the warm-up round).
    """
    idx = _draw(forget_x.shape[0], n_batches * batch, gen, forget_x.device)
    if idx.numel() >= forget_x.shape[0]:
        return sorted_posteriors(predict_logits(model, forget_x))[idx]
    return sorted_posteriors(predict_logits(model, forget_x[idx]))


FORWARD_ONLY = 1.0 / 3.0  # a forward pass without backward, in sample-passes


class GanUnlearning:
    """Alternating WGAN-GP training of the model against a sorted-posterior critic."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        check_params(params)
        self.p = dict(params)

    def fit(self, task: Task, ctx: MethodContext) -> GanState:
        frozen = ctx.original()
        if task.splits.auxiliary.numel() == 0:
            raise ValueError("gan needs third-party non-member data: splits.auxiliary is empty")
        logits = predict_logits(frozen, task.x[task.splits.auxiliary])
        return GanState(model=frozen, nonmember_sorted=sorted_posteriors(logits))

    def unlearn(
        self, state: GanState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        p = self.p
        device = task.device
        deletion = state.deletions
        model = copy.deepcopy(state.model)
        model.eval()  # frozen BN statistics and no dropout while G trains
        real = state.nonmember_sorted
        if forget.numel() == 0:
            raise ValueError("gan: the forget set of this deletion is empty")
        forget_x = task.x[forget]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(task.seed, "gan", "critic", deletion))
            critic = Critic(task.num_classes, p["critic_width"]).to(device)
        betas = (p["beta1"], 0.9)
        impl = recipe_impl_options(task.recipe, "adam")  # the recipe's Adam implementation
        opt_g = torch.optim.Adam(model.parameters(), lr=p["lr"], betas=betas, **impl)
        opt_d = torch.optim.Adam(critic.parameters(), lr=p["critic_lr"], betas=betas, **impl)
        gen = generator(task.seed, "gan", "batches", deletion)
        subset = retain_subset(task, p["retain_fraction"], p["retain_min"])
        if subset.numel() == 0:
            raise ValueError("gan needs retain points for its CE term: splits.retain is empty")
        retain = cycled_batches(
            subset,
            (task.seed, "gan", deletion),
            p["batch_size"],
        )
        adv_weight = p["alpha"]
        ce_weight = 1.0 - p["alpha"] if p["alpha_weights"] == "convex" else 1.0
        batch = p["batch_size"]
        distances: list[float] = []
        below = 0
        steps = 0

        def critic_round(n_batches: int) -> None:
            fakes = _fake_batches(model, forget_x, n_batches, batch, gen)
            ctx.add_work(min(n_batches * batch, forget_x.shape[0]) * FORWARD_ONLY)
            for fake in fakes.split(batch):
                real_b = real[_draw(real.shape[0], batch, gen, device)]
                eps = torch.rand(batch, 1, generator=gen).to(device)
                loss_d = critic_loss(critic, real_b, fake, eps, p["gp_weight"])
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()

        if p["critic_warmup"]:
            critic_round(p["critic_warmup"])
            distances.append(self._distance(critic, model, real, forget_x))  # step 0
        while steps < p["max_steps"]:
            critic_round(p["critic_steps"])
            for param in critic.parameters():
                param.requires_grad_(False)
            fake = sorted_posteriors(model(forget_x[_draw(forget.numel(), batch, gen, device)]))
            idx = next(retain)
            loss_g = adv_weight * -critic(fake).mean()
            loss_g = loss_g + ce_weight * F.cross_entropy(model(task.x[idx]), task.y[idx])
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            ctx.add_work(batch + idx.numel())  # forget and retain batches, forward + backward
            for param in critic.parameters():
                param.requires_grad_(True)
            steps += 1
            if steps % p["check_every"] == 0 or steps == p["max_steps"]:
                distance = self._distance(critic, model, real, forget_x)
                ctx.add_work(forget_x.shape[0] * FORWARD_ONLY)
                distances.append(distance)
                below = below + 1 if distance < p["threshold"] else 0
                if steps >= p["min_steps"] and below >= p["patience"]:
                    break
        if not torch.isfinite(torch.tensor(distances)).all():
            raise RuntimeError("gan: training diverged (non-finite distance); lower 'lr'")
        model.eval()
        new_state = GanState(model=model, nonmember_sorted=real, deletions=deletion + 1)
        return Unlearned(
            model=model,
            state=new_state,
            costs={
                "gan_steps": float(steps),
                "critic_steps": float(steps * p["critic_steps"] + p["critic_warmup"]),
                "gan_distance_final": distances[-1] if distances else float("nan"),
                "prediction_cost": 1.0,
                "storage_bytes": 0.0,
            },
            series={"gan_distance": distances},
        )

    @staticmethod
    def _distance(
        critic: nn.Module, model: nn.Module, real: torch.Tensor, forget_x: torch.Tensor
    ) -> float:
        fake = sorted_posteriors(predict_logits(model, forget_x))
        return distance_estimate(critic, real, fake)


def create(params: Mapping[str, Any]) -> GanUnlearning:
    return GanUnlearning(params)
