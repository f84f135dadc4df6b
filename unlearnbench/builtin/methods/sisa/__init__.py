"""``sisa``: Sharded, Isolated, Sliced, Aggregated training (Bourtoule et al., S&P 2021).

The target set is split into ``shards`` (S) disjoint shards, each into
``slices`` (R) disjoint slices. Every shard has its own model, trained
incrementally: slice step r trains on slices 1..r, and a checkpoint is stored
after every step (S·R checkpoints). Deleting points retrains only the shards
that held them, each from the checkpoint before its first affected slice;
other shards and earlier slices are reused. Predictions aggregate the S shard
models (S forward passes).

Choices where the papers leave room (each exposed as a parameter):

- Epochs: slice step r (1-based) trains ``floor(r·a) − floor((r−1)·a)`` epochs
  with ``a = 2E/(R+1)``, the schedule of the authors' code, so that the total
  work is about E epochs over the whole shard (exactly when the floors divide)
  and the expected retraining speed-up is S·3R/(2R+1). E is ``epochs``, by
  default the task recipe's epochs.
- Partition: ``partition="shared"`` draws shards with
  :func:`unlearnbench.partition.label_balanced_blocks` and the task seed, the
  partition forget requests with a ``position`` use: a request with
  ``blocks=S`` then deletes from one shard, which is the case SISA is built
  for. ``"private"`` draws shards from a seed of their own, unrelated to any
  request. Slices are label-balanced blocks of their shard (own seed). With
  S=1 the shard is the target set in its original order.
- Optimizer: a fresh optimizer of the recipe (Adam or SGD) per slice step.
  The authors' code keeps the in-memory optimizer across slices when training
  from scratch but starts a fresh one when resuming from a checkpoint; a fresh
  one per step makes a retrained shard exactly the shard that training
  without the deleted points would give (and keeps checkpoints weights-only).
- Seeds: shard s starts from ``task.new_model(("sisa-shard", s))`` and step r
  trains with seed label ``("sisa", s, r)``; with S=1 the model starts from
  ``"init"`` and, with R=1 too, trains with ``"train"``: then SISA is exactly
  ``retrain``. Deleted points are dropped after each epoch's permutation (the
  shared loop's ``exclude``), so unlearning gives bit for bit the models that
  SISA training without those points would give.
- Aggregation: ``"vote"`` (majority vote, ties to the lowest class, as in the
  paper's main results) or ``"mean"`` (mean of posteriors). The returned model
  outputs the log of the aggregated posteriors (vote shares), floored at
  1e-8, so argmax is the aggregate label: accuracy and consistency use it.
  Membership attacks read ``posteriors(x)`` instead, the mean of the shard
  models' softmax whatever the aggregation: vote shares are not posteriors
  (a shadow attack trained on one model's softmax would read a unanimous
  vote, 1.0, as extreme confidence).
- Shards left with no point are dropped from the vote.
- ``stacked``: train the shards that share a slice step together with
  torch.func (``"auto"``: on a GPU, or on CPU for MLPs; see
  :mod:`unlearnbench.builtin.methods.sisa.stacked` for how it matches one-by-one
  training up to floating-point order).

Naive retraining under SISA's procedure (``naive``): every shard retrained
from its initialisation over all its slices without the forget points, no
checkpoint reused. SISA's unlearning is exact under its procedure, so with
one-by-one training its model equals this one bit for bit (stacked training
groups shards differently in the two runs, so there they agree up to
floating-point order).

``trained``: the model SISA unlearns from, the ensemble of every shard after
``fit`` (nothing deleted); evaluators measure a "before" on it, not on the
standard original (a backdoor the shard models never learned verifies
nothing).

Costs: ``shards_retrained``, ``slices_retrained`` (slice steps retrained),
``retrain_sample_epochs``, ``storage_bytes`` (S·R checkpoints),
``prediction_cost`` (models evaluated per prediction).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench import MethodSpec, Param, Unlearned, hookimpl
from unlearnbench.builtin.methods.sisa.stacked import Job, train_stacked
from unlearnbench.partition import label_balanced_blocks
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import MethodContext, ParamError, resolve_params
from unlearnbench.task import Task
from unlearnbench.training import stacking_pays, stacking_unsupported

PROBABILITY_FLOOR = 1e-8
StateDict = dict[str, torch.Tensor]

PARAMS = (
    Param("shards", 5, "number of shards S (one model each)", minimum=1),
    Param("slices", 5, "number of slices R per shard (one checkpoint each)", minimum=1),
    Param(
        "epochs",
        0,
        "epochs E over a whole shard, spread over slice steps; 0 = recipe's",
        minimum=0,
    ),
    Param(
        "aggregation",
        "vote",
        "how shard models are combined: majority vote or mean of posteriors",
        choices=("vote", "mean"),
    ),
    Param(
        "stacked",
        "auto",
        "train shards together with torch.func: auto (GPU, or MLP on CPU), on, off",
        choices=("auto", "on", "off"),
    ),
    Param(
        "partition",
        "shared",
        "shards drawn like request positions (shared) or from their own seed (private)",
        choices=("shared", "private"),
    ),
)


@dataclass(frozen=True)
class SisaConfig:
    """The method's parameters (see :data:`PARAMS`; the host checks their ranges)."""

    shards: int = 5
    slices: int = 5
    epochs: int = 0
    aggregation: str = "vote"
    stacked: str = "auto"
    partition: str = "shared"


def slice_epochs(epochs: int, slices: int) -> list[int]:
    """Epochs of each slice step: ``floor(r·a) − floor((r−1)·a)``, ``a = 2E/(R+1)``."""
    return [
        (r * 2 * epochs) // (slices + 1) - ((r - 1) * 2 * epochs) // (slices + 1)
        for r in range(1, slices + 1)
    ]


def make_layout(task: Task, config: SisaConfig) -> list[list[torch.Tensor]]:
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


def init_label(config: SisaConfig, shard: int) -> object:
    return "init" if config.shards == 1 else ("sisa-shard", shard)


def step_label(config: SisaConfig, shard: int, step: int) -> object:
    return "train" if config.shards == 1 and config.slices == 1 else ("sisa", shard, step)


class ShardEnsemble(nn.Module):
    """Aggregates shard models; ``forward`` gives the log of the aggregated posteriors.

    ``"vote"``: the share of models voting for each class (ties go to the
    lowest class, as ``argmax`` returns the first maximum). ``"mean"``: the
    mean of the models' softmax posteriors. Floored at ``floor`` before the log.
    """

    def __init__(
        self,
        models: list[nn.Module],
        num_classes: int,
        aggregation: str = "vote",
        floor: float = PROBABILITY_FLOOR,
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("a shard ensemble needs at least one model")
        if aggregation not in ("vote", "mean"):
            raise ValueError(f"aggregation must be 'vote' or 'mean', got {aggregation!r}")
        self.members = nn.ModuleList(models)
        self.num_classes = num_classes
        self.aggregation = aggregation
        self.floor = floor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(x.shape[0], self.num_classes, device=x.device)
        for member in self.members:
            logits = member(x)
            if self.aggregation == "vote":
                total += F.one_hot(logits.argmax(1), self.num_classes).to(total.dtype)
            else:
                total += torch.softmax(logits, dim=1)
        return (total / len(self.members)).clamp_min(self.floor).log()

    def posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' softmax posteriors, whatever the aggregation:
        what membership attacks read (:func:`unlearnbench.training.predict_proba`)."""
        total = torch.zeros(x.shape[0], self.num_classes, device=x.device)
        for member in self.members:
            total += torch.softmax(member(x), dim=1)
        return total / len(self.members)


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


def _owners(task: Task, layout: list[list[torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
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
    config: SisaConfig,
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
            jobs = [Job(data[s], (task.seed, step_label(config, s, step)), deleted) for s in active]
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


class Sisa:
    """SISA training (``fit``) and unlearning by retraining affected shards (``unlearn``)."""

    def __init__(self, config: SisaConfig) -> None:
        self.config = config

    def use_stacked(self, task: Task) -> bool:
        """Resolve ``stacked`` for this task's architecture and device."""
        mode = self.config.stacked
        if mode == "off" or (mode == "auto" and self.config.shards < 2):
            return False
        probe = task.new_model(init_label(self.config, 0))
        if mode == "on":
            reason = stacking_unsupported(probe)
            if reason is not None:
                raise ParamError(f"stacked: 'on' cannot train this architecture stacked: {reason}")
            return True
        return stacking_pays(probe, task.device)

    def fit(self, task: Task, ctx: MethodContext) -> SisaState:
        config = self.config
        stacked = self.use_stacked(task)
        layout = make_layout(task, config)

        def build() -> dict[str, Any]:
            models = {s: task.new_model(init_label(config, s)) for s in range(config.shards)}
            start = dict.fromkeys(range(config.shards), 0)
            none = task.splits.target.new_empty(0)
            ckpts, sample_epochs, _ = train_shards(
                task, ctx, config, layout, models, start, none, stacked=stacked
            )
            return {
                "checkpoints": [ckpts[s] for s in range(config.shards)],
                "sample_epochs": sample_epochs,
            }

        value = ctx.cached("sisa", self.procedure(task, stacked), build)
        checkpoints = [list(c) for c in value["checkpoints"]]
        template = task.new_model(init_label(config, 0))
        models = []
        for shard_checkpoints in checkpoints:
            model = copy.deepcopy(template)
            model.load_state_dict(shard_checkpoints[-1])
            models.append(model.eval())
        shard_of, slice_of = _owners(task, layout)
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
        config = self.config
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
            s: state.load(s, r - 1) if r > 0 else task.new_model(init_label(config, s))
            for s, r in start.items()
        }
        fresh, sample_epochs, steps_run = train_shards(
            task, ctx, config, state.layout, models, start, deleted, stacked=state.stacked
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
            "storage_bytes": float(checkpoint_bytes * config.shards * config.slices),
            "prediction_cost": float(len(ensemble.members)),
        }
        return Unlearned(model=ensemble, state=new_state, costs=costs)

    def procedure(self, task: Task, stacked: bool) -> dict[str, Any]:
        """What SISA's training depends on (the cache key of ``fit`` and ``naive``):
        not ``aggregation``, which only combines the trained models."""
        config = self.config
        return {
            "shards": config.shards,
            "slices": config.slices,
            "epochs": config.epochs or task.recipe.epochs,
            "partition": config.partition,
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
        config = self.config
        removed = torch.unique(torch.cat([state.deleted, forget.to(task.device)]))
        key = {
            **self.procedure(task, state.stacked),
            "without": hashlib.sha256(removed.cpu().numpy().tobytes()).hexdigest(),
        }

        def build() -> dict[str, Any]:
            models = {s: task.new_model(init_label(config, s)) for s in range(config.shards)}
            start = dict.fromkeys(range(config.shards), 0)
            ckpts, _, _ = train_shards(
                task, ctx, config, state.layout, models, start, removed, stacked=state.stacked
            )
            return {"weights": [ckpts[s][-1] for s in range(config.shards)]}

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
        return ShardEnsemble(members, task.num_classes, self.config.aggregation)


def create(params: Mapping[str, Any]) -> Sisa:
    return Sisa(SisaConfig(**resolve_params(PARAMS, params)))


def check_sizes(params: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Before training: every shard needs a point and each of its slices too
    (shards differ in size by at most one, so the smallest has target // S)."""
    shards, slices, target = params["shards"], params["slices"], sizes["target"]
    if shards > target:
        raise ParamError(f"shards: {shards} shards exceed the {target} target points")
    if shards >= 1 and slices > target // shards:
        raise ParamError(
            f"slices: {slices} slices exceed the {target // shards} points of the smallest "
            f"of {shards} shards of {target} target points"
        )


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="sisa",
            create=create,
            params=PARAMS,
            check=check_sizes,
            description=(
                "SISA (Bourtoule et al. 2021): S shard models trained over R slices with a "
                "checkpoint per slice; deletion retrains affected shards from the first "
                "affected slice; majority vote (or mean posterior) over shards."
            ),
        )
    ]
