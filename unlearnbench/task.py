"""The protocol's task: data, disjoint splits, forget request, recipe and seed.

A task is (dataset, architecture, training recipe, forget request, seed). From
the dataset's pool it derives, deterministically from the seed, disjoint index
sets: ``target`` (what the model trains on), ``forget`` ⊂ target, ``retain`` =
target − forget, ``nonmember`` (held-out points of the same distribution),
``test``, ``shadow_in`` / ``shadow_out`` for shadow-model attacks, and
``auxiliary``: held-out data a *method* may use (GAN unlearning's third-party
non-member posteriors), which no evaluator reads, so a method never trains on
the points the attacks then score it on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import torch
from torch import nn

from unlearnbench.partition import block_of, label_balanced_blocks
from unlearnbench.seeding import derive_seed, generator, seed_torch

if TYPE_CHECKING:
    from unlearnbench.training import TrainStats

SPLIT_NAMES = ("target", "nonmember", "test", "shadow_in", "shadow_out", "auxiliary")
RequestKind = Literal["random", "class", "block", "backdoor"]
REQUEST_KINDS: tuple[str, ...] = ("random", "class", "block", "backdoor")


class TaskError(ValueError):
    """Split sizes, a recipe or a forget request that is invalid or that the data
    cannot satisfy. ``field`` names the offending field when there is one (the
    suite reader turns it into the key, ``train.lr``) and ``detail`` is the
    message without the field's name."""

    def __init__(self, message: str, field: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.detail = detail or message


def _field_error(section: str, name: str, detail: str) -> TaskError:
    return TaskError(f"{section}.{name} {detail}", field=name, detail=detail)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrainRecipe:
    """How every model of a task is trained (the original, retrain, shadows).

    ``amp``: mixed precision in :func:`unlearnbench.training.train_model`. On
    CUDA the forward pass runs under ``torch.autocast`` (float16) with a
    ``GradScaler``; on CPU it runs under bfloat16 autocast (no scaler needed).
    Prediction stays float32 so evaluators compare exact posteriors.
    ``channels_last``: image models and batches use the NHWC memory format
    (faster convolutions on tensor-core GPUs); ignored for non-image inputs.
    Both default off, which keeps the plain float32 loop.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    amp: bool = False
    channels_last: bool = False

    def __post_init__(self) -> None:
        """Every value a suite can give, checked before anything trains: counts are
        integers >= 1, rates finite (``nan`` or ``inf`` would only surface as a
        failed cell, or a silently broken model, after training started)."""
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise _field_error("train", name, f"must be an integer >= 1, got {value!r}")
        bounds = {
            "lr": ("a finite number > 0", lambda v: v > 0),
            "momentum": ("a finite number in [0, 1)", lambda v: 0 <= v < 1),
            "weight_decay": ("a finite number >= 0", lambda v: v >= 0),
        }
        for name, (text, ok) in bounds.items():
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or not ok(value):
                raise _field_error("train", name, f"must be {text}, got {value!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise _field_error(
                "train", "optimizer", f"must be 'adam' or 'sgd', got {self.optimizer!r}"
            )


@dataclass(frozen=True)
class SplitSizes:
    """Size of each split: a fraction of the pool (float < 1) or a count (int).

    The shadow model is trained on as many points as the target model, as in
    ML-Leaks (Salem et al. 2019), so by default ``shadow_in`` equals
    ``target``; :meth:`warnings` says when a suite sets them apart.
    """

    target: float | int = 0.3
    nonmember: float | int = 0.1
    test: float | int = 0.15
    shadow_in: float | int = 0.3
    shadow_out: float | int = 0.1
    auxiliary: float | int = 0.05

    def warnings(self) -> list[str]:
        """Sizes that are allowed but weaken a measurement."""
        if self.shadow_in and self.shadow_in != self.target:
            return [
                f"splits.shadow_in ({self.shadow_in}) differs from splits.target "
                f"({self.target}): ML-Leaks trains the shadow model on as many points as the "
                "target model, and a smaller shadow overfits less, which weakens the attack"
            ]
        return []

    def __post_init__(self) -> None:
        """Each size is a count >= 0 or a finite fraction in [0, 1), whatever the pool."""
        for name in SPLIT_NAMES:
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise _field_error(
                    "splits", name, f"must be a count or fraction >= 0, got {value!r}"
                )
            if isinstance(value, float) and value >= 1.0:
                raise _field_error("splits", name, f"as a fraction must be < 1, got {value!r}")

    def counts(self, pool: int) -> dict[str, int]:
        """The number of points of each split in a pool of ``pool`` points."""
        counts = {}
        for name in SPLIT_NAMES:
            value = getattr(self, name)
            if isinstance(value, float):
                counts[name] = int(value * pool)
            else:
                counts[name] = int(value)
        if counts["target"] < 2 or counts["test"] < 1:
            raise TaskError("splits.target needs at least 2 points and splits.test at least 1")
        total = sum(counts.values())
        if total > pool:
            detail = ", ".join(f"{k}={v}" for k, v in counts.items())
            raise TaskError(f"splits need {total} points ({detail}) but the data set has {pool}")
        return counts


@dataclass(frozen=True)
class ForgetRequest:
    """What to delete.

    - ``random``: ``count`` points (or ``fraction`` of target) drawn at random,
      from block ``position`` of a ``blocks``-way label-balanced partition of
      the target set when ``position`` is given.
    - ``class``: every target point of ``label`` (or a ``fraction`` of them).
    - ``block``: the whole block at ``position`` of ``blocks``.
    - ``backdoor``: ``count`` target points (not of ``target_class``) get a
      trigger and the label ``target_class`` before training; they are then
      forgotten. ``trigger_size`` 0 picks a size from the input shape.

    ``steps`` > 1 makes a stream: the forget set is split into that many
    deletions, executed in sequence.
    """

    kind: RequestKind = "random"
    count: int = 0
    fraction: float = 0.0
    label: int = -1
    position: float = -1.0
    blocks: int = 0
    steps: int = 1
    target_class: int = 0
    trigger_size: int = 0

    def __post_init__(self) -> None:
        if self.kind not in REQUEST_KINDS:
            raise TaskError(f"request kind must be one of {list(REQUEST_KINDS)}, got {self.kind!r}")
        if self.count < 0 or not 0.0 <= self.fraction <= 1.0:
            raise TaskError("request count must be >= 0 and fraction in [0, 1]")
        if self.kind in ("random", "backdoor") and (self.count > 0) == (self.fraction > 0):
            raise TaskError(f"a {self.kind} request needs exactly one of count or fraction")
        if self.kind == "class" and self.label < 0:
            raise TaskError("a class request needs label >= 0")
        if self.kind == "block" and self.position < 0:
            raise TaskError("a block request needs position (in [0, 1]) and blocks")
        if self.position >= 0 and (self.blocks < 1 or self.position > 1):
            raise TaskError("position must be in [0, 1] and comes with blocks >= 1")
        if self.steps < 1:
            raise TaskError("request steps must be >= 1")

    @property
    def label_text(self) -> str:
        """A short readable name, for leaderboards: ``random:10@0.5/100x2``."""
        if self.kind == "class":
            text = f"class:{self.label}" + (f"({self.fraction:g})" if self.fraction else "")
        elif self.kind == "block":
            text = "block"
        else:
            size = str(self.count) if self.count else f"{self.fraction:g}"
            text = f"{self.kind}:{size}"
            if self.kind == "backdoor":
                text += f"→{self.target_class}" + (
                    f"/t{self.trigger_size}" if self.trigger_size else ""
                )
        if self.position >= 0:
            text += f"@{self.position:g}/{self.blocks}"
        if self.steps > 1:
            text += f"x{self.steps}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Splits:
    """Disjoint index sets into the task's pool (``task.x``, ``task.y``)."""

    target: torch.Tensor
    forget: torch.Tensor
    retain: torch.Tensor
    nonmember: torch.Tensor
    test: torch.Tensor
    shadow_in: torch.Tensor
    shadow_out: torch.Tensor
    auxiliary: torch.Tensor

    def sizes(self) -> dict[str, int]:
        return {k: int(v.numel()) for k, v in vars(self).items()}


@dataclass(frozen=True)
class Backdoor:
    """A trigger stamped on inputs, and the class it makes the model predict."""

    target_class: int
    trigger_size: int
    value: float

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Return a copy of the batch ``x`` with the trigger stamped on.

        Images ``(n, C, H, W)``: a ``size``x``size`` patch in the bottom-right
        corner set to ``value`` (the data's maximum). 1-D or flat inputs: the
        last ``size`` entries set to an alternating ``value``/``-value`` pattern.
        """
        out = x.clone()
        s = self.trigger_size
        if out.dim() == 4:
            out[:, :, -s:, -s:] = self.value
        else:
            flat = out.reshape(out.shape[0], -1)
            pattern = torch.full((s,), self.value, dtype=out.dtype, device=out.device)
            pattern[1::2] = -self.value
            flat[:, -s:] = pattern
            out = flat.reshape(out.shape)
        return out


def default_trigger_size(input_shape: tuple[int, ...]) -> int:
    """5x5 for images of 20+ pixels a side (the seeds' choice), 3 for smaller, 4 entries for 1-D."""
    if len(input_shape) == 3:
        return 5 if min(input_shape[1:]) >= 20 else 3
    return 4


class MethodContext(Protocol):
    """What the host offers methods and evaluators while they run a task.

    - ``device``: where the task's tensors live.
    - ``original()``: a fresh copy of the task's standard trained model (trained
      once per task on ``target`` with the recipe and seed, cached).
    - ``train(model, indices, ...)``: the shared training loop on the task data.
    - ``cached(name, params, build)``: a content-addressed artifact for this
      task; ``build()`` returns a dict of tensors and plain values and runs only
      when no valid cached copy exists. The work its build counted travels
      with it: loading it counts that work again.
    - ``add_work(sample_passes)``: count work done outside ``ctx.train`` (one
      sample-pass = one forward and backward pass of one example), so every
      method's cost is also known in a machine-independent unit.
    """

    device: torch.device

    def add_work(self, sample_passes: float) -> None: ...

    def original(self) -> nn.Module: ...

    def train(
        self,
        model: nn.Module,
        indices: torch.Tensor,
        *,
        seed_label: object = "train",
        epochs: int | None = None,
        exclude: torch.Tensor | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        labels: torch.Tensor | None = None,
    ) -> TrainStats: ...

    def cached(
        self, name: str, params: Mapping[str, Any], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]: ...


@dataclass
class Task:
    """One protocol task, with its data on ``device``."""

    key: str
    train_key: str
    dataset: str
    architecture: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    splits: Splits
    forget_steps: list[torch.Tensor]
    recipe: TrainRecipe
    seed: int
    request: ForgetRequest
    device: torch.device
    build_model: Callable[[], nn.Module]
    backdoor: Backdoor | None = None
    config: dict[str, Any] = field(default_factory=dict)
    partition_labels: torch.Tensor | None = None

    @property
    def clean_y(self) -> torch.Tensor:
        """Labels before any backdoor relabelling. Partitions of the target set
        (DeepObliviate's blocks, SISA's shards, a request's ``position``) are
        computed from these, so they agree on backdoor tasks too."""
        return self.y if self.partition_labels is None else self.partition_labels

    def new_model(self, label: object = "init") -> nn.Module:
        """A freshly initialised model; the same ``label`` gives the same weights.

        ``"init"`` is the initialisation the original model and retrain share.
        """
        with torch.random.fork_rng(devices=[]):
            seed_torch(derive_seed(self.seed, "model", label))  # models are built on CPU
            model = self.build_model()
        return model.to(self.device)


def build_splits(pool_size: int, sizes: SplitSizes, seed: int) -> dict[str, torch.Tensor]:
    """Disjoint index sets drawn from a seeded permutation of the pool."""
    counts = sizes.counts(pool_size)
    perm = torch.randperm(pool_size, generator=generator(seed, "splits"))
    out, start = {}, 0
    for name in SPLIT_NAMES:
        out[name] = perm[start : start + counts[name]].clone()
        start += counts[name]
    return out


def select_forget(
    target: torch.Tensor, y: torch.Tensor, request: ForgetRequest, seed: int
) -> torch.Tensor:
    """The forget set of ``request`` (a subset of ``target``), deterministic for ``seed``."""
    candidates = target
    if request.position >= 0:
        if request.blocks > target.numel():
            raise TaskError(
                f"request.blocks={request.blocks} exceeds the {target.numel()} target points"
            )
        parts = label_balanced_blocks(target, y, request.blocks, seed)
        candidates = parts[block_of(request.position, request.blocks)]
    if request.kind == "block":
        return candidates.clone()
    if request.kind == "class":
        if request.label >= int(y.max()) + 1:
            raise TaskError(f"request.label={request.label} is not a class of this data set")
        chosen = candidates[y[candidates] == request.label]
        if chosen.numel() == 0:
            raise TaskError(f"the target set holds no point of class {request.label}")
        if request.fraction:
            keep = max(1, int(request.fraction * chosen.numel()))
            chosen = chosen[torch.randperm(chosen.numel(), generator=generator(seed, "cls"))[:keep]]
        return chosen
    if request.kind == "backdoor":
        candidates = candidates[y[candidates] != request.target_class]
    count = request.count or max(1, int(request.fraction * target.numel()))
    if count > candidates.numel():
        where = "the chosen block" if request.position >= 0 else "the target set"
        raise TaskError(
            f"request asks to forget {count} points but {where} has only {candidates.numel()}"
            + (" eligible (not of target_class)" if request.kind == "backdoor" else "")
        )
    perm = torch.randperm(candidates.numel(), generator=generator(seed, "forget"))
    return candidates[perm[:count]]


def build_task(
    *,
    dataset: str,
    architecture: str,
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    input_shape: tuple[int, ...],
    build_model: Callable[[], nn.Module],
    sizes: SplitSizes,
    request: ForgetRequest,
    recipe: TrainRecipe,
    seed: int,
    device: torch.device,
    key: str,
    train_key: str,
    config: dict[str, Any] | None = None,
) -> Task:
    """Derive the splits and forget set, stamp backdoors, move data to ``device``."""
    parts = build_splits(int(y.numel()), sizes, seed)
    forget = select_forget(parts["target"], y, request, seed)
    backdoor = None
    clean_y = y.to(device)
    if request.kind == "backdoor":
        if not 0 <= request.target_class < num_classes:
            raise TaskError(f"request.target_class={request.target_class} is not a class")
        size = request.trigger_size or default_trigger_size(input_shape)
        backdoor = Backdoor(request.target_class, size, float(x.max()))
        x = x.clone()
        y = y.clone()
        x[forget] = backdoor.apply(x[forget])
        y[forget] = request.target_class
    retain = parts["target"][~torch.isin(parts["target"], forget)]
    if request.steps > forget.numel():
        raise TaskError(f"request.steps={request.steps} exceeds the {forget.numel()} forget points")
    order = forget[torch.randperm(forget.numel(), generator=generator(seed, "stream"))]
    steps = [chunk.to(device) for chunk in torch.tensor_split(order, request.steps)]
    splits = Splits(
        target=parts["target"].to(device),
        forget=forget.to(device),
        retain=retain.to(device),
        nonmember=parts["nonmember"].to(device),
        test=parts["test"].to(device),
        shadow_in=parts["shadow_in"].to(device),
        shadow_out=parts["shadow_out"].to(device),
        auxiliary=parts["auxiliary"].to(device),
    )
    return Task(
        key=key,
        train_key=train_key,
        dataset=dataset,
        architecture=architecture,
        x=x.to(device),
        y=y.to(device),
        num_classes=num_classes,
        input_shape=tuple(input_shape),
        splits=splits,
        forget_steps=steps,
        recipe=recipe,
        seed=seed,
        request=request,
        device=device,
        build_model=build_model,
        backdoor=backdoor,
        config=config or {},
        partition_labels=clean_y,
    )
