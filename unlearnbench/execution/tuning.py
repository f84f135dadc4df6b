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
      validation task, i.e. retrained without ``V``; once per task, before
      its studies' first trials.
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

Running, on any executor
    The parent process owns every study and ``<out>/tuning.sqlite`` (its only
    writer, as it is of a run's results store). For each study it asks one
    trial, hands the task, the method, the trial's parameters and the
    reference's measurements to a worker of the executor (``local``: this
    process; ``processes``: long-lived spawned workers; ``ray``: one Ray
    task per trial), tells the outcome (COMPLETE with the user attributes
    ``gaps`` and ``unlearn_sample_passes``, PRUNED with ``pruned_because``,
    FAIL with ``failed_because``) and only then asks that study's next trial.
    Studies run in parallel on the workers; a study's trials run one after
    another, so a study sees the same history on every executor. A worker
    builds the task's validation data itself (seeded, the same everywhere);
    workers share the artifact cache, whose file locks build each shared
    artifact (the original model, a cached ``fit``) once.

Seeds, resuming and what is guaranteed
    Trial ``n`` of a study (``n``: the trial's ``index`` user attribute, the
    number of the study's trials that count before it; its Optuna number
    unless an earlier trial was interrupted) is asked with a fresh
    ``TPESampler(seed=derive_seed(tuning.seed, study name, n))``
    (:func:`trial_sampler`), and torch's global RNG is seeded per study before
    every trial. TPE reads only a study's COMPLETE and PRUNED trials, so what
    trial ``n`` asks depends only on the seed, ``n`` and the trials before it.
    ``tune`` resumes a study (``load_if_exists``) and runs only the trials
    missing from ``trials``; complete, pruned and failed trials count. A
    study's name holds a hash of the task, the seed, the cap and the space, so
    changing any of them starts a new study.

    A trial asked but never told (``tune`` killed, or its machine lost: the
    trial is left RUNNING) is marked FAIL with ``interrupted = true`` when its
    study is next opened (at once when ``tune`` stops on an error or Ctrl-C);
    it does not count, and its index is asked again, with the same seed and
    history, so with the same parameters. ``tune`` holds
    ``<out>/.locks/tuning.lock`` and refuses a folder another ``tune`` holds,
    so a RUNNING trial is always a dead run's. Guaranteed: a study stopped
    after any number of trials and resumed, on any executor, has for every
    index ``n`` the same parameters and the same outcome (state, objective,
    gaps) as the study run straight through, provided both ran on the same
    device and, on the CPU, at the same torch thread count per trial (recorded
    as ``torch_threads``; CPU results depend on it). Only the Optuna trial
    numbers after an interrupted trial differ (it keeps its number). A trial
    whose *worker* died while ``tune`` went on (an OOM kill, a segfault) is an
    outcome, not an interruption: it fails and counts, as in a straight run
    that met the same death.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from tqdm import tqdm

from unlearnbench.execution.cache import ArtifactCache, FileLock, content_key
from unlearnbench.execution.cell import run_method
from unlearnbench.execution.context import TaskContext
from unlearnbench.execution.executors.base import LOCKS_DIR, JobOutcome, JobPool
from unlearnbench.execution.isolation import TaskDataChanged
from unlearnbench.execution.limits import CellTimeout, time_limit
from unlearnbench.execution.plan import CellPlan, Component, Plan, TaskPlan
from unlearnbench.execution.suite import Suite, SuiteError, TuningConfig
from unlearnbench.execution.task_runner import Runner
from unlearnbench.host.registry import Registry
from unlearnbench.seeding import derive_seed, generator, seed_torch
from unlearnbench.specs import MethodSpec, Param, ParamError, UnlearnbenchError, resolve_params
from unlearnbench.task import Splits, Task

if TYPE_CHECKING:
    import optuna

    from unlearnbench.execution.run import PreparedRun

log = logging.getLogger(__name__)
STORAGE_FILE = "tuning.sqlite"
TUNING_LOCK = "tuning.lock"  # in <out>/.locks while a tune runs
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


# --- trials as jobs: what a worker (or this process) runs ----------------------------------


@dataclass(frozen=True)
class ReferenceJob:
    """Measure a task's reference on its validation data (once per task)."""

    task: TaskPlan
    tuning: TuningConfig


@dataclass(frozen=True)
class Reference:
    """The reference's measurements, and the validation task's split sizes (for the
    method's own parameter check, made in the parent before a trial is handed out)."""

    measurement: dict[str, float]
    sizes: dict[str, int]


@dataclass(frozen=True)
class TrialJob:
    """One trial as a worker runs it: the study's method with resolved parameters.

    ``seed`` seeds torch's global RNG before the trial, so a method drawing from
    it gets the same numbers in any process, after any other trial.
    """

    task: TaskPlan
    method: Component
    params: dict[str, Any]
    reference: dict[str, float]
    tuning: TuningConfig
    seed: int


@dataclass(frozen=True)
class TrialOutcome:
    """A trial's result: ``state`` is ``complete``, ``pruned`` or ``failed``."""

    state: str
    value: float | None = None
    gaps: dict[str, float] = field(default_factory=dict)
    work: float = 0.0
    reason: str = ""


VALIDATION_KEPT = 4  # tasks' validation data a worker keeps built
_VALIDATION: weakref.WeakKeyDictionary[Runner, dict[tuple[str, int], ValidationData]] = (
    weakref.WeakKeyDictionary()
)


def _validation(runner: Runner, plan: TaskPlan, seed: int) -> ValidationData:
    """A task's validation data, built once per runner (the last few tasks are kept)."""
    kept = _VALIDATION.setdefault(runner, {})
    key = (plan.key, seed)
    if key not in kept:
        if len(kept) >= VALIDATION_KEPT:
            kept.pop(next(iter(kept)))
        kept[key] = validation_data(runner.build_task(plan), seed)
    return kept[key]


def run_reference(runner: Runner, job: ReferenceJob) -> Reference:
    """The reference method run on the validation task (retrained without ``V``),
    measured; its models come from the artifact cache when another process built them."""
    data = _validation(runner, job.task, job.tuning.seed)
    seed_torch(derive_seed(job.tuning.seed, job.task.key, "tuning-reference"), runner.device)
    ctx = TaskContext(data.task, runner.cache)
    spec: MethodSpec = runner.registry.get("method", job.task.reference.name)  # type: ignore[assignment]
    outcome = run_method(spec, job.task.reference, data.task, ctx)
    return Reference(measure(outcome.model, data), data.task.splits.sizes())


TRIAL_LIMIT = "the per-trial time limit"


def run_trial(runner: Runner, job: TrialJob) -> TrialOutcome:
    """One trial in whichever process runs it: over the cap it is pruned, an
    exception (a diverged loss) or a non-finite objective fails it."""
    spec: MethodSpec = runner.registry.get("method", job.method.name)  # type: ignore[assignment]
    limit = runner.cell_timeout  # tune --trial-timeout
    try:
        data = _validation(runner, job.task, job.tuning.seed)
        seed_torch(job.seed, runner.device)
        started = time.monotonic()
        with time_limit(limit, TRIAL_LIMIT, "--trial-timeout"):
            value, gaps, work = evaluate_params(
                spec, job.method, job.params, data, job.reference, runner.cache, job.tuning
            )
    except CellTimeout as exc:  # too slow: the trial fails (and counts), the study goes on
        return TrialOutcome("failed", reason=f"the trial {exc}")
    except TaskDataChanged as exc:  # the trial fails; the next ones get fresh data
        runner.refresh_task_data(job.task.dataset)
        _VALIDATION.pop(runner, None)
        return TrialOutcome("failed", reason=str(exc))
    except WorkCapExceeded as exc:
        return TrialOutcome("pruned", reason=str(exc))
    except Exception as exc:  # a diverged trial fails (and counts), the study goes on
        return TrialOutcome("failed", reason=f"{type(exc).__name__}: {exc}")
    elapsed = time.monotonic() - started
    if limit and elapsed > limit:  # its plugin kept the alarm out
        return TrialOutcome(
            "failed", reason=f"the trial ran {elapsed:.1f} s, past {TRIAL_LIMIT} of {limit:g} s"
        )
    if not math.isfinite(value):
        return TrialOutcome("failed", reason=f"the objective is {value}")
    return TrialOutcome("complete", value, gaps, work)


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


# --- running studies: ask and tell in the parent -------------------------------------------


class TuningError(UnlearnbenchError, RuntimeError):
    """Tuning cannot go on: another ``tune`` uses the folder, or a reference failed."""


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
    """Every tuning check that needs no training (space, request kinds)."""
    return plan_studies(prepared.plan, registry)


def trial_sampler(seed: int, study: str, index: int) -> optuna.samplers.TPESampler:
    """The sampler that asks trial ``index`` of a study, seeded by that trial alone
    (numpy takes 32-bit seeds), so a resumed study asks what a straight run asks."""
    import optuna

    return optuna.samplers.TPESampler(seed=derive_seed(seed, study, index) % 2**32)


@dataclass
class _Live:
    """A study being run: its Optuna study, how many trials count, the one in flight."""

    study: Study
    ostudy: optuna.Study
    storage: Any
    spec: MethodSpec
    done: int
    trial: optuna.Trial | None = None

    @property
    def label(self) -> str:
        return self.study.name.rsplit(" | ", 1)[0]


def run_tuning(
    prepared: PreparedRun, registry: Registry, *, progress: bool = False
) -> list[StudyResult]:
    """Run (or resume) every study of a prepared suite into ``<out>/tuning.sqlite``,
    the trials on the prepared executor; ``progress``: a bar on stderr."""
    import optuna

    studies = check_tuning(prepared, registry)
    tuning = prepared.suite.tuning
    assert tuning is not None
    prepared.out.mkdir(parents=True, exist_ok=True)
    # optuna's own log repeats every failed trial with its traceback; ours is one line
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with _sole_tuner(prepared.out):
        storage = _storage(prepared.out, create=True)
        lives = [_open_study(study, storage, registry, tuning) for study in studies]
        pending = [live for live in lives if live.done < tuning.trials]
        if pending:
            total = sum(tuning.trials - live.done for live in pending)
            bar = tqdm(total=total, disable=not progress, unit="trial", dynamic_ncols=True)
            with bar, prepared.executor.jobs(len(pending)) as pool:
                _Loop(pending, pool, tuning, bar).run()
        return [_result(live) for live in lives]


@contextlib.contextmanager
def _sole_tuner(out: Path) -> Iterator[None]:
    """Hold ``<out>/.locks/tuning.lock`` while tuning, so a trial found RUNNING in the
    storage is a dead run's, never a live one's."""
    locks = out / LOCKS_DIR
    lock = FileLock(locks / TUNING_LOCK)
    if not lock.acquire(blocking=False):
        raise TuningError(
            f"another `unlearnbench tune` is tuning into {out}; wait for it to finish, "
            "or tune into another --out"
        )
    try:
        yield
    finally:
        lock.release()
        with contextlib.suppress(OSError):  # only when empty: a run may be using it
            locks.rmdir()


def _open_study(study: Study, storage: Any, registry: Registry, tuning: TuningConfig) -> _Live:
    """Create or load a study; mark the trials a dead run left running as interrupted;
    give a study with no trial that counts its defaults as trial 0."""
    import optuna

    ostudy = optuna.create_study(
        study_name=study.name,
        storage=storage,
        sampler=trial_sampler(tuning.seed, study.name, 0),
        direction="minimize",
        load_if_exists=True,
    )
    ostudy.set_user_attr("method", study.method.label)
    ostudy.set_user_attr("task_key", study.task.key)
    ostudy.set_user_attr("defaults", study.method.params)
    spec: MethodSpec = registry.get("method", study.method.name)  # type: ignore[assignment]
    live = _Live(study, ostudy, storage, spec, done=0)
    states = optuna.trial.TrialState
    for left in ostudy.get_trials(deepcopy=False, states=(states.RUNNING,)):
        why = "a tune that was killed or crashed left it running"
        _interrupt(live, left._trial_id, left.number, why)  # no public id of a stored trial
    live.done = len(_finished(ostudy))
    waiting = ostudy.get_trials(deepcopy=False, states=(states.WAITING,))
    if not live.done and not waiting:  # trial 0: the defaults, so tuned >= default
        defaults = {d.param.name: study.method.params[d.param.name] for d in study.space}
        if all(d.contains(defaults[d.param.name]) for d in study.space):
            ostudy.enqueue_trial(defaults, user_attrs={"defaults": True})
    return live


def _interrupt(live: _Live, trial_id: int, number: int, why: str) -> None:
    """Record a trial that never finished as FAIL with ``interrupted``: it does not
    count, so its index is asked again (same seed, same history: same parameters)."""
    import optuna

    live.storage.set_trial_user_attr(trial_id, "interrupted", True)
    live.storage.set_trial_user_attr(trial_id, "failed_because", f"interrupted: {why}")
    live.ostudy.tell(number, state=optuna.trial.TrialState.FAIL)


WAIT_S = 0.5  # how long to wait for a finished job before looking again


@dataclass
class _Loop:
    """Ask, run and tell until every study has ``tuning.trials`` trials that count.

    Each study has at most one trial in flight; the studies share the pool's
    workers. ``references``: task key -> its reference (``None`` while a worker
    measures it).
    """

    lives: list[_Live]
    pool: JobPool
    tuning: TuningConfig
    bar: Any
    references: dict[str, Reference | None] = field(default_factory=dict)

    def run(self) -> None:
        """Run to the end; a trial still in flight if this stops (an error, Ctrl-C)
        is marked interrupted."""
        by_name = {live.study.name: live for live in self.lives}
        try:
            while any(live.done < self.tuning.trials for live in self.lives):
                self._fill()
                for outcome in self.pool.wait(timeout=WAIT_S):
                    kind, name = cast(tuple[str, str], outcome.key)
                    if kind == "reference":
                        self.references[name] = self._reference(outcome, name)
                    else:
                        self._tell(by_name[name], _trial_outcome(outcome))
        finally:
            for live in self.lives:
                if live.trial is not None:
                    why = "tune stopped before the trial finished"
                    _interrupt(live, live.trial._trial_id, live.trial.number, why)
                    live.trial = None

    def _fill(self) -> None:
        """Use the pool's free slots: each task's reference first, then the next
        trial of each study with none in flight."""
        for live in self.lives:
            if self.pool.free <= 0:
                return
            if live.trial is not None or live.done >= self.tuning.trials:
                continue
            task = live.study.task
            if task.key not in self.references:
                self.references[task.key] = None
                job = ReferenceJob(task, self.tuning)
                self.pool.submit(("reference", task.key), run_reference, job)
                continue
            reference = self.references[task.key]
            if reference is None:
                continue
            trial = self._ask(live, reference)
            if trial is not None:
                self.pool.submit(("trial", live.study.name), run_trial, trial)

    def _reference(self, outcome: JobOutcome, task_key: str) -> Reference:
        if outcome.error is None:
            return cast(Reference, outcome.value)
        study = next(live.study for live in self.lives if live.study.task.key == task_key)
        raise TuningError(
            f"the reference {study.task.reference.label!r} failed on the validation task of "
            f"{study.name.split(' | ')[1]}, so its studies cannot be scored:\n{outcome.error}"
        )

    def _ask(self, live: _Live, reference: Reference) -> TrialJob | None:
        """Ask the study's next trial with the sampler of its index; a trial the
        method's own check refuses (a size that does not fit the task) is pruned."""
        tuning, study = self.tuning, live.study
        while live.done < tuning.trials:
            index = live.done
            live.ostudy.sampler = trial_sampler(tuning.seed, study.name, index)
            trial = live.trial = live.ostudy.ask()
            trial.set_user_attr("index", index)
            trial.set_user_attr("torch_threads", self.pool.threads)
            given = {**study.method.params, **{d.param.name: d.suggest(trial) for d in study.space}}
            params = resolve_params(live.spec.params, given)
            if live.spec.check is not None:
                try:
                    live.spec.check(params, reference.sizes)
                except ParamError as exc:
                    self._tell(live, TrialOutcome("pruned", reason=str(exc)))
                    continue
            seed = derive_seed(tuning.seed, study.name, "trial-torch")
            return TrialJob(study.task, study.method, params, reference.measurement, tuning, seed)
        return None

    def _tell(self, live: _Live, outcome: TrialOutcome) -> None:
        """Record the outcome of the study's trial in flight; it may then ask the next."""
        import optuna

        trial, live.trial = live.trial, None
        assert trial is not None
        states = optuna.trial.TrialState
        if outcome.state == "complete":
            trial.set_user_attr("gaps", outcome.gaps)
            trial.set_user_attr("unlearn_sample_passes", outcome.work)
            live.ostudy.tell(trial, outcome.value)
        elif outcome.state == "pruned":
            trial.set_user_attr("pruned_because", outcome.reason)
            live.ostudy.tell(trial, state=states.PRUNED)
        else:
            trial.set_user_attr("failed_because", outcome.reason)
            label = live.study.method.label
            log.warning("%s trial %d failed: %s", label, trial.number, outcome.reason)
            live.ostudy.tell(trial, state=states.FAIL)
        live.done += 1
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"{live.label}: trial {live.done}/{self.tuning.trials} {outcome.state}"
        )


def _trial_outcome(outcome: JobOutcome) -> TrialOutcome:
    """A job's outcome as a trial's: an error (its worker died) fails the trial."""
    if outcome.error is None:
        return cast(TrialOutcome, outcome.value)
    lines = outcome.error.strip().splitlines()
    return TrialOutcome("failed", reason=lines[-1] if lines else "the job failed")


def _result(live: _Live) -> StudyResult:
    import optuna

    study = live.study
    done = _finished(live.ostudy)
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
    """The trials that count: complete, pruned or failed, and not interrupted."""
    import optuna

    states = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.FAIL,
    )
    trials = study.get_trials(deepcopy=False, states=states)
    return [t for t in trials if not t.user_attrs.get("interrupted")]


def pending_studies(plan: Plan, registry: Registry, out: Path) -> tuple[int, int]:
    """How many of the plan's studies still miss trials in ``out``, and how many
    trials they miss (``--executor auto`` sizes the work with it; reads only)."""
    import optuna

    studies = plan_studies(plan, registry)
    tuning = plan.suite.tuning
    assert tuning is not None
    storage = _storage(out, create=False)
    existing = (
        set()
        if storage is None
        else {s.study_name for s in optuna.get_all_study_summaries(storage)}
    )
    missing = []
    for study in studies:
        done = 0
        if study.name in existing:
            done = len(_finished(optuna.load_study(study_name=study.name, storage=storage)))
        missing.append(max(0, tuning.trials - done))
    return sum(m > 0 for m in missing), sum(missing)


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


def finished_trials(out: Path, names: Sequence[str]) -> dict[str, int]:
    """How many trials of each named study finished (:func:`_finished`; 0: no study)."""
    import optuna

    storage = _storage(out, create=False)
    counts = dict.fromkeys(names, 0)
    if storage is None:
        return counts
    existing = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    for name in names:
        if name in existing:
            counts[name] = len(_finished(optuna.load_study(study_name=name, storage=storage)))
    return counts


def add_tuned_cells(plan: Plan, registry: Registry, out: Path) -> None:
    """Add a ``<label>[tuned]`` cell beside each tuned method's cell of every task.

    Raises :class:`SuiteError` (``tuning.tuned``) when a study is missing, or has
    not run all of ``[tuning] trials`` (a ``tune`` stopped part-way: its best-so-far
    parameters are not the tuned ones the board would call them).
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
    assert plan.suite.tuning is not None  # plan_studies checked it
    wanted = plan.suite.tuning.trials
    done = finished_trials(out, [s.name for s in studies])
    short = [name for name, n in done.items() if n < wanted]
    if short:
        raise SuiteError(
            "tuning.tuned",
            f"the tuning study {short[0]!r} has finished {done[short[0]]} of its {wanted} "
            "trials"
            + (f" (and {len(short) - 1} more studies are unfinished)" if len(short) > 1 else "")
            + f" in {Path(out) / STORAGE_FILE}: `tune` stopped part-way, so its best-so-far "
            f"parameters are not tuned ones. Finish it with `unlearnbench tune SUITE --out "
            f"{out}` (it resumes), or lower [tuning] trials to what ran",
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
