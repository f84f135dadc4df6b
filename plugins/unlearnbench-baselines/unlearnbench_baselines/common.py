"""What every post-hoc baseline shares: the state over a request stream, the
optimiser, seeded batches, and the cost counters.

Post-hoc methods never retrain from scratch: ``fit`` fetches the task's shared
trained model (``ctx.original()``) and ``unlearn`` edits a copy of the current
model. Over a request stream the state carries the edited model and every index
deleted so far, so the retain set of step ``k`` is the target set minus all
deletions up to and including step ``k``, and the forget set of step ``k`` is
only that step's deletion.

Every random choice (batch order, dropout, random labels) is drawn from a seed
derived from ``(task.seed, method name, step)``: the same task gives the same
model on every run.

``PostHocMethod`` is the methods' base class (parameter checks, ``fit``, one
fresh step per deletion); ``EpochLoop`` owns a deletion's optimiser, epoch
loop, divergence check and cost counters, and ``descend_each_batch`` is that
loop with one step per batch of a single set on a per-batch loss.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from unlearnbench import Param, Unlearned
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task
from unlearnbench.training import TrainingDiverged, epoch_order, make_optimizer

OPTIMIZERS = ("sgd", "adam")


@dataclass
class StreamState:
    """The model after the deletions so far, and the indices they removed."""

    model: nn.Module
    removed: torch.Tensor
    steps: int = 0


@dataclass
class UnlearnStep:
    """One deletion of a stream: a fresh copy of the model to edit and its data."""

    model: nn.Module
    forget: torch.Tensor
    retain: torch.Tensor
    removed: torch.Tensor
    seed: tuple[Any, ...]
    index: int
    work: float = 0.0  # sample-passes (forward + backward of one example) spent on this step


def fit_original(task: Task, ctx: MethodContext) -> StreamState:
    """The shared trained model, with nothing removed yet (never looks at forget)."""
    return StreamState(model=ctx.original(), removed=task.splits.target.new_empty(0))


def begin_step(state: StreamState, forget: torch.Tensor, task: Task, method: str) -> UnlearnStep:
    """Copy the current model and derive this deletion's forget and retain sets."""
    if forget.numel() == 0:
        raise ValueError(f"{method}: the forget set of a deletion is empty")
    forget = forget.to(task.device)
    removed = torch.cat([state.removed.to(task.device), forget])
    target = task.splits.target
    retain = target[~torch.isin(target, removed)]
    model = copy.deepcopy(state.model).to(task.device)
    return UnlearnStep(
        model=model,
        forget=forget,
        retain=retain,
        removed=removed,
        seed=(task.seed, method, state.steps),
        index=state.steps,
    )


def finish_step(
    step: UnlearnStep,
    *,
    retain_passes: int,
    forget_passes: int,
    series: Mapping[str, list[float]] | None = None,
) -> Unlearned:
    """Wrap the edited model with its cost counters and the next step's state.

    ``retrain_sample_epochs`` counts every training example processed while
    unlearning (examples x epochs, retain and forget passes together), the
    host's machine-independent unit of work, which retrain reports too;
    ``forget_sample_epochs`` is the share spent on the forget set. Teacher
    forward passes (SCRUB), the saliency gradient (SalUn) and the FGSM probe
    (Boundary Shrink) are not in these counters; the latter two, each a
    forward and backward pass, are in ``step.work`` (the host's sample-passes).
    Post-hoc methods keep nothing but the model: ``storage_bytes`` 0,
    ``prediction_cost`` 1.
    """
    step.model.eval()
    return Unlearned(
        model=step.model,
        state=StreamState(step.model, step.removed, step.index + 1),
        costs={
            "retrain_sample_epochs": float(retain_passes + forget_passes),
            "forget_sample_epochs": float(forget_passes),
            "storage_bytes": 0.0,
            "prediction_cost": 1.0,
        },
        series={k: list(v) for k, v in (series or {}).items()},
    )


def optimizer_params(
    *, lr: float, epochs: int, optimizer: str, momentum: float, weight_decay: float, source: str
) -> tuple[Param, ...]:
    """The optimiser parameters every method declares, with its own defaults."""
    return (
        Param(
            "epochs",
            epochs,
            f"unlearning epochs ({source}); tuned over [1, 2 x default]",
            minimum=0,
            tunable=True,
            search_range=(1, max(2, 2 * epochs)),
        ),
        Param(
            "lr",
            lr,
            f"learning rate ({source}); tuned on a log scale over [default / 30, default x 10]",
            minimum=0.0,
            exclusive_minimum=True,
            tunable=True,
            log=True,
            search_range=(lr / 30, lr * 10),
        ),
        Param("optimizer", optimizer, f"optimiser ({source})", choices=OPTIMIZERS),
        Param(
            "momentum",
            momentum,
            f"SGD momentum ({source})",
            minimum=0.0,
            maximum=1.0,
            exclusive_maximum=True,
        ),
        Param("weight_decay", weight_decay, f"L2 weight decay ({source})", minimum=0.0),
    )


def build_optimizer(
    model: nn.Module, task: Task, params: Mapping[str, Any]
) -> torch.optim.Optimizer:
    """The shared ``make_optimizer`` with the method's optimiser settings."""
    recipe = dataclasses.replace(
        task.recipe,
        optimizer=params["optimizer"],
        lr=params["lr"],
        momentum=params["momentum"],
        weight_decay=params["weight_decay"],
    )
    return make_optimizer(model.parameters(), recipe)


def batches(
    indices: torch.Tensor, seed: object, epoch: int, batch_size: int
) -> Iterator[torch.Tensor]:
    """Index batches of one epoch, in the shared loop's seeded order.

    Seeds the global generator per epoch too (dropout), as ``train_model`` does.
    """
    torch.manual_seed(derive_seed(seed, "noise", epoch))
    order = epoch_order(indices, seed, epoch)
    for begin in range(0, order.numel(), batch_size):
        yield order[begin : begin + batch_size]


def check_finite(total: torch.Tensor, method: str, epoch: int, lr: float) -> None:
    """Raise ``TrainingDiverged`` naming the method and its ``lr`` on a NaN/inf loss."""
    if not bool(torch.isfinite(total)):
        raise TrainingDiverged(
            f"{method}: the loss of unlearning epoch {epoch + 1} is {float(total)}; "
            f"lower the learning rate (lr={lr})"
        )


def random_labels(
    count: int, true: torch.Tensor, num_classes: int, seed: object, exclude_true: bool
) -> torch.Tensor:
    """Uniform random labels, drawn on CPU from ``seed`` and moved to ``true``'s device.

    With ``exclude_true`` a label is never the true one (uniform over the others).
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(seed, "random-labels"))
    if exclude_true:
        shift = torch.randint(1, num_classes, (count,), generator=gen).to(true.device)
        return (true + shift) % num_classes
    return torch.randint(0, num_classes, (count,), generator=gen).to(true.device)


class EpochLoop:
    """The optimiser, the epoch loop and the cost counters of one deletion.

    ``epochs()`` puts the model in training mode and yields the epoch numbers
    (from 0); after each epoch it raises ``TrainingDiverged`` if the epoch's
    loss ``total`` is not finite. ``descend`` takes one optimiser step and
    counts the retain and forget examples it saw; ``finish`` wraps the model
    with those counts.
    """

    def __init__(
        self, step: UnlearnStep, task: Task, params: Mapping[str, Any], method: str
    ) -> None:
        self.step, self.task, self.params, self.method = step, task, params, method
        self.model = step.model
        self.opt = build_optimizer(step.model, task, params)
        self.total = torch.zeros((), device=task.device)
        self.retain_passes = 0
        self.forget_passes = 0

    def epochs(self) -> Iterator[int]:
        self.model.train()
        for epoch in range(self.params["epochs"]):
            self.total = torch.zeros((), device=self.task.device)
            yield epoch
            check_finite(self.total, self.method, epoch, self.params["lr"])

    def update(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def descend(
        self, loss: torch.Tensor, *, retain: int = 0, forget: int = 0, weighted: bool = True
    ) -> None:
        """Step on ``loss`` of a batch of ``retain`` + ``forget`` examples; the
        epoch total adds the loss times that count (``weighted``) or the loss."""
        self.update(loss)
        self.step.work += retain + forget
        if weighted:
            self.total += loss.detach() * (retain + forget)
        else:
            self.total += loss.detach()
        self.retain_passes += retain
        self.forget_passes += forget

    def finish(self) -> Unlearned:
        return finish_step(
            self.step, retain_passes=self.retain_passes, forget_passes=self.forget_passes
        )


def descend_each_batch(
    step: UnlearnStep,
    task: Task,
    params: Mapping[str, Any],
    method: str,
    on: Literal["retain", "forget"],
    batch_loss: Callable[[torch.Tensor, int], torch.Tensor],
) -> Unlearned:
    """Every epoch, one optimiser step per seeded batch of the ``on`` set, on
    ``batch_loss(batch indices, epoch)``, with the task recipe's batch size."""
    loop = EpochLoop(step, task, params, method)
    indices = step.retain if on == "retain" else step.forget
    for epoch in loop.epochs():
        for idx in batches(indices, step.seed, epoch, task.recipe.batch_size):
            count = idx.numel()
            loop.descend(
                batch_loss(idx, epoch),
                retain=count if on == "retain" else 0,
                forget=count if on == "forget" else 0,
            )
    return loop.finish()


class PostHocMethod:
    """A method that edits the task's shared trained model, deletion by deletion.

    Subclasses set ``name`` and edit the fresh copy of the model in ``edit``;
    the host checks parameter ranges (declared on each ``Param``) before this
    is created. Work is counted here: ``edit`` adds to ``step.work`` every
    example that went through a forward and backward pass (``EpochLoop``
    does so for its steps), and ``unlearn`` hands the total to
    ``ctx.add_work`` (these loops do not go through ``ctx.train``).
    """

    name: ClassVar[str]

    def __init__(self, params: Mapping[str, Any]) -> None:
        self.params = dict(params)

    def fit(self, task: Task, ctx: MethodContext) -> StreamState:
        return fit_original(task, ctx)

    def unlearn(
        self, state: StreamState, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned:
        step = begin_step(state, forget, task, self.name)
        result = self.edit(step, task)
        ctx.add_work(step.work)
        return result

    def edit(self, step: UnlearnStep, task: Task) -> Unlearned:
        """Edit ``step.model`` for this deletion and return it with its costs."""
        raise NotImplementedError
