"""Hyper-parameter tuning on one budget for every method, never on the test data.

``unlearnbench tune SUITE`` runs one Optuna study per method and task (the
task's seed included: splits are drawn per seed, so data held out for seed 0
can be seed 1's test data); ``[tuning] tuned = true`` then runs each method
with its study's best parameters beside its defaults, labelled
``<label>[tuned]``.

Search space
    The method's :class:`~unlearnbench.specs.Param` entries with
    ``tunable=True`` over their declared range (``choices``, ``search_range``
    or ``[minimum, maximum]``, log scale when ``log``), less those the suite
    sets in ``params``/``grid`` (a value the suite pins is not searched).
    ``[tuning.space.<label>]`` narrows it: ``name = true`` (declared range)
    or ``name = [low, high]`` (numbers) or a list of choices.

Validation protocol (what a trial is scored on)
    - *Validation forget set* ``V``: of the same kind and size as the
      request, drawn (seeded by ``tuning.seed``) from ``retain`` (the
      target set less the evaluated forget set ``F``): ``random``: ``|F|``
      random retain points; ``class``: the retain points of another class
      (the same ``fraction``). Other request kinds cannot be tuned yet
      (``block``, ``backdoor``: their forget set changes or fixes the
      training data) and are refused.
    - *Validation task*: the task with ``forget = V``, ``retain = target -
      V``, a stream of ``V`` in the request's number of steps, and
      ``test``, ``nonmember``, ``shadow_in``, ``shadow_out`` **empty**, so a
      method cannot read them; ``auxiliary`` is halved: the method may use the
      first half (GAN's non-member posteriors), the second half ``H`` is
      the held-out validation split. The original model is the task's
      own (trained on ``target``, ``F`` included, as in the evaluated run).
    - *Reference*: the suite's reference method (retrain) run on the
      validation task, i.e. retrained without ``V``; once per study.
    - *Objective* (lower is better): the Avg. Gap, the mean of
      ``|Δ accuracy on H|``, ``|Δ accuracy on V|``, ``|Δ accuracy on E|``
      (``E``: up to 1000 seeded points of ``target - V - F``) and
      ``|Δ loss-threshold membership AUC of V against H|``, each between the
      trial's model and the reference. It never evaluates on ``F``, ``test``,
      ``nonmember`` or ``shadow_*`` (:attr:`ValidationData.touched` lists
      every index it reads or hands the method beyond the training set).

Budget
    ``tuning.trials`` trials per study and ``tuning.max_sample_passes``: a
    trial whose *unlearning* work (sample-passes counted by the
    :class:`TaskContext`, from the first ``unlearn`` step) exceeds the cap is
    stopped at the next counting point and recorded as pruned. Trial 0 of
    every study runs the method's defaults (when inside the searched range),
    so a tuned method is never worse than its defaults on validation; a
    trial that raises (a diverged loss) fails and still counts. ``fit`` (the
    shared standard training, or SISA's / DeepObliviate's stored training,
    cached) is outside the cap: it is the same for every trial.

Studies live in ``<out>/tuning.sqlite`` (``TPESampler(seed=tuning.seed)``);
``tune`` resumes them (``load_if_exists``) and runs only the trials missing
from ``trials`` (finished or pruned ones count). A study's name holds a hash
of the task, the seed, the cap and the space, so changing any of them starts
a new study. Only the local executor runs trials (in this process).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from unlearnbench.execution.cache import ArtifactCache, content_key
from unlearnbench.execution.cell import TaskContext, run_method
from unlearnbench.execution.plan import CellPlan, Component, Plan, TaskPlan
from unlearnbench.execution.suite import Suite, SuiteError, TuningConfig
from unlearnbench.host.registry import Registry
from unlearnbench.seeding import generator
from unlearnbench.specs import MethodSpec, Param, ParamError, resolve_params
from unlearnbench.task import Splits, Task

if TYPE_CHECKING:
    import optuna

    from unlearnbench.execution.run import PreparedRun

log = logging.getLogger(__name__)
STORAGE_FILE = "tuning.sqlite"
TUNED_SUFFIX = "[tuned]"
RETAIN_EVAL_POINTS = 1000
TUNABLE_REQUESTS = ("random", "class")


class WorkCapExceeded(RuntimeError):
    """A trial's unlearning work passed ``tuning.max_sample_passes``."""


class CappedContext(TaskContext):
    """A :class:`TaskContext` that stops a trial once its unlearning work passes a cap.

    The cap applies from :meth:`start_cap` (called before the first
    ``unlearn``); every counting point (``train``, ``add_work``, a cached
    artifact's work) checks it.
    """

    def __init__(self, task: Task, cache: ArtifactCache, cap: float) -> None:
        super().__init__(task, cache)
        self.cap = cap
        self.cap_start: float | None = None

    def start_cap(self) -> None:
        self.cap_start = self.work

    @property
    def capped_work(self) -> float:
        return 0.0 if self.cap_start is None else self.work - self.cap_start

    def _check(self) -> None:
        if self.cap_start is not None and self.capped_work > self.cap:
            raise WorkCapExceeded(
                f"unlearning work {self.capped_work:.0f} sample-passes exceeds the cap "
                f"tuning.max_sample_passes = {self.cap:.0f}"
            )

    def add_work(self, sample_passes: float) -> None:
        super().add_work(sample_passes)
        self._check()

    def train(self, *args: Any, **kwargs: Any) -> Any:
        stats = super().train(*args, **kwargs)
        self._check()
        return stats

    def cached(self, name: str, params: Mapping[str, Any], build: Any) -> dict[str, Any]:
        value = super().cached(name, params, build)
        self._check()
        return value


# --- the search space -------------------------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: its declaration and the range searched."""

    param: Param
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        p = self.param
        if self.choices:
            return trial.suggest_categorical(p.name, list(self.choices))
        if p.kind is int:
            return trial.suggest_int(p.name, math.ceil(self.low), math.floor(self.high), log=p.log)
        return trial.suggest_float(p.name, self.low, self.high, log=p.log)

    def contains(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        return self.low <= value <= self.high

    def describe(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.param.log}


def search_space(
    spec: MethodSpec, component: Component, suite: Suite, given: Mapping[str, Any]
) -> list[Dimension]:
    """The dimensions searched for one method entry; bad names and ranges raise
    :class:`SuiteError` naming ``tuning.space.<label>.<name>``."""
    tuning = suite.tuning or TuningConfig()
    label = _entry_label(suite, component)
    declared = {p.name: p for p in spec.params}
    tunables = {name: p for name, p in declared.items() if p.tunable}
    wanted = tuning.space.get(label)
    dims = []
    if wanted is None:
        for p in tunables.values():
            if p.name not in given:
                dims.append(_dimension(p, True, f"tuning.space.{label}.{p.name}"))
        return dims
    for name, value in wanted.items():
        key = f"tuning.space.{label}.{name}"
        if name not in tunables:
            what = "not a parameter" if name not in declared else "not tunable"
            raise SuiteError(
                key,
                f"is {what} of method {spec.name!r}; its tunables: {sorted(tunables) or 'none'}",
            )
        if name in given:
            raise SuiteError(key, "is also set in the method's params or grid; set it in one place")
        dims.append(_dimension(tunables[name], value, key))
    return dims


def _dimension(p: Param, value: Any, key: str) -> Dimension:
    declared = p.tuning_range()
    if value is True:
        if declared[0] == "choices":
            return Dimension(p, choices=tuple(declared[1:]))
        return Dimension(p, float(declared[0]), float(declared[1]))
    if not isinstance(value, list) or not value:
        raise SuiteError(key, f"expected true or a non-empty list, got {value!r}")
    if declared[0] == "choices":
        for item in value:
            if item not in declared[1:]:
                raise SuiteError(key, f"{item!r} is not one of {list(declared[1:])}")
        return Dimension(p, choices=tuple(value))
    if len(value) != 2 or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        raise SuiteError(key, f"expected [low, high] (two numbers), got {value!r}")
    low, high = float(value[0]), float(value[1])
    if (p.kind is int and math.ceil(low) > math.floor(high)) or not low < high:
        raise SuiteError(key, f"empty range [{low:g}, {high:g}]")
    if p.log and low <= 0:
        raise SuiteError(key, f"a log range must start above 0, got {low:g}")
    for end in (low, high):
        try:
            p.coerce(int(end) if p.kind is int else end)
        except ParamError as exc:
            raise SuiteError(key, f"range end {exc}") from None
    return Dimension(p, low, high)


def _entry_label(suite: Suite, component: Component) -> str:
    entry = next((e for e in suite.methods if e.key == component.key), None)
    return (entry.label or entry.name) if entry is not None else component.label


def _given(suite: Suite, component: Component) -> dict[str, Any]:
    """The parameters the suite sets for this component (params and grid point)."""
    entry = next((e for e in suite.methods if e.key == component.key), None)
    if entry is None:
        return {}
    return {**entry.params, **{k: component.params[k] for k in entry.grid}}


@dataclass
class Study:
    """One study's identity: the task, the method component, its search space."""

    task: TaskPlan
    method: Component
    space: list[Dimension]
    name: str


def plan_studies(plan: Plan, registry: Registry) -> list[Study]:
    """One study per (task, method with something to tune), checked before training.

    The reference method is never tuned. Raises :class:`SuiteError` on a bad
    space or on a request kind tuning does not support.
    """
    suite = plan.suite
    tuning = suite.tuning
    if tuning is None:
        raise SuiteError("tuning", "the suite has no [tuning] table (trials, max_sample_passes)")
    labels = {_entry_label(suite, c.method) for t in plan.tasks for c in t.cells}
    for label in tuning.space:
        if label not in labels:
            raise SuiteError(
                f"tuning.space.{label}", f"names no method of the suite (methods: {sorted(labels)})"
            )
    studies = []
    for task in plan.tasks:
        for cell in task.cells:
            if cell.method.ident() == task.reference.ident():
                continue
            spec: MethodSpec = registry.get("method", cell.method.name)  # type: ignore[assignment]
            space = search_space(spec, cell.method, suite, _given(suite, cell.method))
            if not space:
                continue
            if task.request.kind not in TUNABLE_REQUESTS:
                index = suite.requests.index(task.request)
                raise SuiteError(
                    f"requests[{index}]",
                    f"tuning supports {list(TUNABLE_REQUESTS)} requests, not "
                    f"{task.request.kind!r} (its forget set changes the training data)",
                )
            name = study_name(task, cell.method, space, tuning)
            studies.append(Study(task, cell.method, space, name))
    return studies


def study_name(
    task: TaskPlan, method: Component, space: Sequence[Dimension], tuning: TuningConfig
) -> str:
    ident = {
        "task": task.key,
        "method": method.ident(),
        "space": {d.param.name: d.describe() for d in space},
        "seed": tuning.seed,
        "cap": tuning.max_sample_passes,
    }
    return (
        f"{method.label} | {task.dataset.label}/{task.architecture.label}/"
        f"{task.request.label_text}/seed {task.seed} | {content_key(ident)[:16]}"
    )


# --- the validation protocol --------------------------------------------------------------


@dataclass
class ValidationData:
    """The validation task and the index sets the objective evaluates on."""

    task: Task
    forget: torch.Tensor  # V
    retain_eval: torch.Tensor  # E ⊂ target - V - F
    holdout: torch.Tensor  # H: the held-out half of auxiliary
    method_auxiliary: torch.Tensor  # the half of auxiliary the method may use
    touched: set[int] = field(default_factory=set)  # every index read or handed out

    def record(self, indices: torch.Tensor) -> None:
        self.touched.update(int(i) for i in indices.tolist())


def validation_forget(task: Task, seed: int) -> torch.Tensor:
    """``V``: of the request's kind and size, from ``retain`` (disjoint from ``F``)."""
    retain, request = task.splits.retain, task.request
    labels = task.clean_y
    if request.kind == "random":
        count = task.splits.forget.numel()
        if count >= retain.numel():
            raise SuiteError("tuning", "the retain set is too small for a validation forget set")
        perm = torch.randperm(retain.numel(), generator=generator(seed, "tuning-forget"))
        return retain[perm.to(retain.device)[:count]]
    if request.kind == "class":
        present = sorted({int(c) for c in labels[retain].tolist()} - {request.label})
        if not present:
            raise SuiteError("tuning", "no other class in the retain set to validate on")
        pick = torch.randint(len(present), (1,), generator=generator(seed, "tuning-class"))
        chosen = retain[labels[retain] == present[int(pick)]]
        if request.fraction:
            keep = max(1, int(request.fraction * chosen.numel()))
            perm = torch.randperm(chosen.numel(), generator=generator(seed, "tuning-cls"))
            chosen = chosen[perm.to(chosen.device)[:keep]]
        return chosen
    raise SuiteError("requests", f"tuning does not support {request.kind!r} requests")


def validation_data(task: Task, seed: int) -> ValidationData:
    """The validation task of :mod:`this protocol <unlearnbench.execution.tuning>`."""
    splits = task.splits
    v = validation_forget(task, seed)
    retain = splits.target[~torch.isin(splits.target, v)]
    pool = retain[~torch.isin(retain, splits.forget)]  # target - V - F
    perm = torch.randperm(pool.numel(), generator=generator(seed, "tuning-retain"))
    retain_eval = pool[perm.to(pool.device)[:RETAIN_EVAL_POINTS]]
    aux = splits.auxiliary
    perm = torch.randperm(aux.numel(), generator=generator(seed, "tuning-aux")).to(aux.device)
    half = aux.numel() // 2
    method_aux, holdout = aux[perm[:half]], aux[perm[half:]]
    if holdout.numel() == 0:
        raise SuiteError(
            "splits.auxiliary", "tuning needs held-out validation data: auxiliary is empty"
        )
    empty = splits.target.new_empty(0)
    vsplits = Splits(
        target=splits.target,
        forget=v,
        retain=retain,
        nonmember=empty,
        test=empty,
        shadow_in=empty,
        shadow_out=empty,
        auxiliary=method_aux,
    )
    order = v[torch.randperm(v.numel(), generator=generator(seed, "tuning-stream")).to(v.device)]
    steps = list(torch.tensor_split(order, min(task.request.steps, max(1, v.numel()))))
    vtask = dataclasses.replace(
        task, key=f"{task.key}:validation:{seed}", splits=vsplits, forget_steps=steps
    )
    data = ValidationData(vtask, v, retain_eval, holdout, method_aux)
    data.record(method_aux)  # handed to the method beyond its training set
    return data


@torch.no_grad()
def _losses(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example cross-entropy and correctness (1.0 / 0.0), in batches of 1024."""
    model.eval()
    losses, correct = [x.new_empty(0)], [x.new_empty(0)]
    for start in range(0, x.shape[0], 1024):
        logits = model(x[start : start + 1024]).float()
        labels = y[start : start + 1024]
        losses.append(nn.functional.cross_entropy(logits, labels, reduction="none"))
        correct.append((logits.argmax(1) == labels).float())
    return torch.cat(losses), torch.cat(correct)


def _auc(members: torch.Tensor, others: torch.Tensor) -> float:
    """P(loss of a member < loss of a non-member) (ties count half)."""
    if members.numel() == 0 or others.numel() == 0:
        return 0.5
    diff = others[None, :] - members[:, None]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def measure(model: nn.Module, data: ValidationData) -> dict[str, float]:
    """Accuracy on H, V, E and the loss-threshold membership AUC of V against H."""
    task = data.task
    out = {}
    losses = {}
    for name, idx in (("val", data.holdout), ("forget", data.forget), ("retain", data.retain_eval)):
        data.record(idx)
        losses[name], correct = _losses(model, task.x[idx], task.y[idx])
        out[f"{name}_accuracy"] = float(correct.mean()) if idx.numel() else 0.0
    out["membership_auc"] = _auc(losses["forget"], losses["val"])
    return out


def avg_gap(model: dict[str, float], reference: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The objective: the mean absolute gap to the reference, and each gap."""
    gaps = {f"{k}_gap": abs(model[k] - reference[k]) for k in reference}
    return sum(gaps.values()) / len(gaps), gaps


# --- running studies ------------------------------------------------------------------------


@dataclass
class StudyResult:
    name: str
    method: str
    task: str
    trials: int
    pruned: int
    best_value: float | None
    best_params: dict[str, Any]
    defaults: dict[str, Any]
    default_value: float | None = None  # the defaults' Avg. Gap (trial 0), when in range


def storage_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / STORAGE_FILE}"


def _storage(out: Path, *, create: bool) -> Any:
    import optuna

    path = Path(out) / STORAGE_FILE
    if not create and not path.exists():
        return None
    return optuna.storages.RDBStorage(storage_url(out))


def check_tuning(prepared: PreparedRun, registry: Registry) -> list[Study]:
    """Every tuning check that needs no training (executor, space, request kinds)."""
    if type(prepared.executor).__name__ != "LocalExecutor":
        raise SuiteError("", "tune runs trials in this process only: use the local executor")
    return plan_studies(prepared.plan, registry)


def run_tuning(
    prepared: PreparedRun, registry: Registry, *, progress: bool = False
) -> list[StudyResult]:
    """Run (or resume) every study of a prepared suite into ``<out>/tuning.sqlite``."""
    import optuna

    studies = check_tuning(prepared, registry)
    tuning = prepared.suite.tuning
    assert tuning is not None
    prepared.out.mkdir(parents=True, exist_ok=True)
    storage = _storage(prepared.out, create=True)
    # optuna's own log repeats every failed trial with its traceback; ours is one line
    optuna.logging.set_verbosity(optuna.logging.INFO if progress else optuna.logging.ERROR)
    results = []
    tasks: dict[str, tuple[ValidationData, dict[str, float]]] = {}
    for study in studies:
        if study.task.key not in tasks:
            tasks[study.task.key] = _validation_setup(prepared, registry, study.task, tuning)
        data, reference = tasks[study.task.key]
        results.append(_run_study(study, prepared, registry, data, reference, tuning, storage))
    return results


def _validation_setup(
    prepared: PreparedRun, registry: Registry, plan: TaskPlan, tuning: TuningConfig
) -> tuple[ValidationData, dict[str, float]]:
    """The task's validation data, and the reference's measurements on it."""
    task = prepared.runner.build_task(plan)
    data = validation_data(task, tuning.seed)
    ctx = TaskContext(data.task, prepared.runner.cache)
    spec: MethodSpec = registry.get("method", plan.reference.name)  # type: ignore[assignment]
    outcome = run_method(spec, plan.reference, data.task, ctx)
    return data, measure(outcome.model, data)


def _run_study(
    study: Study,
    prepared: PreparedRun,
    registry: Registry,
    data: ValidationData,
    reference: dict[str, float],
    tuning: TuningConfig,
    storage: Any,
) -> StudyResult:
    import optuna

    spec: MethodSpec = registry.get("method", study.method.name)  # type: ignore[assignment]
    sampler = optuna.samplers.TPESampler(seed=tuning.seed)
    ostudy = optuna.create_study(
        study_name=study.name,
        storage=storage,
        sampler=sampler,
        direction="minimize",
        load_if_exists=True,
    )
    ostudy.set_user_attr("method", study.method.label)
    ostudy.set_user_attr("task_key", study.task.key)
    ostudy.set_user_attr("defaults", study.method.params)
    sizes = data.task.splits.sizes()

    def objective(trial: optuna.Trial) -> float:
        given = {**study.method.params, **{d.param.name: d.suggest(trial) for d in study.space}}
        params = resolve_params(spec.params, given)
        if spec.check is not None:
            try:
                spec.check(params, sizes)
            except ParamError as exc:
                trial.set_user_attr("pruned_because", str(exc))
                raise optuna.TrialPruned(str(exc)) from None
        try:
            value, gaps, work = evaluate_params(
                spec, study.method, params, data, reference, prepared.runner.cache, tuning
            )
        except WorkCapExceeded as exc:
            trial.set_user_attr("pruned_because", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:  # a diverged trial fails (and counts), the study goes on
            trial.set_user_attr("failed_because", f"{type(exc).__name__}: {exc}")
            log.warning("%s trial %d failed: %s", study.method.label, trial.number, exc)
            raise
        trial.set_user_attr("gaps", gaps)
        trial.set_user_attr("unlearn_sample_passes", work)
        return value

    if not ostudy.get_trials(deepcopy=False):  # trial 0: the defaults, so tuned >= default
        defaults = {d.param.name: study.method.params[d.param.name] for d in study.space}
        if all(d.contains(defaults[d.param.name]) for d in study.space):
            ostudy.enqueue_trial(defaults, user_attrs={"defaults": True})
    done = _finished(ostudy)
    missing = tuning.trials - len(done)
    if missing > 0:
        ostudy.optimize(objective, n_trials=missing, catch=(Exception,))
    done = _finished(ostudy)
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    best = _best(complete)
    default = [t.value for t in complete if t.user_attrs.get("defaults")]
    return StudyResult(
        name=study.name,
        method=study.method.label,
        task=study.name.split(" | ")[1],
        trials=len(done),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in done),
        best_value=None if best is None else best.value,
        best_params={} if best is None else dict(best.params),
        defaults={d.param.name: study.method.params[d.param.name] for d in study.space},
        default_value=default[0] if default else None,
    )


def _best(complete: Sequence[optuna.trial.FrozenTrial]) -> optuna.trial.FrozenTrial | None:
    """The finished trial of lowest objective (the first of ties), or ``None``."""
    scored = [t for t in complete if t.value is not None]
    return min(scored, key=lambda t: float(t.value or 0.0)) if scored else None


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    import optuna

    states = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    return study.get_trials(deepcopy=False, states=states)


def evaluate_params(
    spec: MethodSpec,
    component: Component,
    params: dict[str, Any],
    data: ValidationData,
    reference: dict[str, float],
    cache: ArtifactCache,
    tuning: TuningConfig,
) -> tuple[float, dict[str, float], float]:
    """One trial: fit, then the capped unlearning stream on ``V``; the Avg. Gap,
    the gaps, and the unlearning work. Raises :class:`WorkCapExceeded`."""
    task = data.task
    ctx = CappedContext(task, cache, tuning.max_sample_passes)
    method = spec.create(params)
    state = method.fit(task, ctx)
    ctx.start_cap()
    result = None
    for forget in task.forget_steps:
        result = method.unlearn(state, forget, task, ctx)
        state = result.state
    assert result is not None
    value, gaps = avg_gap(measure(result.model, data), reference)
    return value, gaps, ctx.capped_work


# --- reading studies back: tuned cells ----------------------------------------------------


def best_params(out: Path, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """Each named study's best parameters (``None``: no study or no finished trial)."""
    import optuna

    storage = _storage(out, create=False)
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
    if storage is None:
        return found
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    for name in names:
        if name not in existing:
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        complete = study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
        best = _best(complete)
        if best is not None:
            found[name] = dict(best.params)
    return found


def add_tuned_cells(plan: Plan, registry: Registry, out: Path) -> None:
    """Add a ``<label>[tuned]`` cell beside each tuned method's cell of every task.

    Raises :class:`SuiteError` (``tuning.tuned``) when a study is missing.
    """
    studies = plan_studies(plan, registry)
    found = best_params(out, [s.name for s in studies])
    missing = [s.name for s in studies if found[s.name] is None]
    if missing:
        raise SuiteError(
            "tuning.tuned",
            f"no finished tuning study for {missing[0]!r}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            + f" in {Path(out) / STORAGE_FILE}; run `unlearnbench tune SUITE --out {out}` first",
        )
    for study in studies:
        spec: MethodSpec = registry.get("method", study.method.name)  # type: ignore[assignment]
        params = resolve_params(spec.params, {**study.method.params, **(found[study.name] or {})})
        label = study.method.label + TUNED_SUFFIX
        component = Component(study.method.name, params, label, study.method.key)
        cell_id = content_key({"task": study.task.key, "method": component.ident(), "tuned": True})
        study.task.cells.append(CellPlan(cell_id, component))
        if spec.check is not None:
            plan.size_checks[label] = spec.check


def summary_markdown(results: Sequence[StudyResult], tuning: TuningConfig) -> str:
    """A table of every study: trials, pruned, best Avg. Gap, best and default params."""
    lines = [
        "# Tuning",
        "",
        f"{tuning.trials} trials per study, at most {tuning.max_sample_passes:g} unlearning "
        f"sample-passes per trial, TPE seed {tuning.seed}. Objective: the Avg. Gap to a "
        "retrained reference on a validation forget set (never the test data; see "
        "`unlearnbench.execution.tuning`). Lower is better.",
        "",
        "| method | task | trials | pruned | Avg. Gap: best | defaults | best params | defaults |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        best = "—" if r.best_value is None else f"{r.best_value:.4f}"
        default = "—" if r.default_value is None else f"{r.default_value:.4f}"
        lines.append(
            f"| {r.method} | {r.task} | {r.trials} | {r.pruned} | {best} | {default} | "
            f"{_params_text(r.best_params)} | {_params_text(r.defaults)} |"
        )
    return "\n".join(lines) + "\n"


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(params.items())
    ) or "—"


def dumps(results: Sequence[StudyResult]) -> str:
    """The studies' results as JSON (``<out>/tuning.json``)."""
    return json.dumps([dataclasses.asdict(r) for r in results], indent=2, default=str)
