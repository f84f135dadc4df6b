"""Shared helpers for the baselines' tests (fixtures come from unlearnbench's pytest plugin)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench.task import Task
from unlearnbench.task_values import ForgetRequest, TrainRecipe
from unlearnbench.testing import make_task

# Long enough on the tiny digits task that the original fits its training set
# (forget accuracy near 1): what post-hoc unlearning starts from in practice.
OVERFIT = TrainRecipe(epochs=40, batch_size=32, lr=0.003)


@pytest.fixture(scope="session")
def overfit_task(tmp_path_factory):
    """A tiny task whose original model has memorised its 30 forget points.

    Shared by the session (its original model trains once); tests must not
    modify the task.
    """
    return make_task(
        tmp_path_factory.mktemp("overfit"),
        recipe=OVERFIT,
        request=ForgetRequest(kind="random", count=30),
    )


def forget_loss(model: nn.Module, task: Task) -> float:
    """Mean cross-entropy of ``model`` on the task's forget set."""
    idx = task.splits.forget
    with torch.no_grad():
        model.eval()
        return float(F.cross_entropy(model(task.x[idx]), task.y[idx]))


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def first_deletion(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """The forget and retain indices of the stream's first deletion, in the order
    the methods see them (a cross-check must batch exactly what the method did)."""
    forget = task.forget_steps[0]
    target = task.splits.target
    return forget, target[~torch.isin(target, forget)]
