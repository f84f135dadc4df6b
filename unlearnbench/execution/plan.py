"""Suite x registry -> tasks and cells, with every name and parameter resolved.

A *task* is (dataset, architecture, splits, recipe, request, seed, and for a
request with ``repeats`` = N > 1 the repeat 0..N-1); its cells are the methods
run on it. A request's repeats share one ``train_key`` (one original model).
Keys are content hashes of the resolved configuration, so the same cell has
the same id in every run (resume) and the same trained model has the same
cache key wherever it is needed (sharing).
Feasibility (split sizes, forget requests, method parameters against the
split sizes through :attr:`MethodSpec.check`) is checked against the real data
before any training, and an absurd training budget is warned about.

Labels: a grid point appends ``(key=value)`` to its entry's label. Two
``[[datasets]]`` entries of one data set (other params, or their own ``train``
or ``splits``) are labelled apart the same way, by the settings in which they
differ (``digits(train.lr=0.003)``), so each variant is its own leaderboard
row; two entries that differ in nothing are refused. Methods and architectures
that share a label are refused (set ``label = ...``).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from unlearnbench.execution.cache import content_key
from unlearnbench.execution.suite import Suite, SuiteEntry, SuiteError
from unlearnbench.host.registry import Kind, Registry, RegistryError
from unlearnbench.specs import DatasetArrays, MethodSpec, ParamError, SizeCheck, resolve_params
from unlearnbench.task import build_splits, select_forget
from unlearnbench.task_values import (
    ForgetRequest,
    SplitSizes,
    TaskError,
    TrainRecipe,
    recipe_ident,
)

log = logging.getLogger(__name__)
BUDGET_WARNING_SAMPLE_PASSES = 10**8
"""``run`` and ``--check`` warn (and go on) when one model's training recipe
asks for more sample-passes than this (``train.epochs`` x target points): about
80 epochs of ImageNet-1k, far beyond any data set this benchmark is meant for,
so almost surely a typo (``epochs = 100000``)."""


@dataclass(frozen=True)
class Component:
    """A resolved plugin use: name, full parameters, and a readable label."""

    name: str
    params: dict[str, Any]
    label: str
    key: str = field(default="", compare=False)  # the suite entry it comes from

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
    repeat: int = 0  # which of the request's repeats (see ForgetRequest.repeats)

    def config(self) -> dict[str, Any]:
        """The task's full configuration, hashed into its key. ``repeat`` is in it
        only for a request with ``repeats`` > 1 (a plain request's key is unchanged)."""
        config = {
            "dataset": self.dataset.ident(),
            "architecture": self.architecture.ident(),
            "splits": asdict(self.splits),
            "train": recipe_ident(self.recipe),
            "request": self.request.as_dict(),
            "seed": self.seed,
            "evaluators": [e.ident() for e in self.evaluators],
            "reference": self.reference.ident(),
        }
        if self.request.repeats > 1:
            config["repeat"] = self.repeat
        return config


@dataclass
class Plan:
    suite: Suite
    tasks: list[TaskPlan]
    # method label -> its spec's size check (MethodSpec.check), for check_feasible
    size_checks: dict[str, SizeCheck] = field(default_factory=dict)

    def cells(self) -> Iterator[tuple[TaskPlan, CellPlan]]:
        for task in self.tasks:
            for cell in task.cells:
                yield task, cell

    @property
    def size(self) -> int:
        return sum(len(t.cells) for t in self.tasks)


def expand(entry: SuiteEntry, kind: Kind, registry: Registry) -> list[Component]:
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
        out.append(Component(entry.name, params, label, entry.key))
    return out


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_plan(suite: Suite, registry: Registry) -> Plan:
    """Expand the suite's cross product; raise SuiteError on the first bad entry."""
    datasets = _label_dataset_variants(
        suite, [(e, expand(e, "dataset", registry)) for e in suite.datasets]
    )
    archs = [(e, expand(e, "architecture", registry)) for e in suite.architectures]
    _refuse_shared_labels("architectures", [c for _, cs in archs for c in cs])
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
    _refuse_shared_labels("methods", methods)
    tasks = []
    for ds_entry, ds_components in datasets:
        recipe, splits = _recipe_and_splits(suite, ds_entry)
        for dataset in ds_components:
            for arch_entry, arch_components in archs:
                if ds_entry.architectures and arch_entry.name not in ds_entry.architectures:
                    continue
                for arch, request, seed in itertools.product(
                    arch_components, suite.requests, suite.seeds
                ):
                    for repeat in range(request.repeats):
                        tasks.append(
                            _task_plan(
                                dataset,
                                arch,
                                splits,
                                recipe,
                                (request, repeat),
                                seed,
                                evaluators,
                                reference[0],
                                methods,
                            )
                        )
    if not tasks:
        raise SuiteError("datasets", "no dataset x architecture pair is left to run")
    size_checks = {}
    for method in [*methods, reference[0]]:
        spec: MethodSpec = registry.get("method", method.name)  # type: ignore[assignment]
        if spec.check is not None:
            size_checks[method.label] = spec.check
    return Plan(suite, tasks, size_checks)


def _recipe_and_splits(suite: Suite, entry: SuiteEntry) -> tuple[TrainRecipe, SplitSizes]:
    """A dataset entry's recipe and split sizes: the suite's, overlaid with its own."""
    recipe = TrainRecipe(**{**asdict(suite.train), **entry.train})
    return recipe, SplitSizes(**{**asdict(suite.splits), **entry.splits})


def _refuse_shared_labels(key: str, components: list[Component]) -> None:
    """Two components with one label would be one leaderboard row: refuse, naming both."""
    seen: dict[str, Component] = {}
    for component in components:
        first = seen.setdefault(component.label, component)
        if first is not component:
            raise SuiteError(
                component.key or key,
                f"shares the label {component.label!r} with {first.key or 'another entry'}; "
                "set label = ...",
            )


def _label_dataset_variants(
    suite: Suite, datasets: list[tuple[SuiteEntry, list[Component]]]
) -> list[tuple[SuiteEntry, list[Component]]]:
    """Label apart the data set components of different entries that share a label.

    Each gets ``(k=v,...)`` with the settings in which the group differs: its
    parameters (``samples=500``), recipe (``train.lr=0.003``) and split sizes
    (``splits.target=300``), as a grid point is labelled. Entries that differ
    in nothing would run the same tasks twice: refused.
    """
    settings: dict[tuple[int, int], dict[str, Any]] = {}
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, (entry, components) in enumerate(datasets):
        recipe, splits = _recipe_and_splits(suite, entry)
        for j, component in enumerate(components):
            settings[i, j] = {
                **component.params,
                **{f"train.{k}": v for k, v in asdict(recipe).items()},
                **{f"splits.{k}": v for k, v in asdict(splits).items()},
            }
            groups.setdefault(component.label, []).append((i, j))
    relabelled = [list(components) for _, components in datasets]
    for label, members in groups.items():
        if len({i for i, _ in members}) < 2:
            continue  # one entry's grid points: already labelled apart
        if len({datasets[m][1][n].name for m, n in members}) > 1:
            _refuse_shared_labels("datasets", [datasets[m][1][n] for m, n in members])
        first: dict[str, str] = {}
        for i, j in members:
            ident = repr(sorted(settings[i, j].items()))
            if ident in first:
                raise SuiteError(
                    datasets[i][0].key,
                    f"repeats {first[ident]} (the same data set, parameters, train and splits)",
                )
            first[ident] = datasets[i][0].key
        names = list(settings[members[0]])
        differ = [k for k in names if len({repr(settings[m][k]) for m in members}) > 1]
        for i, j in members:
            text = ",".join(f"{k}={_short(settings[i, j][k])}" for k in differ)
            new = label[:-1] + "," + text + ")" if label.endswith(")") else f"{label}({text})"
            relabelled[i][j] = replace(relabelled[i][j], label=new)
    _refuse_shared_labels("datasets", [c for components in relabelled for c in components])
    return [(entry, relabelled[i]) for i, (entry, _) in enumerate(datasets)]


def _task_plan(
    dataset: Component,
    arch: Component,
    splits: SplitSizes,
    recipe: TrainRecipe,
    repeat_of: tuple[ForgetRequest, int],
    seed: int,
    evaluators: list[Component],
    reference: Component,
    methods: list[Component],
) -> TaskPlan:
    """One task of the plan: repeat ``repeat_of[1]`` of the request ``repeat_of[0]``.
    Every repeat has the same ``train_key`` (one original model, one set of shared
    artifacts) and its own ``key`` (its own forget set, cells and reference run)."""
    request, repeat = repeat_of
    train_ident = {
        "dataset": dataset.ident(),
        "architecture": arch.ident(),
        "splits": asdict(splits),
        "train": recipe_ident(recipe),
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
        repeat=repeat,
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
    """Check the plan against the real data, before training: split sizes, forget
    requests, and each method's parameters against the split sizes
    (:attr:`MethodSpec.check`). Warns (log) about an absurd training budget."""
    seen: set[str] = set()
    warned: set[str] = set()
    for task in plan.tasks:
        ident = content_key(
            {
                "d": task.dataset.ident(),
                "s": asdict(task.splits),
                "t": asdict(task.recipe),  # for the budget warning
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
        sizes = {name: int(part.numel()) for name, part in parts.items()}
        sizes["forget"] = int(forget.numel())
        sizes["retain"] = sizes["target"] - sizes["forget"]
        _check_method_sizes(plan, task, sizes, suite)
        _warn_budget(task, sizes["target"], warned)
        for text in task.splits.warnings():  # e.g. a shadow model smaller than the target
            message = f"{task.dataset.label}: {text}"
            if message not in warned:
                warned.add(message)
                log.warning("%s", message)


def _check_method_sizes(plan: Plan, task: TaskPlan, sizes: dict[str, int], suite: Suite) -> None:
    """Each method's :attr:`MethodSpec.check` on this task's split sizes."""
    for method in [*(cell.method for cell in task.cells), task.reference]:
        check = plan.size_checks.get(method.label)
        if check is None:
            continue
        try:
            check(dict(method.params), dict(sizes))
        except ParamError as exc:
            name = str(exc).split(":")[0]
            entry = next((e for e in suite.methods if e.key == method.key), None)
            where = "grid" if entry is not None and name in entry.grid else "params"
            key = f"{method.key}.{where}" if method.key.startswith("methods") else method.key
            raise SuiteError(
                key or "methods", f"{exc} ({task.dataset.label}, seed {task.seed})"
            ) from None


def _warn_budget(task: TaskPlan, target: int, warned: set[str]) -> None:
    """Log a warning, once per recipe and data set, for more than
    :data:`BUDGET_WARNING_SAMPLE_PASSES` sample-passes per trained model."""
    passes = task.recipe.epochs * target
    message = (
        f"{task.dataset.label}: train.epochs={task.recipe.epochs} x {target} target points = "
        f"{passes:.3g} sample-passes per trained model, more than the "
        f"{BUDGET_WARNING_SAMPLE_PASSES:.0e} at which unlearnbench warns; "
        "is train.epochs what you meant?"
    )
    if passes > BUDGET_WARNING_SAMPLE_PASSES and message not in warned:
        warned.add(message)
        log.warning("%s", message)
