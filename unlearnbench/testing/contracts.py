"""The tiny real task and the contract checks behind :mod:`unlearnbench.testing`.

This module imports torch and the plugin host; :mod:`unlearnbench.testing`
(the pytest plugin) imports it only when a fixture or a check is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from unlearnbench.execution.cache import ArtifactCache, content_key
from unlearnbench.execution.cell import Replicates
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.plan import Component
from unlearnbench.host.registry import Registry
from unlearnbench.specs import (
    ArchitectureSpec,
    DatasetSpec,
    Evaluation,
    EvaluationInputs,
    EvaluatorSpec,
    MethodSpec,
    Unlearned,
    resolve_params,
)
from unlearnbench.task import Task, build_task
from unlearnbench.task_values import ForgetRequest, SplitSizes, TrainRecipe

TINY_SPLITS = SplitSizes(target=300, nonmember=100, test=200, shadow_in=150, shadow_out=150)
TINY_RECIPE = TrainRecipe(epochs=5, batch_size=32, lr=0.003)
TinyTaskFactory = Callable[..., tuple[Task, TaskContext]]

_REGISTRY: Registry | None = None


def registry() -> Registry:
    """The registry of every installed plugin (built once per test session)."""
    global _REGISTRY
    if _REGISTRY is None:
        from unlearnbench.host.manager import load_registry

        _REGISTRY, _ = load_registry()
    return _REGISTRY


def make_task(
    cache_dir: Path,
    *,
    dataset: str = "digits",
    dataset_params: Mapping[str, Any] | None = None,
    architecture: str = "mlp",
    architecture_params: Mapping[str, Any] | None = None,
    request: ForgetRequest | None = None,
    splits: SplitSizes = TINY_SPLITS,
    recipe: TrainRecipe = TINY_RECIPE,
    seed: int = 0,
    device: str = "cpu",
    reg: Registry | None = None,
) -> tuple[Task, TaskContext]:
    """A real task and its context on registered plugins, small enough for unit tests."""
    reg = reg or registry()
    ds: DatasetSpec = reg.get("dataset", dataset)  # type: ignore[assignment]
    arch: ArchitectureSpec = reg.get("architecture", architecture)  # type: ignore[assignment]
    data = ds.load(resolve_params(ds.params, dict(dataset_params or {})))
    if architecture_params is None and architecture == "mlp":
        architecture_params = {"widths": [32]}
    arch_params = resolve_params(arch.params, dict(architecture_params or {}))
    request = request or ForgetRequest(kind="random", count=10)
    train_key = content_key(
        {
            "dataset": [dataset, dict(dataset_params or {})],
            "architecture": [architecture, arch_params],
            "splits": repr(splits),
            "train": repr(recipe),
            "seed": seed,
            "backdoor": request.as_dict() if request.kind == "backdoor" else None,
        }
    )
    key = content_key({"train": train_key, "request": request.as_dict()})
    task = build_task(
        dataset=dataset,
        architecture=architecture,
        x=data.x,
        y=data.y,
        num_classes=data.num_classes,
        input_shape=data.input_shape,
        build_model=lambda: arch.build(data.input_shape, data.num_classes, arch_params),
        sizes=splits,
        request=request,
        recipe=recipe,
        seed=seed,
        device=torch.device(device),
        key=key,
        train_key=train_key,
    )
    return task, TaskContext(task, ArtifactCache(cache_dir))


def run_unlearning(
    spec: MethodSpec, task: Task, ctx: TaskContext, params: Mapping[str, Any] | None = None
) -> Unlearned:
    """``fit`` then ``unlearn`` over every step of the task's request stream."""
    method = spec.create(resolve_params(spec.params, dict(params or {})))
    return _unlearn_steps(spec.name, method, method.fit(task, ctx), task, ctx)


def make_replicates(
    task: Task,
    ctx: TaskContext,
    method: str = "original",
    reference: str = "retrain",
    reg: Registry | None = None,
) -> Replicates:
    """The host's ``inputs.replicates`` for ``method`` (default parameters) against
    ``reference`` on ``task``, sharing ``ctx``'s artifact cache."""
    reg = reg or registry()

    def component(name: str) -> tuple[MethodSpec, Component]:
        spec: MethodSpec = reg.get("method", name)  # type: ignore[assignment]
        return spec, Component(name, resolve_params(spec.params, {}), name)

    return Replicates(task, ctx.cache, component(method), component(reference))


def _check_documented(spec: Any) -> None:
    assert spec.description.strip(), f"{spec.name}: the spec needs a description"
    for param in spec.params:
        assert param.help.strip(), f"{spec.name}: parameter {param.name!r} needs help text"
        param.coerce(param.default)


def check_method_contract(
    name: str,
    make_tiny_task: TinyTaskFactory,
    params: Mapping[str, Any] | None = None,
    reg: Registry | None = None,
) -> None:
    """A method is documented, returns logits of the right shape, handles a
    stream of two deletions, and gives the same model twice for the same seed.

    Where it defines ``trained`` (the model it unlearns from), the first run
    calls it between ``fit`` and the first ``unlearn``: that model gives logits
    of the right shape, the same from a second call, and is a snapshot
    (unlearning afterwards leaves it as it was); the second run never calls
    it, so a ``trained`` that changed the state breaks the two runs' match."""
    spec: MethodSpec = (reg or registry()).get("method", name)  # type: ignore[assignment]
    _check_documented(spec)
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    x = task.x[task.splits.test]
    method = spec.create(resolve_params(spec.params, dict(params or {})))
    state = method.fit(task, ctx)
    before = _check_trained(name, method, state, task, ctx, x)
    first = _unlearn_steps(spec.name, method, state, task, ctx)
    if before is not None:
        trained, logits_before = before
        with torch.no_grad():
            assert torch.equal(trained(x), logits_before), (
                f"{name}: unlearning changed the model trained() returned (not a snapshot)"
            )
    with torch.no_grad():
        first.model.eval()
        logits = first.model(x)
    assert logits.shape == (x.shape[0], task.num_classes), (
        f"{name}: model returned shape {tuple(logits.shape)}, expected "
        f"{(x.shape[0], task.num_classes)}"
    )
    assert torch.isfinite(logits).all(), f"{name}: non-finite logits"
    for key, value in first.costs.items():
        assert isinstance(value, int | float), f"{name}: cost {key!r} is not a number"
    task2, ctx2 = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    second = run_unlearning(spec, task2, ctx2, params)
    with torch.no_grad():
        second.model.eval()
        again = second.model(x)
    assert torch.allclose(logits, again, atol=1e-5), f"{name}: not deterministic for a seed" + (
        ", or trained() changed the state unlearn starts from" if before else ""
    )


def _check_trained(
    name: str, method: Any, state: Any, task: Task, ctx: TaskContext, x: torch.Tensor
) -> tuple[torch.nn.Module, torch.Tensor] | None:
    """The method's ``trained`` model from ``state`` and its logits on ``x``
    (checked for shape, finiteness and a second call), or ``None`` without one."""
    trained_of = getattr(method, "trained", None)
    if not callable(trained_of):
        return None
    trained = trained_of(state, task, ctx)
    twice = trained_of(state, task, ctx)
    with torch.no_grad():
        trained.eval()
        twice.eval()
        logits = trained(x)
        assert logits.shape == (x.shape[0], task.num_classes), (
            f"{name}: trained() returned shape {tuple(logits.shape)}, expected "
            f"{(x.shape[0], task.num_classes)}"
        )
        assert torch.isfinite(logits).all(), f"{name}: trained() gives non-finite logits"
        assert torch.equal(twice(x), logits), f"{name}: trained() differs on a second call"
    return trained, logits


def _unlearn_steps(name: str, method: Any, state: Any, task: Task, ctx: TaskContext) -> Unlearned:
    """Every ``unlearn`` step of the task's stream from ``state``."""
    result = None
    for forget in task.forget_steps:
        result = method.unlearn(state, forget, task, ctx)
        assert isinstance(result, Unlearned), f"{name}.unlearn must return Unlearned"
        state = result.state
    assert result is not None
    return result


def check_evaluator_contract(
    name: str,
    make_tiny_task: TinyTaskFactory,
    params: Mapping[str, Any] | None = None,
    request: ForgetRequest | None = None,
    reg: Registry | None = None,
) -> dict[str, float]:
    """An evaluator is documented and returns only declared, numeric metrics."""
    spec: EvaluatorSpec = (reg or registry()).get("evaluator", name)  # type: ignore[assignment]
    _check_documented(spec)
    assert spec.metrics, f"{name}: an evaluator must declare its metrics"
    task, ctx = make_tiny_task(request=request or ForgetRequest(kind="random", count=10))
    original = ctx.original()
    reference = task.new_model("init")
    ctx.train(reference, task.splits.target, exclude=task.splits.forget)
    inputs = EvaluationInputs(
        task=task,
        original=original,
        unlearned=original,
        reference=reference,
        costs={
            "unlearn_seconds": 0.01,
            "fit_seconds": 0.0,
            "reference_seconds": 0.5,
            "unlearn_sample_passes": 100.0,
            "fit_sample_passes": 0.0,
            "reference_sample_passes": 5000.0,
            "naive_sample_passes": 2000.0,
            "storage_bytes": 1000.0,
            "prediction_cost": 1.0,
            "retrain_sample_epochs": 0.0,
        },
        naive=reference,  # exercises the naive comparisons too
        replicates=make_replicates(task, ctx, "original", reg=reg),  # unlearned is the original
    )
    result = spec.create(resolve_params(spec.params, dict(params or {}))).evaluate(inputs, ctx)
    metrics = result.metrics if isinstance(result, Evaluation) else dict(result)
    declared = {m.name for m in spec.metrics}
    assert set(metrics) <= declared, f"{name}: undeclared metrics {set(metrics) - declared}"
    for key, value in metrics.items():
        assert isinstance(value, int | float), f"{name}: metric {key!r} is not a number"
        assert not math.isinf(value), f"{name}: metric {key!r} is infinite"
    return metrics


def check_dataset_contract(
    name: str, params: Mapping[str, Any] | None = None, reg: Registry | None = None
) -> None:
    """A data set loads deterministically, with the shapes and labels it declares."""
    spec: DatasetSpec = (reg or registry()).get("dataset", name)  # type: ignore[assignment]
    _check_documented(spec)
    resolved = resolve_params(spec.params, dict(params or {}))
    data = spec.load(resolved)
    assert data.x.dtype == torch.float32, f"{name}: x must be float32"
    assert data.y.dtype == torch.long, f"{name}: y must be int64"
    assert data.x.shape[0] == data.y.shape[0] > 0
    assert tuple(data.x.shape[1:]) == tuple(data.input_shape), f"{name}: input_shape mismatch"
    assert int(data.y.min()) >= 0 and int(data.y.max()) < data.num_classes
    assert torch.isfinite(data.x).all(), f"{name}: non-finite inputs"
    again = spec.load(resolved)
    assert torch.equal(data.x, again.x) and torch.equal(data.y, again.y), (
        f"{name}: load is not deterministic"
    )


def check_architecture_contract(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int = 10,
    params: Mapping[str, Any] | None = None,
    reg: Registry | None = None,
) -> None:
    """An architecture builds, maps a batch to logits, and initialises reproducibly."""
    spec: ArchitectureSpec = (reg or registry()).get("architecture", name)  # type: ignore[assignment]
    _check_documented(spec)
    resolved = resolve_params(spec.params, dict(params or {}))
    torch.manual_seed(0)
    model = spec.build(input_shape, num_classes, resolved)
    torch.manual_seed(0)
    twin = spec.build(input_shape, num_classes, resolved)
    model.eval()
    out = model(torch.randn(3, *input_shape))
    assert out.shape == (3, num_classes), f"{name}: output shape {tuple(out.shape)}"
    for a, b in zip(model.state_dict().values(), twin.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name}: initialisation ignores the torch seed"
