"""The SISA method object: ``fit`` trains every shard over its slices, ``unlearn``
retrains the affected shards from their first affected slice, ``naive`` retrains
every shard from scratch without the deleted points (docs/methods.md, "SISA").
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch

from unlearnbench import Unlearned
from unlearnbench.builtin.methods.sisa.ensemble import ShardEnsemble
from unlearnbench.builtin.methods.sisa.settings import PARAMS, SisaSettings
from unlearnbench.builtin.methods.sisa.shards import (
    SisaState,
    init_label,
    make_layout,
    owners,
    state_bytes,
    train_shards,
)
from unlearnbench.specs import MethodContext, ParamError, resolve_params
from unlearnbench.task import Task
from unlearnbench.training import stacking_pays, stacking_unsupported


class Sisa:
    """SISA training (``fit``) and unlearning by retraining affected shards (``unlearn``)."""

    def __init__(self, settings: SisaSettings) -> None:
        self.settings = settings

    def use_stacked(self, task: Task) -> bool:
        """Resolve ``stacked`` for this task's architecture and device."""
        mode = self.settings.stacked
        if mode == "off" or (mode == "auto" and self.settings.shards < 2):
            return False
        probe = task.new_model(init_label(self.settings, 0))
        if mode == "on":
            reason = stacking_unsupported(probe)
            if reason is not None:
                raise ParamError(f"stacked: 'on' cannot train this architecture stacked: {reason}")
            return True
        return stacking_pays(probe, task.device)

    def fit(self, task: Task, ctx: MethodContext) -> SisaState:
        settings = self.settings
        stacked = self.use_stacked(task)
        layout = make_layout(task, settings)

        def build() -> dict[str, Any]:
            models = {s: task.new_model(init_label(settings, s)) for s in range(settings.shards)}
            start = dict.fromkeys(range(settings.shards), 0)
            none = task.splits.target.new_empty(0)
            ckpts, sample_epochs, _ = train_shards(
                task, ctx, settings, layout, models, start, none, stacked=stacked
            )
            return {
                "checkpoints": [ckpts[s] for s in range(settings.shards)],
                "sample_epochs": sample_epochs,
            }

        value = ctx.cached("sisa", self.procedure(task, stacked), build)
        checkpoints = [list(c) for c in value["checkpoints"]]
        template = task.new_model(init_label(settings, 0))
        models = []
        for shard_checkpoints in checkpoints:
            model = copy.deepcopy(template)
            model.load_state_dict(shard_checkpoints[-1])
            models.append(model.eval())
        shard_of, slice_of = owners(task, layout)
        return SisaState(
            layout=layout,
            checkpoints=checkpoints,
            models=models,
            deleted=task.splits.target.new_empty(0),
            shard_of=shard_of,
            slice_of=slice_of,
            sizes=torch.tensor([sum(p.numel() for p in sl) for sl in layout], device=task.device),
            stacked=stacked,
            fit_sample_epochs=int(value["sample_epochs"]),
        )

    def unlearn(
        self, state: SisaState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        settings = self.settings
        forget = torch.unique(forget.to(task.device))
        outside = forget[state.shard_of[forget] < 0]
        if outside.numel():
            raise ValueError(
                f"sisa: {outside.numel()} forget indices are not in the target set "
                f"(first: {outside[:5].tolist()})"
            )
        new = forget[~torch.isin(forget, state.deleted)]
        deleted = torch.cat([state.deleted, new])
        start: dict[int, int] = {}
        for s, r in zip(state.shard_of[new].tolist(), state.slice_of[new].tolist(), strict=True):
            start[s] = min(r, start.get(s, r))
        models = {
            s: state.load(s, r - 1) if r > 0 else task.new_model(init_label(settings, s))
            for s, r in start.items()
        }
        fresh, sample_epochs, steps_run = train_shards(
            task, ctx, settings, state.layout, models, start, deleted, stacked=state.stacked
        )
        checkpoints, shard_models = list(state.checkpoints), list(state.models)
        for s, r in start.items():
            checkpoints[s] = [*checkpoints[s][:r], *fresh[s]]
            shard_models[s] = models[s]
        new_state = replace(state, checkpoints=checkpoints, models=shard_models, deleted=deleted)
        ensemble = self.ensemble(new_state, task)
        checkpoint_bytes = state_bytes(checkpoints[0][0])
        costs = {
            "shards_retrained": float(len(start)),
            "slices_retrained": float(steps_run),
            "retrain_sample_epochs": float(sample_epochs),
            "storage_bytes": float(checkpoint_bytes * settings.shards * settings.slices),
            "prediction_cost": float(len(ensemble.members)),
        }
        return Unlearned(model=ensemble, state=new_state, costs=costs)

    def procedure(self, task: Task, stacked: bool) -> dict[str, Any]:
        """What SISA's training depends on (the cache key of ``fit`` and ``naive``):
        not ``aggregation``, which only combines the trained models."""
        settings = self.settings
        return {
            "shards": settings.shards,
            "slices": settings.slices,
            "epochs": settings.epochs or task.recipe.epochs,
            "partition": settings.partition,
            "stacked": stacked,
        }

    def trained(self, state: SisaState, task: Task, ctx: MethodContext) -> ShardEnsemble:
        """The model SISA unlearns from: the ensemble of the shard models ``state``
        holds (after ``fit``: every shard trained on all its slices, nothing deleted),
        over copies of them, so no later ``unlearn`` changes it; ``state`` is not changed."""
        copies = replace(state, models=[copy.deepcopy(m).eval() for m in state.models])
        return self.ensemble(copies, task)

    def naive(
        self, state: SisaState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        """Exact retraining under SISA's procedure: every shard trained from its
        initialisation over all its slices without ``forget`` (and whatever
        ``state`` has deleted), no checkpoint reused; ``state`` is not changed."""
        settings = self.settings
        removed = torch.unique(torch.cat([state.deleted, forget.to(task.device)]))
        key = {
            **self.procedure(task, state.stacked),
            "without": hashlib.sha256(removed.cpu().numpy().tobytes()).hexdigest(),
        }

        def build() -> dict[str, Any]:
            models = {s: task.new_model(init_label(settings, s)) for s in range(settings.shards)}
            start = dict.fromkeys(range(settings.shards), 0)
            ckpts, _, _ = train_shards(
                task, ctx, settings, state.layout, models, start, removed, stacked=state.stacked
            )
            return {"weights": [ckpts[s][-1] for s in range(settings.shards)]}

        weights = ctx.cached("sisa-naive", key, build)["weights"]
        models = []
        for s, shard_weights in enumerate(weights):
            model = copy.deepcopy(state.models[s])
            model.load_state_dict(shard_weights)
            models.append(model.eval())
        naive_state = replace(state, models=models, deleted=removed)
        ensemble = self.ensemble(naive_state, task)
        return Unlearned(model=ensemble, costs={"prediction_cost": float(len(ensemble.members))})

    def ensemble(self, state: SisaState, task: Task) -> ShardEnsemble:
        """The aggregate of the latest shard models, leaving out emptied shards."""
        gone = torch.bincount(state.shard_of[state.deleted], minlength=len(state.layout))
        left = (state.sizes - gone).tolist()
        members = [model for model, n in zip(state.models, left, strict=True) if n > 0]
        if not members:
            raise ValueError("sisa: every target point has been deleted; no shard model is left")
        return ShardEnsemble(members, task.num_classes, self.settings.aggregation)


def create(params: Mapping[str, Any]) -> Sisa:
    return Sisa(SisaSettings(**resolve_params(PARAMS, params)))
