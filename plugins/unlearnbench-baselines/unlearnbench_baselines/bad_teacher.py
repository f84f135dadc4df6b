"""``bad_teacher`` (Bad Teacher): a student distilled from a competent and an incompetent teacher.

Chundawat et al. 2023 ("Can Bad Teaching Induce Forgetting? Unlearning in Deep
Networks using an Incompetent Teacher"). The student starts as the trained
model. Its training set is the forget set (flag 1) and a random share of the
retain set (flag 0), shuffled together. On every batch the target distribution
is the softmax of the *incompetent* teacher (a randomly initialised model of
the same architecture) on forget points and of the *competent* teacher (the
frozen trained model) on retain points, both at temperature ``T``; the loss is
``kl_div(log_softmax(student / T), target)`` with torch's default ``'mean'``
reduction (averaged over every element, as the reference does, so the loss is
1/classes of the per-example KL).

Source: vikram2000b/bad-teaching-unlearning, ``unlearn.py``
(``UnlearnerLoss``, ``unlearning_step``, ``blindspot_unlearner``), commit
``0aab08c87d5c068fea6c344453db76ea7c9213b3``; defaults from its
``CIFARSuper20_Rocket_Unlearn.ipynb`` (commit
``c1153e9e1400d11b66e1b200a796839954694ffa``): Adam, lr 1e-4, 1 epoch,
``KL_temperature`` 1, a random 30 % of the retain set (``retain_share`` 0.3).
Their batch size 256 is replaced by the task recipe's. The incompetent teacher
is drawn from the task seed (``task.new_model`` with its own label), the
retain share from the deletion's seed; in a request stream the competent
teacher is the model at the start of each deletion.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, Param, Unlearned
from unlearnbench.seeding import generator
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    EpochLoop,
    PostHocMethod,
    UnlearnStep,
    batches,
    optimizer_params,
)

NAME = "bad_teacher"
SOURCE = "Bad Teacher reference notebook"
PARAMS = (
    *optimizer_params(
        lr=1e-4, epochs=1, optimizer="adam", momentum=0.9, weight_decay=0.0, source=SOURCE
    ),
    Param(
        "temperature",
        1.0,
        f"distillation temperature KL_temperature ({SOURCE}); tuned over [0.5, 4]",
        minimum=0.0,
        exclusive_minimum=True,
        tunable=True,
        search_range=(0.5, 4.0),
    ),
    Param(
        "retain_share",
        0.3,
        f"share of the retain set distilled from the competent teacher ({SOURCE}: 30 %); "
        "tuned over [0.05, 1]",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        tunable=True,
        search_range=(0.05, 1.0),
    ),
)


def bad_teacher_loss(
    student: torch.Tensor,
    is_forget: torch.Tensor,
    competent: torch.Tensor,
    incompetent: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KL from the flagged teachers' mixed softmax to the student's, element-mean."""
    flag = is_forget.to(student.dtype).unsqueeze(1)
    target = flag * F.softmax(incompetent / temperature, dim=1) + (1 - flag) * F.softmax(
        competent / temperature, dim=1
    )
    log_p = F.log_softmax(student / temperature, dim=1)
    # torch's (deprecated) 'mean' reduction the reference uses: over every element
    return F.kl_div(log_p, target, reduction="batchmean") / student.shape[1]


def retain_subset(retain: torch.Tensor, share: float, seed: object) -> torch.Tensor:
    """A seeded random ``share`` of ``retain`` (at least one point)."""
    count = max(1, round(share * retain.numel()))
    perm = torch.randperm(retain.numel(), generator=generator(seed, "retain-share"))
    return retain[perm[:count].to(retain.device)]


def frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for weight in model.parameters():
        weight.requires_grad_(False)
    return model


class BadTeacher(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        p, x = self.params, task.x
        student = step.model
        competent = frozen(copy.deepcopy(student))
        incompetent = frozen(task.new_model((NAME, "incompetent-teacher")))
        kept = retain_subset(step.retain, p["retain_share"], step.seed)
        both = torch.cat([step.forget, kept])
        is_forget = torch.zeros(task.y.numel(), dtype=torch.bool, device=task.y.device)
        is_forget[step.forget] = True
        loop = EpochLoop(step, task, p, NAME)
        for epoch in loop.epochs():
            for idx in batches(both, step.seed, epoch, task.recipe.batch_size):
                with torch.no_grad():
                    good, bad = competent(x[idx]), incompetent(x[idx])
                flags = is_forget[idx]
                loss = bad_teacher_loss(student(x[idx]), flags, good, bad, p["temperature"])
                forget = int(flags.sum())
                loop.descend(loss, retain=idx.numel() - forget, forget=forget, weighted=False)
        return loop.finish()


def create(params: Mapping[str, Any]) -> BadTeacher:
    return BadTeacher(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
