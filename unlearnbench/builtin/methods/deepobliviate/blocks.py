"""DeepObliviate's stored training: blocks trained in order, P_0..P_B kept.

Block j always trains with seed label ``("deepobliviate", j)``, so retraining it
without some points sees the same batches minus those points; retraining from
P_first to the end is naive retraining under this procedure (docs/methods.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from unlearnbench.builtin.methods.deepobliviate import residual_memory as rm
from unlearnbench.builtin.methods.deepobliviate.settings import OptimizerState, Settings, StateDict
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task
from unlearnbench.training import make_optimizer


def block_seed_label(block: int) -> tuple[str, int]:
    """The seed label of block ``block`` (0-based) in stored training and retraining."""
    return ("deepobliviate", block)


def make_block_optimizer(model: nn.Module, task: Task, cfg: Settings) -> torch.optim.Optimizer:
    """The optimizer blocks are trained with (the recipe's unless overridden)."""
    recipe = task.recipe
    if cfg.optimizer == "sgd":
        recipe = replace(recipe, optimizer="sgd", momentum=0.0)
    elif cfg.optimizer == "adam":
        recipe = replace(recipe, optimizer="adam")
    return make_optimizer(model.parameters(), recipe, cfg.lr or None)


def snapshot(model: nn.Module) -> StateDict:
    """A detached copy of the model's state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def optimizer_snapshot(optimizer: torch.optim.Optimizer) -> OptimizerState:
    """Per-parameter optimizer state as a list (cache-safe: tensors and numbers only)."""
    state = optimizer.state_dict()["state"]
    count = sum(len(g["params"]) for g in optimizer.param_groups)
    return [
        {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in state.get(i, {}).items()}
        for i in range(count)
    ]


def restore_optimizer(
    model: nn.Module, task: Task, cfg: Settings, saved: OptimizerState
) -> torch.optim.Optimizer:
    """A block optimizer for ``model`` carrying a copy of ``saved`` state."""
    optimizer = make_block_optimizer(model, task, cfg)
    state_dict = optimizer.state_dict()
    state_dict["state"] = {
        i: {k: v.clone() if torch.is_tensor(v) else v for k, v in entry.items()}
        for i, entry in enumerate(saved)
        if entry
    }
    optimizer.load_state_dict(state_dict)
    return optimizer


def train_block(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    block: int,
    blocks: list[torch.Tensor],
    task: Task,
    ctx: MethodContext,
    cfg: Settings,
    exclude: torch.Tensor | None = None,
) -> int:
    """Train ``model`` on block ``block`` (minus ``exclude``); returns sample-epochs."""
    stats = ctx.train(
        model,
        blocks[block],
        seed_label=block_seed_label(block),
        epochs=cfg.epochs(task),
        exclude=exclude,
        optimizer=optimizer,
    )
    return stats.sample_epochs


def stored_training(
    task: Task,
    ctx: MethodContext,
    cfg: Settings,
    blocks: list[torch.Tensor],
    exclude: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train every block in order from ``task.new_model("init")``, storing P_0..P_B.

    With ``exclude`` this is naive retraining of the same blocks without the points.
    """
    model = task.new_model("init")
    checkpoints = [snapshot(model)]
    optimizer = make_block_optimizer(model, task, cfg)
    optimizer_states: list[OptimizerState] = [optimizer_snapshot(optimizer)] if cfg.persist else []
    sample_epochs = 0
    for block in range(len(blocks)):
        if not cfg.persist:
            optimizer = make_block_optimizer(model, task, cfg)
        sample_epochs += train_block(model, optimizer, block, blocks, task, ctx, cfg, exclude)
        checkpoints.append(snapshot(model))
        if cfg.persist:
            optimizer_states.append(optimizer_snapshot(optimizer))
    return {
        "checkpoints": checkpoints,
        "optimizer_states": optimizer_states,
        "sample_epochs": sample_epochs,
    }


@dataclass(frozen=True)
class DeepObliviateState:
    """Stored training plus what a request stream has deleted so far.

    Never mutated: an ``unlearn`` returns a new state whose lists share the
    unchanged checkpoints with the old one. ``checkpoints`` holds P_0..P_B
    (P_0 the initialisation), ``optimizer_states`` the matching optimizer
    states with ``optimizer_state="persist"`` (else empty).
    """

    blocks: list[torch.Tensor]
    block_of: torch.Tensor
    checkpoints: list[StateDict]
    optimizer_states: list[OptimizerState]
    deleted: torch.Tensor
    trainable: tuple[str, ...]

    @property
    def num_params(self) -> int:
        return sum(self.checkpoints[0][name].numel() for name in self.trainable)

    @property
    def storage_bytes(self) -> int:
        """The stored models P_1..P_B (the paper's "B× storage": B − 1 intermediate
        models and the final one, whole state dicts with buffers) plus, with
        ``persist``, their optimizer states. P_0 is the seeded initialisation,
        rebuilt on demand, and the block partition is recomputed from the seed,
        so neither counts; nor do the deleted indices a stream keeps."""
        return rm.state_bytes(self.checkpoints[1:]) + rm.state_bytes(self.optimizer_states[1:])


def to_device(value: Any, device: torch.device) -> Any:
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_device(v, device) for v in value]
    return value


def points_digest(points: torch.Tensor) -> str:
    """A content key for a set of point indices (order and repeats do not matter)."""
    ordered = torch.unique(points.long()).cpu().numpy().astype("<i8")
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def retrain_to_end(
    state: DeepObliviateState,
    first: int,
    deleted: torch.Tensor,
    task: Task,
    ctx: MethodContext,
    cfg: Settings,
) -> dict[str, Any]:
    """Blocks ``first``..B−1 (0-based) retrained from P_first without ``deleted``.

    Naive retraining under DeepObliviate's procedure: P_0..P_first are those
    of the original stored training (no deletion changes a checkpoint before
    its own first affected block), so the result is exactly the stored
    training without ``deleted``. Reads ``state``, never writes it.
    """
    model = task.new_model("init")
    model.load_state_dict(state.checkpoints[first])
    optimizer = (
        restore_optimizer(model, task, cfg, state.optimizer_states[first]) if cfg.persist else None
    )
    sample_epochs = 0
    for block in range(first, len(state.blocks)):
        opt = optimizer if optimizer is not None else make_block_optimizer(model, task, cfg)
        sample_epochs += train_block(model, opt, block, state.blocks, task, ctx, cfg, deleted)
    return {"state_dict": snapshot(model), "sample_epochs": sample_epochs}
