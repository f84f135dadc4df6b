"""``deepobliviate``: stored training over blocks, retrain the affected ones, stitch the rest.

DeepObliviate (paper 002, Algorithm 1). ``fit`` splits the target set into
``blocks`` label-balanced blocks (``unlearnbench.partition.label_balanced_blocks``
with the task seed: the partition forget requests with ``position`` use), trains
them one after another from the shared initialisation, each for
``epochs_per_block`` epochs, and stores the parameters after every block and
before the first (P_0..P_B; cached, so cells that differ only in stopping
parameters share it). Block ``j`` is always trained with seed label
``("deepobliviate", j)``, so its batches depend only on (task seed, block, epoch)
and retraining it without points sees the same batches minus those points.

``unlearn`` finds the first block ``d`` holding a point to delete, restarts
from P_{d-1} and retrains blocks d, d+1, ... without every point deleted so far.
After each block it measures the residual memory
Δ_k = ‖(P_k − P_{k−1}) − (P'_k − P'_{k−1})‖₁ over trainable parameters, fits
a·x^(−h)+b to the Δ series (h from ``nolds.dfa``, a and b by least squares,
x = 1, 2, ... counted from d) and stops when |a·h·x^(−h−1)| < ``epsilon`` at
the last x. The result is stitched, M' = P'_{d+t} + (P_B − P_{d+t}), over every
floating-point entry of the state dict (BatchNorm statistics included); integer
counters (``num_batches_tracked``) are stitched by the same integer arithmetic.

Choices where the paper is vague (each a parameter):

- ``normalise="first"``: Δ is divided by Δ_d, so the series starts at 1 and ε
  (0.02-0.1 in the paper) means the same for models of any size; raw L1 sums
  grow with the parameter count. ``per_param`` (mean absolute difference per
  parameter) and ``none`` (raw, the paper's literal reading) are offered.
- Short series: nolds.dfa needs 4 points and warns below 10, so series shorter
  than ``dfa_min_points`` (default 11, the shortest for which nolds uses its
  multi-scale windows 4..9) use ``fallback_h`` (default 1.0). The rule is first
  tested after ``min_blocks`` (default 3: a two-parameter fit needs more than
  two points to be a fit rather than an interpolation). DFA's final line fit
  is ordinary least squares (nolds' RANSAC default is random).
- Points in several blocks: retraining starts at the first affected block and
  never stops before the last one (stitching on an affected block would put the
  deleted points back). The tested Δ series starts at d (``series_start=
  "first_block"``); a spike where the last affected block is retrained then
  usually ends it at once, so ``"last_block"`` tests the series from the last
  affected block (x counted from there) instead, letting that block's memory decay.
- ``max_blocks`` (default 0: no cap, the paper's rule) caps the retrained blocks.
- ``optimizer_state``: the paper stores parameters only and uses Adam.
  ``fresh`` (default) builds a new optimizer for every block, in stored
  training and in retraining alike: no extra storage, and running to the end
  (ε = 0) equals naive retraining of the same blocks exactly. ``persist`` keeps
  one optimizer across blocks and stores its state with each checkpoint
  (about 3x the storage for Adam, 2x for SGD with momentum): retraining
  continues the optimizer exactly; after a deletion the states of the stitched
  (not retrained) blocks are kept as they were. ``optimizer="sgd"`` trains with
  plain SGD (no momentum, stateless: fresh and persist coincide);
  ``optimizer="recipe"`` follows the task's recipe; ``lr`` 0 means the recipe's.
- ``epochs_per_block`` 0 means the recipe's epochs for every block.

Request streams: the state carries the stored checkpoints and every point
deleted so far. After a deletion P_d..P_{d+t} are replaced by the retrained
ones (Algorithm 1, line 18) and P_{d+t+1}..P_B are shifted by
(P'_{d+t} − P_{d+t}), so the stored P_B is the returned model and the next
deletion starts from it. Costs: ``blocks_retrained`` (t+1), ``block_speedup``
(B/(t+1)), ``retrain_sample_epochs``, ``storage_bytes`` (stored checkpoints and
optimizer states), ``prediction_cost`` 1. Series (per deletion, so a stream
keeps them apart where summed costs would not): ``residual_memory`` (raw Δ),
``residual_memory_normalised``, the tested slopes ``stationarity`` at positions
``stationarity_x`` with their ``dfa_h`` (empty for ε = 0, where the rule cannot
fire and is not evaluated), ``stop_index`` (t: the 0-based index into the Δ
series of the last retrained block), ``first_block`` (d) and
``last_retrained_block`` (d+t), both 1-based.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from unlearnbench import MethodSpec, Param, Unlearned, hookimpl
from unlearnbench.builtin.methods import residual_memory as rm
from unlearnbench.partition import label_balanced_blocks
from unlearnbench.task import MethodContext, Task
from unlearnbench.training import make_optimizer

StateDict = dict[str, torch.Tensor]
OptimizerState = list[dict[str, Any]]
ARTIFACT = "deepobliviate-stored-training"
ARTIFACT_VERSION = 1

PARAMS = (
    Param("blocks", 100, "number B of label-balanced blocks the target set is trained in"),
    Param("epochs_per_block", 0, "epochs of training per block (0: the recipe's epochs)"),
    Param("epsilon", 0.1, "stop when the fitted power law's |slope| at the last block is < ε"),
    Param(
        "normalise",
        "first",
        "scale of Δ before fitting: first (÷Δ_d), per_param (÷ parameter count), none (raw)",
        choices=rm.NORMALISATIONS,
    ),
    Param("min_blocks", 3, "retrain at least this many blocks before testing the stopping rule"),
    Param("dfa_min_points", 11, "shorter Δ series use fallback_h instead of nolds.dfa"),
    Param("fallback_h", 1.0, "power-law exponent h used for Δ series shorter than dfa_min_points"),
    Param(
        "series_start",
        "first_block",
        "where the tested Δ series starts when points lie in several blocks: "
        "first_block (d) or last_block (the last affected block)",
        choices=("first_block", "last_block"),
    ),
    Param("max_blocks", 0, "cap on the blocks retrained per deletion (0: no cap, as the paper)"),
    Param(
        "optimizer_state",
        "fresh",
        "fresh: new optimizer per block (no extra storage); persist: store optimizer state",
        choices=("fresh", "persist"),
    ),
    Param(
        "optimizer",
        "recipe",
        "recipe: the task's optimizer; adam; sgd: plain SGD without momentum (stateless)",
        choices=("recipe", "adam", "sgd"),
    ),
    Param("lr", 0.0, "learning rate of block training (0: the recipe's)"),
)


@dataclass(frozen=True)
class Config:
    """Validated parameters of one ``deepobliviate`` cell."""

    blocks: int
    epochs_per_block: int
    epsilon: float
    normalise: str
    min_blocks: int
    dfa_min_points: int
    fallback_h: float
    series_start: str
    max_blocks: int
    optimizer_state: str
    optimizer: str
    lr: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Config:
        values = {}
        for p in PARAMS:
            try:
                values[p.name] = p.coerce(params.get(p.name, p.default))
            except ValueError as exc:
                raise ValueError(f"deepobliviate: parameter {p.name}: {exc}") from None
        cfg = cls(**values)
        checks = {
            "blocks": cfg.blocks >= 1,
            "epochs_per_block": cfg.epochs_per_block >= 0,
            "epsilon": cfg.epsilon >= 0,
            "min_blocks": cfg.min_blocks >= 1,
            "dfa_min_points": cfg.dfa_min_points >= 4,
            "max_blocks": cfg.max_blocks >= 0,
            "lr": cfg.lr >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"deepobliviate: parameter {name}={values[name]!r} is out of range"
                )
        return cfg

    def training_key(self, task: Task) -> dict[str, Any]:
        """What the stored training depends on (stopping parameters do not)."""
        return {
            "version": ARTIFACT_VERSION,
            "blocks": self.blocks,
            "epochs_per_block": self.epochs(task),
            "optimizer_state": self.optimizer_state,
            "optimizer": self.optimizer,
            "lr": self.lr,
        }

    def epochs(self, task: Task) -> int:
        return self.epochs_per_block or task.recipe.epochs

    @property
    def persist(self) -> bool:
        return self.optimizer_state == "persist"


def block_seed_label(block: int) -> tuple[str, int]:
    """The seed label of block ``block`` (0-based) in stored training and retraining."""
    return ("deepobliviate", block)


def make_block_optimizer(model: nn.Module, task: Task, cfg: Config) -> torch.optim.Optimizer:
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
    model: nn.Module, task: Task, cfg: Config, saved: OptimizerState
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
    cfg: Config,
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
    cfg: Config,
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
    unchanged checkpoints with the old one.
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
        return rm.state_bytes(self.checkpoints) + rm.state_bytes(self.optimizer_states)


def _to_device(value: Any, device: torch.device) -> Any:
    if torch.is_tensor(value):
        return value.to(device)
    if isinstance(value, Mapping):
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_device(v, device) for v in value]
    return value


class DeepObliviate:
    """The method object: ``fit`` builds (or loads) stored training, ``unlearn`` deletes."""

    def __init__(self, cfg: Config) -> None:
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
            checkpoints=_to_device(stored["checkpoints"], task.device),
            optimizer_states=_to_device(stored["optimizer_states"], task.device),
            deleted=task.splits.target.new_empty(0),
            trainable=trainable,
        )

    def unlearn(
        self, state: DeepObliviateState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        cfg = self.cfg
        forget = torch.unique(forget.to(state.block_of.device).long())
        if forget.numel() and (int(forget.min()) < 0 or int(forget.max()) >= task.x.shape[0]):
            raise ValueError("deepobliviate: forget holds indices outside the task's data")
        outside = int((state.block_of[forget] < 0).sum())
        if outside:
            raise ValueError(f"deepobliviate: forget holds {outside} points outside the target set")
        new = forget[~torch.isin(forget, state.deleted)]
        if new.numel() == 0:
            model = task.new_model("init")
            model.load_state_dict(state.checkpoints[-1])
            model.eval()
            costs = _costs(state, retrained=0, sample_epochs=0)
            return Unlearned(model=model, state=state, costs=costs, series={})

        deleted = torch.cat([state.deleted, new])
        affected = state.block_of[new]
        run = self.retrain(state, int(affected.min()), int(affected.max()), deleted, task, ctx)
        model = task.new_model("init")
        model.load_state_dict(run.state.checkpoints[-1])
        model.eval()
        costs = _costs(run.state, retrained=run.blocks_retrained, sample_epochs=run.sample_epochs)
        normalised = rm.normalise(run.residual_memory, cfg.normalise, state.num_params)
        series = {
            "residual_memory": run.residual_memory,
            "residual_memory_normalised": normalised,
            "stationarity": [t.slope for t in run.tests],
            "stationarity_x": [float(t.x) for t in run.tests],
            "dfa_h": [t.h for t in run.tests],
            "stop_index": [float(run.blocks_retrained - 1)],
            "first_block": [float(run.first + 1)],
            "last_retrained_block": [float(run.end)],
        }
        return Unlearned(model=model, state=run.state, costs=costs, series=series)

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
        previous = stored[first]
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
            tested = raw[last - first :] if cfg.series_start == "last_block" else raw
            if len(tested) >= cfg.min_blocks and cfg.epsilon > 0:  # |slope| < 0 never holds
                series = rm.normalise(tested, cfg.normalise, state.num_params)
                tests.append(rm.stationarity(series, cfg.dfa_min_points, cfg.fallback_h))
                if tests[-1].slope < cfg.epsilon:
                    break
            if cfg.max_blocks and count >= cfg.max_blocks:
                break

        end = first + len(retrained)  # the checkpoint index of P'_{d+t}
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
        return Retraining(new_state, first, end, raw, tests, sample_epochs)


@dataclass(frozen=True)
class Retraining:
    """What one run of Algorithm 1 did; ``end`` is the checkpoint index of P'_{d+t}."""

    state: DeepObliviateState
    first: int
    end: int
    residual_memory: list[float]
    tests: list[rm.Stationarity]
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
    return DeepObliviate(Config.from_params(params))


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="deepobliviate",
            create=create,
            params=PARAMS,
            description=__doc__ or "",
        )
    ]
