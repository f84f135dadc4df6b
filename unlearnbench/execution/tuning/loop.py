"""The Optuna loop: the parent process asks each study's next trial, hands it to a
worker of the executor, tells the outcome, and only then asks that study's next
one; it is the only writer of ``<out>/tuning.sqlite``.

One trial in flight per study and a sampler seeded per trial index make a study's
trials the same on every executor, resumed or not. See docs/tuning.md
("Running, on any executor" and "Seeds, resuming and what is guaranteed").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tqdm import tqdm

from unlearnbench.execution.cache import FileLock
from unlearnbench.execution.executors.base import LOCKS_DIR, JobOutcome, JobPool
from unlearnbench.execution.suite import TuningOptions
from unlearnbench.execution.tuning.studies import (
    Study,
    StudyResult,
    best_trial,
    check_tuning,
    finished,
    open_storage,
)
from unlearnbench.execution.tuning.trials import (
    Reference,
    ReferenceJob,
    TrialJob,
    TrialOutcome,
    run_reference,
    run_trial,
)
from unlearnbench.host.registry import Registry
from unlearnbench.seeding import derive_seed
from unlearnbench.specs import MethodSpec, ParamError, UnlearnbenchError, resolve_params

if TYPE_CHECKING:
    import optuna

    from unlearnbench.execution.run import PreparedRun

log = logging.getLogger(__name__)
TUNING_LOCK = "tuning.lock"  # in <out>/.locks while a tune runs


class TuningError(UnlearnbenchError, RuntimeError):
    """Tuning cannot go on: another ``tune`` uses the folder, or a reference failed."""


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
        storage = open_storage(prepared.out, create=True)
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


def _open_study(study: Study, storage: Any, registry: Registry, tuning: TuningOptions) -> _Live:
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
    live.done = len(finished(ostudy))
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
    tuning: TuningOptions
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
    done = finished(live.ostudy)
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    best = best_trial(complete)
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
