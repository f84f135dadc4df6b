"""The DeepObliviate method object: ``fit``, ``unlearn`` (retrain, test, stitch), ``naive``.

``unlearn`` retrains from the first affected block, measures the residual memory
after each block, stops by the DFA rule and stitches the rest (paper 002,
Algorithm 1; the maths in :mod:`.residual_memory`, the rationale in docs/methods.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from unlearnbench import Unlearned
from unlearnbench.builtin.methods.deepobliviate import residual_memory as rm
from unlearnbench.builtin.methods.deepobliviate.blocks import (
    DeepObliviateState,
    make_block_optimizer,
    optimizer_snapshot,
    points_digest,
    restore_optimizer,
    retrain_to_end,
    snapshot,
    stored_training,
    to_device,
    train_block,
)
from unlearnbench.builtin.methods.deepobliviate.settings import (
    ARTIFACT,
    NAIVE_ARTIFACT,
    OptimizerState,
    Settings,
    StateDict,
)
from unlearnbench.partition import label_balanced_blocks
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task


class DeepObliviate:
    """The method object: ``fit`` builds (or loads) stored training, ``unlearn`` deletes,
    ``naive`` retrains the stored training to the end without the deleted points."""

    def __init__(self, cfg: Settings) -> None:
        self.cfg = cfg

    def partition(self, task: Task) -> list[torch.Tensor]:
        target = task.splits.target
        if self.cfg.blocks > target.numel():
            raise ValueError(
                f"deepobliviate: blocks={self.cfg.blocks} exceeds the {target.numel()} "
                "target points"
            )
        return label_balanced_blocks(target, task.clean_y, self.cfg.blocks, task.seed)

    def fit(self, task: Task, ctx: MethodContext) -> DeepObliviateState:
        cfg = self.cfg
        blocks = self.partition(task)
        stored = ctx.cached(
            ARTIFACT,
            cfg.training_key(task),
            lambda: stored_training(task, ctx, cfg, blocks),
        )
        block_of = torch.full((task.x.shape[0],), -1, dtype=torch.long, device=task.device)
        for j, members in enumerate(blocks):
            block_of[members] = j
        model = task.new_model("init")
        trainable = tuple(n for n, p in model.named_parameters() if p.requires_grad)
        return DeepObliviateState(
            blocks=blocks,
            block_of=block_of,
            checkpoints=to_device(stored["checkpoints"], task.device),
            optimizer_states=to_device(stored["optimizer_states"], task.device),
            deleted=task.splits.target.new_empty(0),
            trainable=trainable,
        )

    def trained(self, state: DeepObliviateState, task: Task, ctx: MethodContext) -> nn.Module:
        """The model DeepObliviate unlearns from: the stored training's last
        checkpoint P_B (after ``fit``: every block trained, nothing deleted) loaded
        into a new model (``load_state_dict`` copies it); ``state`` is not changed."""
        return self._model(state.checkpoints[-1], task)

    def naive(
        self, state: DeepObliviateState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        """Exact retraining under the stored-training procedure without ``forget``
        (and whatever ``state`` has deleted already): ε = 0, from the first
        affected block to block B. Cached by the stored training's parameters
        and the deleted set only, so cells that differ in stopping parameters
        share it; ``state`` is not changed."""
        new = self._new_points(state, forget, task)
        deleted = torch.unique(torch.cat([state.deleted, new]))
        if deleted.numel() == 0:
            return Unlearned(model=self._model(state.checkpoints[-1], task))
        first = int(state.block_of[deleted].min())
        key = {**self.cfg.training_key(task), "deleted": points_digest(deleted)}
        value = ctx.cached(
            NAIVE_ARTIFACT,
            key,
            lambda: retrain_to_end(state, first, deleted, task, ctx, self.cfg),
        )
        model = self._model(to_device(value["state_dict"], task.device), task)
        costs = {"retrain_sample_epochs": float(value["sample_epochs"])}
        return Unlearned(model=model, costs=costs)

    def unlearn(
        self, state: DeepObliviateState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        cfg = self.cfg
        new = self._new_points(state, forget, task)
        if new.numel() == 0:
            model = self._model(state.checkpoints[-1], task)
            costs = _costs(state, retrained=0, sample_epochs=0)
            return Unlearned(model=model, state=state, costs=costs, series={})

        deleted = torch.cat([state.deleted, new])
        affected = state.block_of[new]
        run = self.retrain(state, int(affected.min()), int(affected.max()), deleted, task, ctx)
        model = self._model(run.state.checkpoints[-1], task)
        costs = _costs(run.state, retrained=run.blocks_retrained, sample_epochs=run.sample_epochs)
        record = run.record
        costs |= {
            "stop_block_final": float(run.end),
            "dfa_h_final": record.h,
            "rule_stopped": float(run.rule_stopped),
            "dfa_decided": float(run.rule_stopped and record.used_dfa),
        }
        normalised = rm.normalise(run.residual_memory, cfg.normalise, state.num_params)
        series = {
            "residual_memory": run.residual_memory,
            "residual_memory_normalised": normalised,
            "stationarity": [t.slope for t in run.tests],
            "stationarity_x": [t.x for t in run.tests],
            "dfa_h": [t.h for t in run.tests],
            "dfa_used": [float(t.used_dfa) for t in run.tests],
            "rising": [float(t.rising) for t in run.tests],
            "stop_index": [float(run.blocks_retrained - 1)],
            "first_block": [float(run.first + 1)],
            "last_retrained_block": [float(run.end)],
        }
        return Unlearned(model=model, state=run.state, costs=costs, series=series)

    def _new_points(
        self, state: DeepObliviateState, forget: torch.Tensor, task: Task
    ) -> torch.Tensor:
        """The target points of ``forget`` not deleted yet (checked, unique, sorted)."""
        forget = torch.unique(forget.to(state.block_of.device).long())
        if forget.numel() and (int(forget.min()) < 0 or int(forget.max()) >= task.x.shape[0]):
            raise ValueError("deepobliviate: forget holds indices outside the task's data")
        outside = int((state.block_of[forget] < 0).sum())
        if outside:
            raise ValueError(f"deepobliviate: forget holds {outside} points outside the target set")
        return forget[~torch.isin(forget, state.deleted)]

    @staticmethod
    def _model(state_dict: StateDict, task: Task) -> nn.Module:
        model = task.new_model("init")
        model.load_state_dict(state_dict)
        model.eval()
        return model

    def retrain(
        self,
        state: DeepObliviateState,
        first: int,
        last: int,
        deleted: torch.Tensor,
        task: Task,
        ctx: MethodContext,
    ) -> Retraining:
        """Algorithm 1: retrain from block ``first`` (0-based) without ``deleted``, stop, stitch.

        Never stops before block ``last``. Returns the new state, whose last
        checkpoint is the stitched model.
        """
        cfg = self.cfg
        rule = cfg.rule
        total = len(state.blocks)
        stored = state.checkpoints
        model = task.new_model("init")
        model.load_state_dict(stored[first])
        optimizer = (
            restore_optimizer(model, task, cfg, state.optimizer_states[first])
            if cfg.persist
            else None
        )
        retrained: list[StateDict] = []
        new_optimizer_states: list[OptimizerState] = []
        raw: list[float] = []
        tests: list[rm.Stationarity] = []
        sample_epochs = 0
        rule_stopped = False
        previous = stored[first]
        start = last if cfg.series_start == "last_block" else first  # 0-based block of Δ[0]
        for block in range(first, total):
            opt = optimizer if optimizer is not None else make_block_optimizer(model, task, cfg)
            sample_epochs += train_block(model, opt, block, state.blocks, task, ctx, cfg, deleted)
            now = snapshot(model)
            raw.append(
                rm.residual_memory(stored[block], stored[block + 1], previous, now, state.trainable)
            )
            retrained.append(now)
            if cfg.persist:
                new_optimizer_states.append(optimizer_snapshot(opt))
            previous = now
            count = block - first + 1
            if count < last - first + 1:
                continue  # never stitch over a block that still holds deleted points
            tested = raw[start - first :]
            if len(tested) >= cfg.min_blocks and cfg.epsilon > 0:  # |slope| < 0 never holds
                series = rm.normalise(tested, cfg.normalise, state.num_params)
                tests.append(rule.test(series, start + 1))
                if tests[-1].stop:
                    rule_stopped = True
                    break
            if cfg.max_blocks and count >= cfg.max_blocks:
                break

        end = first + len(retrained)  # the checkpoint index of P'_{d+t}
        if tests and tests[-1].n == end - start:
            record = tests[-1]
        else:  # the rule was not evaluated at the stop block: evaluate it for the record
            tested = rm.normalise(raw[start - first :], cfg.normalise, state.num_params)
            record = rule.test(tested, start + 1)
        result = rm.stitch(retrained[-1], stored[total], stored[end])
        shifted = [rm.shift(stored[k], retrained[-1], stored[end]) for k in range(end + 1, total)]
        checkpoints = [*stored[: first + 1], *retrained[:-1]]
        checkpoints += [retrained[-1]] if end < total else []
        checkpoints += [*shifted, result]
        optimizer_states = state.optimizer_states
        if cfg.persist:
            optimizer_states = [
                *optimizer_states[: first + 1],
                *new_optimizer_states,
                *optimizer_states[end + 1 :],
            ]
        new_state = replace(
            state, checkpoints=checkpoints, optimizer_states=optimizer_states, deleted=deleted
        )
        return Retraining(new_state, first, end, raw, tests, record, rule_stopped, sample_epochs)


@dataclass(frozen=True)
class Retraining:
    """What one run of Algorithm 1 did; ``end`` is the checkpoint index of P'_{d+t}.

    ``tests`` are the rule's evaluations that could stop retraining; ``record``
    is the rule evaluated at the last retrained block (the last test, or one
    made only to be reported when none was made there, e.g. for ε = 0).
    """

    state: DeepObliviateState
    first: int
    end: int
    residual_memory: list[float]
    tests: list[rm.Stationarity]
    record: rm.Stationarity
    rule_stopped: bool
    sample_epochs: int

    @property
    def blocks_retrained(self) -> int:
        return self.end - self.first


def _costs(state: DeepObliviateState, *, retrained: int, sample_epochs: int) -> dict[str, float]:
    """The counters of one deletion."""
    total = len(state.blocks)
    return {
        "blocks_retrained": float(retrained),
        "block_speedup": total / max(retrained, 1),
        "retrain_sample_epochs": float(sample_epochs),
        "storage_bytes": float(state.storage_bytes),
        "prediction_cost": 1.0,
    }


def create(params: Mapping[str, Any]) -> DeepObliviate:
    return DeepObliviate(Settings.from_params(params))
