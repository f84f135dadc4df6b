"""Reading studies back: the ``<label>[tuned]`` cells a run adds with each study's
best parameters, what ``--executor auto`` still has to tune, and the summaries
``tune`` writes (``tuning.md``, ``tuning.json``).

A tuned cell is only added from a study that ran all its trials, so the board never
calls best-so-far parameters tuned. See docs/tuning.md ("Tuned runs").
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearnbench.execution.cache import content_key
from unlearnbench.execution.plan import CellPlan, Component, Plan
from unlearnbench.execution.suite import SuiteError, TuningOptions
from unlearnbench.execution.tuning.studies import (
    STORAGE_FILE,
    StudyResult,
    best_trial,
    finished,
    load_studies,
    plan_studies,
)
from unlearnbench.host.registry import Registry
from unlearnbench.specs import MethodSpec, resolve_params

TUNED_SUFFIX = "[tuned]"
log = logging.getLogger(__name__)


def best_params(out: Path, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
    """Each named study's best parameters (``None``: no study or no finished trial)."""
    import optuna

    found: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
    for name, study in load_studies(out, names).items():
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        best = best_trial(complete)
        if best is not None:
            found[name] = dict(best.params)
    return found


def finished_trials(out: Path, names: Sequence[str]) -> dict[str, int]:
    """How many trials of each named study finished (count, as in
    :func:`~unlearnbench.execution.tuning.studies.finished`; 0: no study)."""
    counts = dict.fromkeys(names, 0)
    for name, study in load_studies(out, names).items():
        counts[name] = len(finished(study))
    return counts


def pending_studies(plan: Plan, registry: Registry, out: Path) -> tuple[int, int]:
    """How many of the plan's studies still miss trials in ``out``, and how many
    trials they miss (``--executor auto`` sizes the work with it; reads only)."""
    studies = plan_studies(plan, registry)
    tuning = plan.suite.tuning
    assert tuning is not None
    done = finished_trials(out, [s.name for s in studies])
    missing = [max(0, tuning.trials - done[study.name]) for study in studies]
    return sum(m > 0 for m in missing), sum(missing)


def add_tuned_cells(plan: Plan, registry: Registry, out: Path) -> None:
    """Add a ``<label>[tuned]`` cell beside each tuned method's cell of every task.

    Raises :class:`SuiteError` (``tuning.tuned``) when a study is missing, or has
    not run all of ``[tuning] trials`` (a ``tune`` stopped part-way: its best-so-far
    parameters are not the tuned ones the board would call them). A study that ran
    all its trials without finishing one (each pruned, most often past the work cap,
    or failed) adds no tuned cell: the method has no setting within the budget, and
    a warning says so (the default row stays).
    """
    studies = plan_studies(plan, registry)
    found = best_params(out, [s.name for s in studies])
    assert plan.suite.tuning is not None  # plan_studies checked it
    wanted = plan.suite.tuning.trials
    done = finished_trials(out, [s.name for s in studies])
    none_fit = [s for s in studies if found[s.name] is None and done[s.name] >= wanted]
    for study in none_fit:
        log.warning(
            "no %s%s cell for %r: none of its %d trials finished within the budget "
            "(tuning.max_sample_passes = %g; see tuning.md), so the method has no tuned "
            "setting; its default row stays",
            study.method.label,
            TUNED_SUFFIX,
            study.name,
            wanted,
            plan.suite.tuning.max_sample_passes,
        )
    skipped = {s.name for s in none_fit}
    studies = [s for s in studies if s.name not in skipped]
    missing = [s.name for s in studies if found[s.name] is None]
    if missing:
        raise SuiteError(
            "tuning.tuned",
            f"no finished tuning study for {missing[0]!r}"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
            + f" in {Path(out) / STORAGE_FILE}; run `unlearnbench tune SUITE --out {out}` first",
        )
    short = [s.name for s in studies if done[s.name] < wanted]
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


def summary_markdown(results: Sequence[StudyResult], tuning: TuningOptions) -> str:
    """A table of every study: trials, pruned, the Avg. Gap of the best trial and of the
    defaults (in percent, as the leaderboard shows Avg. Gap), the best and the default
    parameters."""
    lines = [
        "# Tuning",
        "",
        f"{tuning.trials} trials per study, at most {tuning.max_sample_passes:g} unlearning "
        f"sample-passes per trial, TPE seed {tuning.seed}. Objective: the Avg. Gap to a "
        "retrained reference on a validation forget set (never the test data; see "
        "`unlearnbench.execution.tuning`), in percent as on the leaderboard (tuning.json "
        "keeps the fractions). Lower is better.",
        "",
        "| method | task | trials | pruned | Avg. Gap % (best) | Avg. Gap % (defaults) "
        "| best params | default params |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.method} | {r.task} | {r.trials} | {r.pruned} | {_percent(r.best_value)} | "
            f"{_percent(r.default_value)} | {_params_text(r.best_params)} | "
            f"{_params_text(r.defaults)} |"
        )
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    """An objective (a fraction, as the leaderboard's Avg. Gap) in percent."""
    return "—" if value is None else f"{value * 100:.2f}"


def _params_text(params: Mapping[str, Any]) -> str:
    return (
        ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(params.items())
        )
        or "—"
    )


def dumps(results: Sequence[StudyResult]) -> str:
    """The studies' results as JSON (``<out>/tuning.json``)."""
    return json.dumps([dataclasses.asdict(r) for r in results], indent=2, default=str)
