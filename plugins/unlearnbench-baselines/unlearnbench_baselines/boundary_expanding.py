"""``boundary_expanding`` (Boundary Expanding): forgotten points into a shadow class, then prune it.

Chen et al. 2023 ("Boundary Unlearning: Rapid Forgetting of Deep Networks via
Shifting the Decision Boundary"), the companion of ``boundary_shrink``. The
output layer is widened by one *shadow* class (its row freshly initialised,
the trained rows copied), the whole widened model is fine-tuned on the forget
set with every point labelled as the shadow class, and the shadow row is
then pruned away: what the forget points' features moved towards is no
longer a class, so they fall to their nearest remaining one.

Source: TY-LEE-KR/Boundary-Unlearning-Code, ``boundary_unlearning.py``
(``boundary_expanding``) and ``models.py`` (``init_params``: Xavier-normal
weights, zero bias for the new linear layer), commit
``86c2f1f219497e426d7442eb5ec5fd0ebd9b2add``. Defaults there: SGD lr 1e-5,
momentum 0.9 (``optimizer_picker('sgd', ..., lr=0.00001, momentum=0.9)``),
``finetune_epochs`` 10 over the forget batches. The output layer is the
model's last ``nn.Linear`` with one output per class (the reference's
``classifier``); a model without one is refused. The shadow row is drawn on
CPU from the deletion's seed (the reference draws the whole new layer from
torch's global generator, then overwrites all rows but the last). At lr 1e-5
the method moves our models little on small forget sets, as
``boundary_shrink`` does; tune ``lr``. Batches use the task recipe's batch
size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from unlearnbench import MethodSpec, UnlearnbenchError, Unlearned
from unlearnbench.seeding import generator
from unlearnbench.task import Task

from unlearnbench_baselines.common import (
    PostHocMethod,
    UnlearnStep,
    descend_each_batch,
    optimizer_params,
)

NAME = "boundary_expanding"
SOURCE = "Chen et al. 2023 code"
PARAMS = optimizer_params(
    lr=1e-5, epochs=10, optimizer="sgd", momentum=0.9, weight_decay=0.0, source=SOURCE
)


class NoOutputLayer(UnlearnbenchError, ValueError):
    """The model has no final ``nn.Linear`` with one output per class to widen."""


def output_layer(model: nn.Module, num_classes: int) -> tuple[nn.Module, str, nn.Linear]:
    """The parent module, attribute name and module of the last class-sized Linear."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            found = name, module
    if found is None:
        raise NoOutputLayer(
            f"{NAME}: the model has no nn.Linear with {num_classes} outputs to widen"
        )
    name, module = found
    parent_name, _, attr = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    return parent, attr, module


@torch.no_grad()
def widened(layer: nn.Linear, seed: object) -> nn.Linear:
    """``layer`` with one more output: its rows copied, the new row Xavier-normal
    (drawn over the widened shape, as ``init_params`` does) and a zero bias."""
    out, width = layer.out_features, layer.in_features
    wide = nn.Linear(width, out + 1, bias=layer.bias is not None).to(layer.weight.device)
    fresh = torch.empty(out + 1, width)
    nn.init.xavier_normal_(fresh, generator=generator(seed, "shadow-class"))
    wide.weight.copy_(fresh.to(wide.weight.device))
    wide.weight[:out] = layer.weight
    if wide.bias is not None:
        wide.bias.zero_()
        wide.bias[:out] = layer.bias
    return wide


@torch.no_grad()
def pruned(wide: nn.Linear, layer: nn.Linear) -> nn.Linear:
    """``layer`` holding ``wide``'s rows but the last (the shadow class)."""
    layer.weight.copy_(wide.weight[:-1])
    if layer.bias is not None:
        layer.bias.copy_(wide.bias[:-1])
    return layer


class BoundaryExpanding(PostHocMethod):
    name = NAME

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        model, x = step.model, task.x
        parent, attr, layer = output_layer(model, task.num_classes)
        wide = widened(layer, step.seed)
        setattr(parent, attr, wide)
        shadow = task.num_classes

        def loss(idx: torch.Tensor, epoch: int) -> torch.Tensor:
            target = torch.full((idx.numel(),), shadow, dtype=torch.long, device=x.device)
            return F.cross_entropy(model(x[idx]), target)

        result = descend_each_batch(step, task, self.params, NAME, "forget", loss)
        setattr(parent, attr, pruned(wide, layer))
        return result


def create(params: Mapping[str, Any]) -> BoundaryExpanding:
    return BoundaryExpanding(params)


SPEC = MethodSpec(name=NAME, create=create, params=PARAMS, description=__doc__ or "")
