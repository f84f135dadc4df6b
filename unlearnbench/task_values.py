"""The plain values a suite gives a task: recipe, split sizes, forget request.

Each is a frozen dataclass validated on construction, so a bad value is
refused with the key that names it (``train.lr``) before anything trains. This
module imports no torch: the suite reader, the planner and the plugin-facing
task all use it, and :mod:`unlearnbench.task` re-exports its names.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from unlearnbench.specs import UnlearnbenchError

OPTIMIZER_IMPLS = ("auto", "foreach", "for_loop", "fused")
"""How ``torch.optim`` steps the parameters (``TrainRecipe.optimizer_impl``, and
:func:`unlearnbench.training.make_optimizer`'s ``impl``): ``foreach`` (one
multi-tensor kernel per operation), ``for_loop`` (one tensor at a time, what torch
picks on the CPU when nothing is said), ``fused`` (one fused kernel per step), or
``auto`` (:data:`unlearnbench.training.DEFAULT_IMPLS`)."""
SPLIT_NAMES = ("target", "nonmember", "test", "shadow_in", "shadow_out", "auxiliary")
RequestKind = Literal["random", "class", "block", "backdoor"]
REQUEST_KINDS: tuple[str, ...] = ("random", "class", "block", "backdoor")


REPEAT_REFUSALS: dict[str, str] = {
    "block": (
        "it deletes the whole block at position, so every repeat would delete the same "
        "points; use a random request with position and count instead"
    ),
    "class": (
        "it deletes every target point of the class, so every repeat would delete the same "
        "points; set fraction to delete a random part of the class"
    ),
    "backdoor": (
        "its forget set is the poisoned points the original model is trained on, so each "
        "repeat would need an original model of its own; add seeds instead"
    ),
}
"""Why ``repeats`` > 1 is refused for a request kind (a ``class`` request with a
``fraction`` is drawn at random and may repeat)."""


class TaskError(UnlearnbenchError, ValueError):
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
    ``optimizer_impl``: how ``torch.optim`` steps the parameters (one of
    :data:`OPTIMIZER_IMPLS`; ``"auto"``: foreach Adam, for-loop SGD, the
    implementations whose results are bit for bit torch's default). ``"fused"``
    Adam is faster on the CPU but rounds differently, so it moves every trained
    model by float rounding: opt-in, and part of the training identity (cache
    keys, cell ids) only when it is not ``"auto"`` (:func:`recipe_ident`).
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    amp: bool = False
    channels_last: bool = False
    optimizer_impl: str = "auto"

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
        if self.optimizer_impl not in OPTIMIZER_IMPLS:
            raise _field_error(
                "train",
                "optimizer_impl",
                f"must be one of {', '.join(OPTIMIZER_IMPLS)}, got {self.optimizer_impl!r}",
            )


def recipe_ident(recipe: TrainRecipe) -> dict[str, Any]:
    """What of ``recipe`` identifies a training (cache keys, cell ids): its fields,
    less ``optimizer_impl`` at ``"auto"``, so recipes written before that field
    existed keep their keys (and their committed cells and cached models)."""
    ident = asdict(recipe)
    if recipe.optimizer_impl == "auto":
        del ident["optimizer_impl"]
    return ident


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

    def count(self, name: str, pool: int) -> int:
        """The number of points of split ``name`` in a pool of ``pool`` points: a count
        as given, a fraction of the pool truncated."""
        value = getattr(self, name)
        return int(value * pool) if isinstance(value, float) else int(value)

    def counts(self, pool: int) -> dict[str, int]:
        """The number of points of each split in a pool of ``pool`` points."""
        counts = {name: self.count(name, pool) for name in SPLIT_NAMES}
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
      the target set when ``position`` is given; a ``count`` larger than that
      block fills consecutive blocks from it on (whole blocks, then a random
      part of the last), as DeepObliviate's Fig. 6 deletes 600 points "from
      the 100th position consecutively".
    - ``class``: every target point of ``label`` (or a ``fraction`` of them).
    - ``block``: the whole block at ``position`` of ``blocks``.
    - ``backdoor``: ``count`` target points (not of ``target_class``) get a
      trigger and the label ``target_class`` before training; they are then
      forgotten. ``trigger_size`` 0 picks a size from the input shape.

    ``steps`` > 1 makes a stream: the forget set is split into that many
    deletions, executed in sequence.

    ``repeats`` = N > 1 runs N independent deletions of this kind and size,
    each from the same trained original (not a stream): repeat ``r`` deletes
    the ``r``-th of N disjoint draws from one seeded permutation, so repeat 0
    deletes exactly the plain request's points and no two repeats share one.
    Only requests whose forget set is drawn at random can repeat (``random``,
    and ``class`` with a ``fraction``); see :data:`REPEAT_REFUSALS`.
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
    repeats: int = 1

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
        self._check_repeats()

    def _check_repeats(self) -> None:
        """``repeats`` is an integer >= 1, and > 1 only where each repeat can draw
        another forget set (see :data:`REPEAT_REFUSALS`)."""
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise TaskError(
                f"request.repeats must be an integer >= 1, got {self.repeats!r}",
                field="repeats",
                detail=f"must be an integer >= 1, got {self.repeats!r}",
            )
        if self.repeats == 1:
            return
        why = REPEAT_REFUSALS.get(self.kind)
        if self.kind == "class" and self.fraction:
            why = None  # a random part of the class: drawn again for each repeat
        if why:
            detail = f"must be 1 for a {self.kind} request, not {self.repeats}: {why}"
            raise TaskError(f"request.repeats {detail}", field="repeats", detail=detail)

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
        if self.repeats > 1:
            text += f" ×{self.repeats}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The request's fields; ``repeats`` only when > 1, so the configuration (and
        every key hashed from it) of a request without repeats is as it always was."""
        out = asdict(self)
        if self.repeats == 1:
            del out["repeats"]
        return out
