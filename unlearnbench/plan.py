"""Suite x registry -> tasks and cells, with every name and parameter resolved.

A *task* is (dataset, architecture, splits, recipe, request, seed); its cells
are the methods run on it. Keys are content hashes of the resolved
configuration, so the same cell has the same id in every run (resume) and the
same trained model has the same cache key wherever it is needed (sharing).
Feasibility (split sizes, forget requests) is checked against the real data
before any training.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from unlearnbench.cache import content_key
from unlearnbench.registry import Kind, Registry, RegistryError
from unlearnbench.specs import DatasetArrays, ParamError, resolve_params
from unlearnbench.suite import Entry, Suite, SuiteError
from unlearnbench.task import (
    ForgetRequest,
    SplitSizes,
    TaskError,
    TrainRecipe,
    build_splits,
    select_forget,
)


@dataclass(frozen=True)
class Component:
    """A resolved plugin use: name, full parameters, and a readable label."""

    name: str
    params: dict[str, Any]
    label: str

    def ident(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params}


@dataclass(frozen=True)
class CellPlan:
    cell_id: str
    method: Component


@dataclass
class TaskPlan:
    key: str
    train_key: str
    dataset: Component
    architecture: Component
    splits: SplitSizes
    recipe: TrainRecipe
    request: ForgetRequest
    seed: int
    evaluators: list[Component]
    reference: Component
    cells: list[CellPlan] = field(default_factory=list)

    def config(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset.ident(),
            "architecture": self.architecture.ident(),
            "splits": asdict(self.splits),
            "train": asdict(self.recipe),
            "request": self.request.as_dict(),
            "seed": self.seed,
            "evaluators": [e.ident() for e in self.evaluators],
            "reference": self.reference.ident(),
        }


@dataclass
class Plan:
    suite: Suite
    tasks: list[TaskPlan]

    def cells(self) -> Iterator[tuple[TaskPlan, CellPlan]]:
        for task in self.tasks:
            for cell in task.cells:
                yield task, cell

    @property
    def size(self) -> int:
        return sum(len(t.cells) for t in self.tasks)


def expand(entry: Entry, kind: Kind, registry: Registry) -> list[Component]:
    """Resolve an entry's name and parameters; a grid gives one component per point."""
    try:
        spec = registry.get(kind, entry.name)
    except RegistryError as exc:
        raise SuiteError(f"{entry.key}.name", str(exc)) from None
    points = (
        [
            dict(zip(entry.grid, values, strict=True))
            for values in itertools.product(*entry.grid.values())
        ]
        if entry.grid
        else [{}]
    )
    out = []
    for point in points:
        given = {**entry.params, **point}
        try:
            params = resolve_params(spec.params, given)
        except ParamError as exc:
            where = "grid" if str(exc).split(":")[0] in point else "params"
            raise SuiteError(f"{entry.key}.{where}", str(exc)) from None
        label = entry.label or entry.name
        if point:
            label += "(" + ",".join(f"{k}={_short(v)}" for k, v in point.items()) + ")"
        out.append(Component(entry.name, params, label))
    return out


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_plan(suite: Suite, registry: Registry) -> Plan:
    """Expand the suite's cross product; raise SuiteError on the first bad entry."""
    datasets = [(e, expand(e, "dataset", registry)) for e in suite.datasets]
    archs = [(e, expand(e, "architecture", registry)) for e in suite.architectures]
    methods = [c for e in suite.methods for c in expand(e, "method", registry)]
    evaluators = [c for e in suite.evaluators for c in expand(e, "evaluator", registry)]
    names = [e.name for e in evaluators]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise SuiteError(
            "evaluators", f"{dupes} listed more than once: their metric names would collide"
        )
    reference = expand(suite.reference, "method", registry)
    if len(reference) != 1:
        raise SuiteError("reference", "must name one method without a grid")
    labels = [m.label for m in methods]
    if len(set(labels)) != len(labels):
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        raise SuiteError("methods", f"two entries share the label {dupes}; set label = ...")
    tasks = []
    for ds_entry, ds_components in datasets:
        recipe = TrainRecipe(**{**asdict(suite.train), **ds_entry.train})
        splits = SplitSizes(**{**asdict(suite.splits), **ds_entry.splits})
        for dataset in ds_components:
            for arch_entry, arch_components in archs:
                if ds_entry.architectures and arch_entry.name not in ds_entry.architectures:
                    continue
                for arch, request, seed in itertools.product(
                    arch_components, suite.requests, suite.seeds
                ):
                    tasks.append(
                        _task_plan(
                            dataset,
                            arch,
                            splits,
                            recipe,
                            request,
                            seed,
                            evaluators,
                            reference[0],
                            methods,
                        )
                    )
    if not tasks:
        raise SuiteError("datasets", "no dataset x architecture pair is left to run")
    return Plan(suite, tasks)


def _task_plan(
    dataset: Component,
    arch: Component,
    splits: SplitSizes,
    recipe: TrainRecipe,
    request: ForgetRequest,
    seed: int,
    evaluators: list[Component],
    reference: Component,
    methods: list[Component],
) -> TaskPlan:
    train_ident = {
        "dataset": dataset.ident(),
        "architecture": arch.ident(),
        "splits": asdict(splits),
        "train": asdict(recipe),
        "seed": seed,
        # poisoned points change the training data; other requests do not
        "backdoor": _poisoning(request),
    }
    plan = TaskPlan(
        key="",
        train_key=content_key(train_ident),
        dataset=dataset,
        architecture=arch,
        splits=splits,
        recipe=recipe,
        request=request,
        seed=seed,
        evaluators=evaluators,
        reference=reference,
    )
    plan.key = content_key(plan.config())
    plan.cells = [
        CellPlan(content_key({"task": plan.key, "method": m.ident()}), m) for m in methods
    ]
    return plan


def _poisoning(request: ForgetRequest) -> dict[str, Any] | None:
    """What of a request changes the training data: only a backdoor's poisoning
    (not how its deletion is split into a stream)."""
    if request.kind != "backdoor":
        return None
    return {k: v for k, v in request.as_dict().items() if k != "steps"}


def check_feasible(plan: Plan, load: Callable[[Component], DatasetArrays], suite: Suite) -> None:
    """Check split sizes and forget requests against the real data, before training."""
    seen: set[str] = set()
    for task in plan.tasks:
        ident = content_key(
            {
                "d": task.dataset.ident(),
                "s": asdict(task.splits),
                "r": task.request.as_dict(),
                "seed": task.seed,
            }
        )
        if ident in seen:
            continue
        seen.add(ident)
        data = load(task.dataset)
        request_key = f"requests[{suite.requests.index(task.request)}]"
        try:
            parts = build_splits(int(data.y.numel()), task.splits, task.seed)
        except TaskError as exc:
            raise SuiteError("splits", f"{task.dataset.label}: {exc}") from None
        try:
            forget = select_forget(parts["target"], data.y, task.request, task.seed)
        except (TaskError, ValueError) as exc:
            raise SuiteError(request_key, f"{task.dataset.label}: {exc}") from None
        request = task.request
        if request.kind == "backdoor" and not 0 <= request.target_class < data.num_classes:
            raise SuiteError(f"{request_key}.target_class", "is not a class of the data set")
        if forget.numel() >= parts["target"].numel():
            raise SuiteError(request_key, "would forget the whole target set; nothing is retained")
        if task.request.steps > forget.numel():
            raise SuiteError(f"{request_key}.steps", f"exceeds the {forget.numel()} forget points")
