"""``eu_k`` (EU-k, exact unlearning): re-initialise the last ``k`` layers, retrain them on retain.

Goel et al. 2022 ("Towards Adversarial Evaluation of Machine Unlearning" /
"Evaluating Inexact Unlearning Requires Revisiting Forgetting"). The last
``k`` layers are re-initialised (the reference's ``_reinit``: Kaiming-normal
weights, zero biases, norms to weight 1 and bias 0) and trained from scratch
on the retain set while every other layer stays frozen: exact unlearning
when the forget set left no trace in the frozen layers. See
:mod:`unlearnbench_baselines.last_k` for the layers and the loop, and its
source (shash42/Evaluating-Inexact-Unlearning ``retrain_lastK``, commit
``e315401512b436c76576530dc73bc99f56793e87``). Defaults: ``k`` 1; epochs 62
(``scripts/unlearn.sh``: ``--epochs-rf=62``, the same count as the reference's
original training, so tune or grid ``epochs`` to the task's training length);
SGD lr 0.1 → 0.005, momentum 0.9, weight decay 5e-5, clipping 10. The new
weights are drawn from the deletion's seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import MethodSpec, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import PostHocMethod, UnlearnStep
from unlearnbench_baselines.last_k import (
    k_param,
    last_k_layers,
    reinitialise,
    train_last_k,
    training_params,
)

NAME = "eu_k"
PARAMS = (
    k_param(", re-initialised first"),
    *training_params(62, "reference unlearn.sh --epochs-rf=62"),
)


class ExactUnlearningK(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        layers = last_k_layers(step.model, self.params["k"])
        reinitialise(layers, step.seed)
        return train_last_k(step, task, self.params, NAME, layers)


def create(params: Mapping[str, Any]) -> ExactUnlearningK:
    return ExactUnlearningK(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
