"""The one training loop every plugin reuses, and batched prediction.

In-memory data stays as tensors on the task's device; batches are index
tensors cut from a seeded ``randperm`` (a DataLoader over the same tensors was
1.6-2.4x slower on these machines). The batch order of epoch ``e`` depends only
on ``(seed, e)`` and the index list, and ``exclude`` drops points *after* the
permutation: retraining without some points sees the same batches minus those
points, which is what makes retrain, SISA and DeepObliviate comparable exactly.

Two opt-in recipe switches speed up GPU training without touching the default
float32 loop: ``recipe.amp`` (autocast float16 + ``GradScaler`` on CUDA,
bfloat16 autocast on CPU) and ``recipe.channels_last`` (NHWC model and batches
for image inputs). With both off the per-batch loop is exactly the plain one.

:func:`train_stacked` trains K models of one architecture at once (SISA's
shards, LiRA's reference models); docs/methods.md ("Stacked training") says
what it reproduces of :func:`train_model` and where it differs.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from unlearnbench.seeding import derive_seed, seed_torch
from unlearnbench.specs import UnlearnbenchError
from unlearnbench.task_values import OPTIMIZER_IMPLS, TrainRecipe

if TYPE_CHECKING:
    from unlearnbench.task import Task

CHANCE_MARGIN = 0.02
"""How far above the majority-class share a trained model must score on its own
training data not to be at chance (see :func:`check_learned`)."""
LOSS_RISE = 1.1
"""A model at chance whose training loss is above this times its untrained loss
diverged (see :func:`check_learned`)."""


class TrainingDiverged(UnlearnbenchError, RuntimeError):
    """The loss became NaN or infinite, or the trained model is at chance on its
    own training data (:func:`check_learned`)."""


@dataclass
class TrainStats:
    """What one call of :func:`train_model` did."""

    epochs: int
    sample_epochs: int
    seconds: float
    mean_loss: float


DEFAULT_IMPLS = {"adam": "foreach", "sgd": "for_loop"}
""":func:`make_optimizer`'s default ``impl`` per optimizer, measured on the CPU
(``benchmarks/training_loop.py``, CPU seconds, 1 thread, docs/benchmarks.md):
``foreach`` gives the ``for_loop`` results bit for bit for both (tests check it,
momentum and weight decay included); for Adam it was as fast or up to 1.1x
faster, for SGD 0.86-0.97x as fast, so each keeps the faster one. ``fused``
Adam was 1.3-1.6x faster but rounds differently (parameters differ by about
1e-7 after a few epochs, and the difference grows with training), so it stays
opt-in (``[train] optimizer_impl = "fused"``, which the default suite sets): a
default that moved every result would make the committed boards and cached models
disagree with new runs. CUDA: not measured (no GPU lent yet)."""


class OptimizerImplOptions(TypedDict, total=False):
    """The ``torch.optim`` keyword arguments that select an implementation."""

    foreach: bool
    fused: bool


class OptimizerImplError(UnlearnbenchError, ValueError):
    """An optimizer implementation that :data:`OPTIMIZER_IMPLS` does not name."""


def optimizer_impl_options(impl: str) -> OptimizerImplOptions:
    """The ``torch.optim`` keyword arguments that select ``impl``."""
    if impl == "foreach":
        return {"foreach": True}
    if impl == "for_loop":
        return {"foreach": False}
    if impl == "fused":
        return {"fused": True}
    raise OptimizerImplError(
        f"unknown optimizer implementation {impl!r}; choose from {OPTIMIZER_IMPLS}"
    )


def recipe_impl_options(
    recipe: TrainRecipe, optimizer: str, impl: str | None = None
) -> OptimizerImplOptions:
    """The ``torch.optim`` keyword arguments for an ``optimizer`` (``"adam"`` or
    ``"sgd"``) of a task trained by ``recipe``: ``impl`` if given, else the
    recipe's ``optimizer_impl``, ``"auto"`` meaning :data:`DEFAULT_IMPLS`'s. A
    method with optimizers of its own (GAN unlearning's) asks here, so every
    optimizer of a run steps alike and no method's time gains or loses by it."""
    chosen = impl or recipe.optimizer_impl
    return optimizer_impl_options(DEFAULT_IMPLS[optimizer] if chosen == "auto" else chosen)


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    recipe: TrainRecipe,
    lr: float | None = None,
    *,
    impl: str | None = None,
) -> torch.optim.Optimizer:
    """Adam or SGD (with the recipe's momentum) at the recipe's learning rate;
    ``impl``: one of :data:`OPTIMIZER_IMPLS`, by default the recipe's
    ``optimizer_impl`` (``"auto"``: :data:`DEFAULT_IMPLS`'s)."""
    rate = recipe.lr if lr is None else lr
    options = recipe_impl_options(recipe, recipe.optimizer, impl)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=rate, momentum=recipe.momentum, weight_decay=recipe.weight_decay, **options
        )
    return torch.optim.Adam(params, lr=rate, weight_decay=recipe.weight_decay, **options)


def epoch_order(
    indices: torch.Tensor, seed: object, epoch: int, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """The visiting order of ``indices`` in ``epoch``, minus ``exclude``."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(derive_seed(seed, "epoch", epoch))
    perm = torch.randperm(indices.numel(), generator=gen).to(indices.device)
    order = indices[perm]
    if exclude is not None and exclude.numel():
        order = order[~torch.isin(order, exclude.to(order.device))]
    return order


def cycled_batches(indices: torch.Tensor, seed: object, batch_size: int) -> Iterator[torch.Tensor]:
    """Batches of ``indices`` forever: epoch ``e`` is cut from ``epoch_order(indices,
    seed, e)``, so an endless stream (a GAN's retain batches, NegGrad+'s forget
    batches) is as reproducible as a training run."""
    epoch = 0
    while True:
        order = epoch_order(indices, seed, epoch)
        for begin in range(0, order.numel(), batch_size):
            yield order[begin : begin + batch_size]
        epoch += 1


def train_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    indices: torch.Tensor,
    recipe: TrainRecipe,
    *,
    seed: object,
    epochs: int | None = None,
    exclude: torch.Tensor | None = None,
    optimizer: torch.optim.Optimizer | None = None,
) -> TrainStats:
    """Train ``model`` in place on ``x[indices]`` with cross-entropy.

    ``seed`` fixes batch order and the global RNG (dropout) per epoch, so the
    same call gives the same model. Raises :class:`TrainingDiverged` when an
    epoch's loss is not finite (checked once per epoch, not per batch).
    """
    n_epochs = recipe.epochs if epochs is None else epochs
    opt = optimizer if optimizer is not None else make_optimizer(model.parameters(), recipe)
    batch = recipe.batch_size
    fast = _FastPath(recipe, x, model) if (recipe.amp or recipe.channels_last) else None
    model.train()
    start = time.perf_counter()
    sample_epochs = 0
    total = torch.zeros((), device=x.device)
    for epoch in range(n_epochs):
        seed_torch(derive_seed(seed, "noise", epoch), x.device)
        order = epoch_order(indices, seed, epoch, exclude)
        epoch_loss = torch.zeros((), device=x.device)
        if fast is not None:
            fast.run_epoch(model, opt, x, y, order, batch, epoch_loss)
        else:
            for begin in range(0, order.numel(), batch):
                idx = order[begin : begin + batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                epoch_loss += loss.detach() * idx.numel()
        if not bool(torch.isfinite(epoch_loss)):
            raise TrainingDiverged(
                f"training diverged: the loss of epoch {epoch + 1} is {float(epoch_loss)}; "
                f"lower the learning rate (train.lr={recipe.lr})"
            )
        sample_epochs += order.numel()
        total += epoch_loss
    model.eval()
    return TrainStats(
        epochs=n_epochs,
        sample_epochs=sample_epochs,
        seconds=time.perf_counter() - start,
        mean_loss=float(total) / max(sample_epochs, 1),
    )


def check_learned(model: nn.Module, task: Task) -> None:
    """Raise :class:`TrainingDiverged` when ``model``, trained from
    ``task.new_model("init")`` on the task's target set, diverged there.

    The rule, on the target set with the labels it was trained with: (1) its
    accuracy is not above the majority-class share plus :data:`CHANCE_MARGIN`
    (it does no better than always predicting the most common label), and (2)
    its mean cross-entropy is above :data:`LOSS_RISE` times the untrained
    model's: training made it worse. Adam at lr=1e6 on digits ends at accuracy
    0.07-0.12 (majority 0.11) with a loss near 1e6 against 2.3 before; with a
    finite loss the loop cannot tell, and the model would be recorded as a
    valid, if poor, original model. (2) spares a model that is merely
    undertrained (a one-epoch smoke test ends near chance with a loss a little
    below the untrained one's); a model that fits every point is never flagged.
    """
    target, recipe = task.splits.target, task.recipe
    x, labels = task.x[target], task.y[target]  # backdoor labels included
    if labels.numel() == 0:
        return
    majority = float(torch.bincount(labels).max()) / labels.numel()
    score = accuracy(model, x, labels)
    if score > majority + CHANCE_MARGIN or score >= 1.0:
        return
    loss = float(F.cross_entropy(predict_logits(model, x), labels))
    before = float(F.cross_entropy(predict_logits(task.new_model("init"), x), labels))
    if not loss > LOSS_RISE * before:
        return
    raise TrainingDiverged(
        f"training diverged: the trained model scores {score:.3f} on its own training "
        f"data, no better than always predicting its most common label ({majority:.3f}), "
        f"and its loss there rose from {before:.3g} untrained to {loss:.3g}; lower the "
        f"learning rate (train.lr={recipe.lr:g})"
    )


class _FastPath:
    """The loop body for ``recipe.amp`` / ``recipe.channels_last`` (opt-in).

    AMP: float16 autocast with a ``GradScaler`` on CUDA (the scaler skips steps
    whose gradients overflow, as usual); bfloat16 autocast elsewhere (CPU),
    which needs no scaler. The loss is summed in float32. ``channels_last``
    converts the model once and each batch as it is cut (image inputs only).
    """

    def __init__(self, recipe: TrainRecipe, x: torch.Tensor, model: nn.Module) -> None:
        self.device_type = x.device.type
        self.amp = recipe.amp
        self.dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        self.scaler = (
            torch.amp.GradScaler("cuda") if self.amp and self.device_type == "cuda" else None
        )
        self.channels_last = recipe.channels_last and x.dim() == 4
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    def run_epoch(
        self,
        model: nn.Module,
        opt: torch.optim.Optimizer,
        x: torch.Tensor,
        y: torch.Tensor,
        order: torch.Tensor,
        batch: int,
        epoch_loss: torch.Tensor,
    ) -> None:
        """One epoch over ``order``; adds the summed batch losses to ``epoch_loss``."""
        for begin in range(0, order.numel(), batch):
            idx = order[begin : begin + batch]
            xb = x[idx]
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device_type, dtype=self.dtype, enabled=self.amp):
                loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(opt)
                self.scaler.update()
            else:
                loss.backward()
                opt.step()
            epoch_loss += loss.detach().float() * idx.numel()


def _is_channels_last(model: nn.Module) -> bool:
    """True when the model's first spatial conv weight is stored NHWC (trained so)."""
    for param in model.parameters():
        if param.dim() == 4 and param.shape[-1] * param.shape[-2] > 1:
            return not param.is_contiguous() and param.is_contiguous(
                memory_format=torch.channels_last
            )
    return False


# Layers that draw random numbers in training mode: vmap cannot replay their stream.
_RANDOM_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.RReLU)


def stacking_unsupported(model: nn.Module) -> str | None:
    """Why K copies of ``model`` cannot be trained at once with ``torch.func``
    (``stack_module_state`` + ``vmap``), or ``None`` when they can."""
    if any(True for _ in model.buffers()):
        return "it has buffers (batch norm or similar), which vmap cannot update in place"
    for module in model.modules():
        if isinstance(module, _RANDOM_LAYERS) and getattr(module, "p", 1.0) > 0:
            return f"it has a random layer ({type(module).__name__}) in training mode"
    if len(list(model.named_parameters())) != len(model.state_dict()):
        return "its state dict holds more than its parameters (tied or extra state)"
    return None


STACKING_CPU_MAX_PARAMETERS = 20_000
"""On the CPU, stacked training pays only for MLPs this small (parameters per model).

``python benchmarks/stacking.py`` (1 thread, 5 and 16 models of 300 points, batch 64,
Adam; two runs): an MLP of 4.8k-17k parameters trains 1.1-2.6x faster stacked, one of
25k-109k 0.57-1.11x as fast (the default suite's 784-128-64 MLP, 109k: 0.57-0.82x at 5
models; its SISA ``fit`` on the default suite's task, ``benchmarks/gpu/stacked.py
--device cpu``: 1.28 s stacked, 0.92 s one by one); the per-call overhead that
stacking saves stops mattering once the matrix products dominate."""


def stacking_pays(model: nn.Module, device: torch.device) -> bool:
    """Whether stacked training is expected to be faster than one model after another:
    on a GPU always, on the CPU only for networks whose only parameterised layers are
    ``nn.Linear`` (DESIGN.md: stacked CNNs are 0.7-0.8x on CPU) and that hold at most
    :data:`STACKING_CPU_MAX_PARAMETERS` parameters. ``False`` for a model that cannot
    be stacked."""
    if stacking_unsupported(model) is not None:
        return False
    if device.type == "cuda":
        return True
    layers = [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    if not all(isinstance(m, nn.Linear) for m in layers):
        return False
    return sum(p.numel() for p in model.parameters()) <= STACKING_CPU_MAX_PARAMETERS


@dataclass(frozen=True)
class StackedJob:
    """One model's training data in :func:`train_stacked`: what
    ``train_model(indices, seed=, exclude=)`` gets."""

    indices: torch.Tensor
    seed: object
    exclude: torch.Tensor | None = None


_BETAS = (0.9, 0.999)
_ADAM_EPS = 1e-8


class _StackedOptimizer:
    """Adam or SGD over stacked parameters, stepping only the active models.

    Per model, the formulas and the order of operations of ``torch.optim``'s
    single-tensor path (bias corrections in float64 cast to float32, division by
    them, then ``param + (-step_size * avg) / denom`` as ``addcdiv`` computes it),
    so models stepped together get what ``torch.optim`` gives on the stacked
    tensors; a masked-out model keeps its parameters, state and step count.
    """

    def __init__(self, params: dict[str, torch.Tensor], recipe: TrainRecipe) -> None:
        self.recipe = recipe
        first = next(iter(params.values()))
        self.steps = torch.zeros(first.shape[0], dtype=torch.float64, device=first.device)
        self.first = {n: torch.zeros_like(p) for n, p in params.items()}
        self.second = (
            {n: torch.zeros_like(p) for n, p in params.items()}
            if recipe.optimizer == "adam"
            else {}
        )

    def step(
        self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], active: torch.Tensor
    ) -> None:
        recipe = self.recipe
        steps = self.steps + active.to(torch.float64)
        if recipe.optimizer == "adam":
            beta1, beta2 = _BETAS
            done = steps.clamp(min=1.0)
            neg_step_size = (-recipe.lr / (1 - beta1**done)).to(torch.float32)
            bias2_sqrt = (1 - beta2**done).sqrt().to(torch.float32)
        for name, param in params.items():
            grad = grads[name]
            if recipe.weight_decay:
                grad = grad.add(param, alpha=recipe.weight_decay)
            shape = (-1, *([1] * (param.dim() - 1)))
            mask = active.view(shape)
            if recipe.optimizer == "adam":
                avg = self.first[name].lerp(grad, 1 - beta1)
                avg_sq = self.second[name].mul(beta2).addcmul(grad, grad, value=1 - beta2)
                denom = (avg_sq.sqrt() / bias2_sqrt.view(shape)).add(_ADAM_EPS)
                updated = param + neg_step_size.view(shape) * avg / denom
                self.second[name] = torch.where(mask, avg_sq, self.second[name])
            else:  # a zero buffer gives torch's first step, buf = grad
                avg = self.first[name].mul(recipe.momentum).add(grad) if recipe.momentum else grad
                updated = param.add(avg, alpha=-recipe.lr)
            self.first[name] = torch.where(mask, avg, self.first[name])
            params[name] = torch.where(mask, updated, param)
        self.steps = steps


def train_stacked(
    models: Sequence[nn.Module],
    jobs: Sequence[StackedJob],
    x: torch.Tensor,
    y: torch.Tensor,
    recipe: TrainRecipe,
    *,
    epochs: int | None = None,
) -> list[int]:
    """Train ``models[i]`` on ``jobs[i]`` for ``epochs`` epochs (the recipe's by
    default), all at once with ``torch.func``, in place.

    Each model gets :func:`train_model`'s batch order, mean cross-entropy and
    optimizer formulas; jobs may differ in size (shorter epochs are masked out).
    Returns each model's sample-epochs (points visited, summed over epochs), as
    :class:`TrainStats` counts them. Raises ValueError when the models differ in
    architecture or cannot be stacked (:func:`stacking_unsupported`), and
    :class:`TrainingDiverged` when an epoch's loss of any model is not finite.
    """
    if len(models) != len(jobs) or not models:
        raise ValueError(
            f"train_stacked needs one job per model, got {len(models)} and {len(jobs)}"
        )
    reason = stacking_unsupported(models[0])
    if reason is not None:
        raise ValueError(f"cannot train this model stacked: {reason}")
    names = [name for name, _ in models[0].named_parameters()]
    per_model = [dict(m.named_parameters()) for m in models]
    if any(list(p) != names for p in per_model):
        raise ValueError("train_stacked needs models of one architecture")
    params = {n: torch.stack([p[n].detach() for p in per_model]).clone() for n in names}
    base = copy.deepcopy(models[0]).to("meta")
    base.train()

    def loss_fn(
        p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor
    ) -> torch.Tensor:
        out = functional_call(base, p, (xb,))
        losses = F.cross_entropy(out, yb, reduction="none")
        return (losses * wb).sum() / wb.sum().clamp(min=1.0)

    step_fn = vmap(grad_and_value(loss_fn))
    optimizer = _StackedOptimizer(params, recipe)
    k, batch = len(models), recipe.batch_size
    sample_epochs = [0] * k
    for epoch in range(recipe.epochs if epochs is None else epochs):
        orders = [epoch_order(j.indices, j.seed, epoch, j.exclude) for j in jobs]
        longest = max(o.numel() for o in orders)
        if longest == 0:
            continue
        padded = torch.zeros(k, longest, dtype=torch.long, device=x.device)
        weight = torch.zeros(k, longest, dtype=x.dtype, device=x.device)
        for i, order in enumerate(orders):
            padded[i, : order.numel()] = order.to(x.device)
            weight[i, : order.numel()] = 1.0
            sample_epochs[i] += order.numel()
        epoch_loss = torch.zeros(k, device=x.device)
        for begin in range(0, longest, batch):
            # the longest job's batch is never padded: equal-size jobs see exactly
            # train_model's batches (and the same kernels' rounding)
            idx, w = padded[:, begin : begin + batch], weight[:, begin : begin + batch]
            grads, loss = step_fn(params, x[idx], y[idx], w)
            optimizer.step(params, grads, w[:, 0] > 0)
            epoch_loss += loss.detach() * w.sum(1)
        if not bool(torch.isfinite(epoch_loss).all()):
            raise TrainingDiverged(
                f"training diverged: the loss of epoch {epoch + 1} is not finite; "
                f"lower the learning rate (train.lr={recipe.lr})"
            )
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, param in model.named_parameters():
                param.copy_(params[name][i])
            model.eval()
    return sample_epochs


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, in batches (no gradients)."""
    was_training = model.training
    model.eval()
    if x.dim() == 4 and _is_channels_last(model):
        nhwc = torch.channels_last
        outs = [
            model(x[i : i + batch_size].contiguous(memory_format=nhwc))
            for i in range(0, x.shape[0], batch_size)
        ]
    else:
        outs = [model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    if was_training:
        model.train()
    if not outs:
        return torch.empty(0, 0, device=x.device)
    return torch.cat(outs)


def predict_proba(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Posterior probabilities, what membership attacks read.

    A model whose ``forward`` returns something other than log-posteriors of
    one softmax (an ensemble voting by majority, say) defines
    ``posteriors(x) -> probabilities`` and is read through it, so attacks see
    posteriors while accuracy and consistency use the model's own prediction.
    """
    own = getattr(model, "posteriors", None)
    if callable(own):
        model.eval()
        with torch.no_grad():
            outs = [own(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        return torch.cat(outs) if outs else torch.empty(0, 0, device=x.device)
    return torch.softmax(predict_logits(model, x, batch_size), dim=1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of ``x`` that ``model`` labels as ``y`` (nan for an empty set)."""
    if y.numel() == 0:
        return float("nan")
    return float((predict_logits(model, x).argmax(1) == y).float().mean())
