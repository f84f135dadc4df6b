"""SISA's shards and slices: the layout, the epoch schedule, and training slice steps.

Shard s, slice step r trains on slices 1..r with seed label ``("sisa", s, r)`` and
stores a checkpoint; shards at the same step can train together
(:func:`unlearnbench.training.train_stacked`). Deleted points are dropped after
each epoch's permutation, so retraining is exact (docs/methods.md, "SISA").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from unlearnbench.builtin.methods.sisa.settings import SisaSettings
from unlearnbench.partition import label_balanced_blocks
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import MethodContext, ParamError
from unlearnbench.task import Task
from unlearnbench.training import StackedJob, train_stacked

StateDict = dict[str, torch.Tensor]


def slice_epochs(epochs: int, slices: int) -> list[int]:
    """Epochs of each slice step: ``floor(r·a) − floor((r−1)·a)``, ``a = 2E/(R+1)``."""
    return [
        (r * 2 * epochs) // (slices + 1) - ((r - 1) * 2 * epochs) // (slices + 1)
        for r in range(1, slices + 1)
    ]


def make_layout(task: Task, config: SisaSettings) -> list[list[torch.Tensor]]:
    """``layout[s][r]``: the target indices of slice r of shard s."""
    target = task.splits.target
    if config.shards > target.numel():
        raise ParamError(
            f"shards: {config.shards} shards exceed the {target.numel()} target points"
        )
    if config.shards == 1:
        shards = [target]
    else:
        seed = task.seed if config.partition == "shared" else derive_seed(task.seed, "sisa")
        shards = label_balanced_blocks(target, task.clean_y, config.shards, seed)
    layout = []
    for s, shard in enumerate(shards):
        if config.slices > shard.numel():
            raise ParamError(
                f"slices: {config.slices} slices exceed the {shard.numel()} points of shard {s}"
            )
        if config.slices == 1:
            layout.append([shard])
        else:
            seed = derive_seed(task.seed, "sisa-slices", config.shards, s)
            layout.append(label_balanced_blocks(shard, task.clean_y, config.slices, seed))
    return layout


def init_label(config: SisaSettings, shard: int) -> object:
    return "init" if config.shards == 1 else ("sisa-shard", shard)


def step_label(config: SisaSettings, shard: int, step: int) -> object:
    return "train" if config.shards == 1 and config.slices == 1 else ("sisa", shard, step)


@dataclass
class SisaState:
    """What ``unlearn`` needs and updates: layout, checkpoints, deleted points.

    ``checkpoints[s][r]`` is shard s's state dict after slice step r;
    ``models[s]`` is shard s's latest model, kept loaded as a deployment
    would (the ensembles ``unlearn`` returns share the models of shards it did
    not retrain: treat them as read-only). ``shard_of`` / ``slice_of`` map a
    pool index to its shard and slice (-1 outside the target set); ``sizes``
    counts each shard's points. Never mutated: ``unlearn`` returns a new state.
    """

    layout: list[list[torch.Tensor]]
    checkpoints: list[list[StateDict]]
    models: list[nn.Module]
    deleted: torch.Tensor
    shard_of: torch.Tensor
    slice_of: torch.Tensor
    sizes: torch.Tensor
    stacked: bool
    fit_sample_epochs: int = 0

    def load(self, shard: int, step: int) -> nn.Module:
        """A new model holding ``checkpoints[shard][step]`` (a copy of a shard
        model: building a fresh one seeds torch, which costs more than that)."""
        model = copy.deepcopy(self.models[shard])
        model.load_state_dict(self.checkpoints[shard][step])
        return model


def owners(task: Task, layout: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    n = task.x.shape[0]
    shard_of = torch.full((n,), -1, dtype=torch.long, device=task.device)
    slice_of = torch.full((n,), -1, dtype=torch.long, device=task.device)
    for s, slices in enumerate(layout):
        for r, part in enumerate(slices):
            shard_of[part] = s
            slice_of[part] = r
    return shard_of, slice_of


def _snapshot(model: nn.Module) -> StateDict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_shards(
    task: Task,
    ctx: MethodContext,
    config: SisaSettings,
    layout: list[list[torch.Tensor]],
    models: Mapping[int, nn.Module],
    start: Mapping[int, int],
    deleted: torch.Tensor,
    *,
    stacked: bool,
) -> tuple[dict[int, list[StateDict]], int, int]:
    """Run slice steps ``start[s]..R-1`` of each shard s on ``models[s]`` (in place).

    Returns the checkpoints after each step run (per shard), the sample-epochs
    trained and the number of slice steps run. Shards at the same step train
    together when ``stacked`` (and at least two do), one by one otherwise.
    """
    schedule = slice_epochs(config.epochs or task.recipe.epochs, config.slices)
    checkpoints: dict[int, list[StateDict]] = {s: [] for s in start}
    sample_epochs = steps_run = 0
    for step in range(min(start.values(), default=config.slices), config.slices):
        active = [s for s in sorted(start) if start[s] <= step]
        data = {s: torch.cat(layout[s][: step + 1]) for s in active}
        if stacked and len(active) > 1:
            # the seed ctx.train derives from a seed label: (task.seed, label);
            # test_stacked_training_matches_one_by_one fails if the two drift apart
            jobs = [
                StackedJob(data[s], (task.seed, step_label(config, s, step)), deleted)
                for s in active
            ]
            counts = train_stacked(
                [models[s] for s in active],
                jobs,
                task.x,
                task.y,
                task.recipe,
                epochs=schedule[step],
            )
            sample_epochs += sum(counts)
            ctx.add_work(sum(counts))  # ctx.train counts itself; this loop does not
        else:
            for s in active:
                stats = ctx.train(
                    models[s],
                    data[s],
                    seed_label=step_label(config, s, step),
                    epochs=schedule[step],
                    exclude=deleted,
                )
                sample_epochs += stats.sample_epochs
        for s in active:
            checkpoints[s].append(_snapshot(models[s]))
        steps_run += len(active)
    return checkpoints, sample_epochs, steps_run


def state_bytes(state: StateDict) -> int:
    return sum(t.numel() * t.element_size() for t in state.values())
