"""``cf_k`` (CF-k, catastrophic forgetting): fine-tune only the last ``k`` layers on retain.

Goel et al. 2022 ("Towards Adversarial Evaluation of Machine Unlearning" /
"Evaluating Inexact Unlearning Requires Revisiting Forgetting"). Every layer
but the last ``k`` is frozen; the last ``k`` keep their trained weights and
are fine-tuned on the retain set, so the forget set is only forgotten
"catastrophically". See :mod:`unlearnbench_baselines.last_k` for the layers
and the loop, and its source (shash42/Evaluating-Inexact-Unlearning
``cat_forget_finetune``, commit ``e315401512b436c76576530dc73bc99f56793e87``).
Defaults: ``k`` 1, 30 epochs (``scripts/unlearn.sh``: ``--epochs-ft=30``), SGD
lr 0.1 → 0.005 (``--maxlr-ft`` 0.1, ``--minlr-ft`` 0.005), momentum 0.9,
weight decay 5e-5, clipping 10.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import MethodSpec, Unlearned
from unlearnbench.task import Task

from unlearnbench_baselines.common import PostHocMethod, UnlearnStep
from unlearnbench_baselines.last_k import k_param, last_k_layers, train_last_k, training_params

NAME = "cf_k"
PARAMS = (
    k_param(""),
    *training_params(30, "reference unlearn.sh --epochs-ft=30"),
)


class CatastrophicForgettingK(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        layers = last_k_layers(step.model, self.params["k"])
        return train_last_k(step, task, self.params, NAME, layers)


def create(params: Mapping[str, Any]) -> CatastrophicForgettingK:
    return CatastrophicForgettingK(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
