"""The protocol's task: data, disjoint splits, forget request, recipe and seed.

A task is (dataset, architecture, training recipe, forget request, seed). From
the dataset's pool it derives, deterministically from the seed, disjoint index
sets: ``target`` (what the model trains on), ``forget`` ⊂ target, ``retain`` =
target − forget, ``nonmember`` (held-out points of the same distribution),
``test``, ``shadow_in`` / ``shadow_out`` for shadow-model attacks, and
``auxiliary``: held-out data a *method* may use (GAN unlearning's third-party
non-member posteriors), which no evaluator reads, so a method never trains on
the points the attacks then score it on.

The plain, validated values a suite gives (recipe, split sizes, forget
request) are in :mod:`unlearnbench.task_values`; ``MethodContext`` is in
:mod:`unlearnbench.specs`. Both are re-exported here for existing imports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unlearnbench.partition import block_of, label_balanced_blocks
from unlearnbench.seeding import derive_seed, generator, seed_torch
from unlearnbench.specs import MethodContext
from unlearnbench.task_values import (
    REQUEST_KINDS,
    SPLIT_NAMES,
    ForgetRequest,
    RequestKind,
    SplitSizes,
    TaskError,
    TrainRecipe,
)

__all__ = [  # the plain values live in unlearnbench.task_values; re-exported for plugins
    "REQUEST_KINDS",
    "SPLIT_NAMES",
    "Backdoor",
    "ForgetRequest",
    "MethodContext",
    "RequestKind",
    "SplitSizes",
    "Splits",
    "Task",
    "TaskError",
    "TrainRecipe",
    "build_splits",
    "build_task",
    "default_trigger_size",
    "select_forget",
]


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
    target: torch.Tensor, y: torch.Tensor, request: ForgetRequest, seed: int, repeat: int = 0
) -> torch.Tensor:
    """The forget set of ``request`` (a subset of ``target``), deterministic for ``seed``.

    ``repeat`` ``r`` of a request with ``repeats`` = N takes the ``r``-th of N
    disjoint slices of the one seeded permutation the plain request draws from:
    repeat 0 is the plain request's forget set, and no two repeats share a
    point (independent draws would: 50 single points from 3,000 collide with
    probability 1/3). Each slice alone is a uniform random draw. Raises
    :class:`TaskError` when the eligible points cannot fill N slices.
    """
    if not 0 <= repeat < request.repeats:
        raise TaskError(f"repeat {repeat} is not one of the request's {request.repeats} repeats")
    candidates = target
    if request.position >= 0:
        if request.blocks > target.numel():
            raise TaskError(
                f"request.blocks={request.blocks} exceeds the {target.numel()} target points"
            )
        parts = label_balanced_blocks(target, y, request.blocks, seed)
        first = block_of(request.position, request.blocks)
        candidates = parts[first]
        if request.kind == "random" and request.count > candidates.numel():
            if request.repeats > 1:
                raise TaskError(
                    f"request.repeats={request.repeats} needs count <= the {candidates.numel()} "
                    "points of the block at position (a larger count fills whole consecutive "
                    "blocks, the same points for every repeat)"
                )
            return _consecutive_blocks(parts, first, request.count, seed)
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
            perm = torch.randperm(chosen.numel(), generator=generator(seed, "cls"))
            chosen = chosen[_repeat_slice(perm, keep, request, repeat, f"class {request.label}")]
        return chosen
    if request.kind == "backdoor":
        candidates = candidates[y[candidates] != request.target_class]
    count = request.count or max(1, int(request.fraction * target.numel()))
    where = "the chosen block" if request.position >= 0 else "the target set"
    if count > candidates.numel():
        raise TaskError(
            f"request asks to forget {count} points but {where} has only {candidates.numel()}"
            + (" eligible (not of target_class)" if request.kind == "backdoor" else "")
        )
    perm = torch.randperm(candidates.numel(), generator=generator(seed, "forget"))
    return candidates[_repeat_slice(perm, count, request, repeat, where)]


def _repeat_slice(
    perm: torch.Tensor, count: int, request: ForgetRequest, repeat: int, where: str
) -> torch.Tensor:
    """Slice ``repeat`` of ``count`` of ``perm`` (``perm[:count]`` without repeats),
    refused when ``perm`` cannot fill all of the request's repeats."""
    need = count * request.repeats
    if need > perm.numel():
        raise TaskError(
            f"request.repeats={request.repeats} x {count} points needs {need} distinct points "
            f"(no two repeats share one) but {where} has only {perm.numel()} eligible"
        )
    return perm[repeat * count : (repeat + 1) * count]


def _consecutive_blocks(
    parts: list[torch.Tensor], first: int, count: int, seed: int
) -> torch.Tensor:
    """``count`` points filling blocks ``first``, ``first + 1``, ... in order: every
    point of each full block, then a seeded random part of the last one (DeepObliviate's
    Fig. 6: "the unlearned data starts from the 100th position consecutively")."""
    chosen: list[torch.Tensor] = []
    left = count
    for block in parts[first:]:
        if left <= 0:
            break
        if block.numel() <= left:
            chosen.append(block)
        else:
            perm = torch.randperm(block.numel(), generator=generator(seed, "forget"))
            chosen.append(block[perm[:left]])
        left -= int(chosen[-1].numel())
    if left > 0:
        raise TaskError(
            f"request asks to forget {count} points from block {first} on, but blocks "
            f"{first}..{len(parts) - 1} hold only {count - left}"
        )
    return torch.cat(chosen).clone()


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
    repeat: int = 0,
) -> Task:
    """Derive the splits and forget set, stamp backdoors, move data to ``device``.

    ``repeat``: which of the request's ``repeats`` forget sets (see
    :func:`select_forget`); everything else (splits, seed, models) is the same
    for every repeat."""
    parts = build_splits(int(y.numel()), sizes, seed)
    forget = select_forget(parts["target"], y, request, seed, repeat)
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
