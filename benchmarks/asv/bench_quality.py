"""Quality of each method on the fixed tiny task, tracked across commits.

``track_accuracy_gap``: mean over test, retain and forget accuracy of
|method − retrain| (the accuracy part of SalUn's Avg. Gap).
``track_mia_gap``: |mia_efficacy(method) − mia_efficacy(retrain)| with the
``mia_efficacy`` evaluator's defaults (nan when that evaluator is missing).
Every method runs once, in ``setup_cache``; missing methods are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

from unlearnbench.specs import Evaluation, EvaluationInputs
from unlearnbench.training import accuracy

from .common import METHODS, run, tiny

MIA_EVALUATOR = "mia_efficacy"


def _mia(inputs: EvaluationInputs, ctx: object) -> float:
    from unlearnbench.testing import registry

    reg = registry()
    if MIA_EVALUATOR not in reg.names("evaluator"):
        return math.nan
    spec = reg.get("evaluator", MIA_EVALUATOR)
    result = spec.create({p.name: p.default for p in spec.params}).evaluate(inputs, ctx)  # type: ignore[union-attr]
    values = result.metrics if isinstance(result, Evaluation) else result
    return float(values[MIA_EVALUATOR])


class Quality:
    params: ClassVar[list[str]] = list(METHODS)
    param_names: ClassVar[list[str]] = ["method"]
    rounds = 1
    timeout = 900

    def setup_cache(self) -> dict[str, dict[str, float] | None]:
        task, ctx = tiny(Path.cwd() / "artifacts")
        original = ctx.original()
        reference = run("retrain", task, ctx)
        s = task.splits
        parts = [(task.x[i], task.y[i]) for i in (s.test, s.retain, s.forget)]

        def measure(model) -> tuple[list[float], float]:  # type: ignore[no-untyped-def]
            accs = [accuracy(model, x, y) for x, y in parts]
            inputs = EvaluationInputs(
                task=task,
                original=original,
                unlearned=model,
                reference=reference.model,
                costs={"unlearn_seconds": 0.0, "reference_seconds": 0.0},
                series={},
            )
            return accs, _mia(inputs, ctx)

        ref_accs, ref_mia = measure(reference.model)
        results: dict[str, dict[str, float] | None] = {}
        for name in METHODS:
            try:
                outcome = reference if name == "retrain" else run(name, task, ctx)
            except NotImplementedError:
                results[name] = None
                continue
            accs, mia = measure(outcome.model)
            gaps = [abs(a - r) for a, r in zip(accs, ref_accs, strict=True)]
            results[name] = {"accuracy_gap": sum(gaps) / len(gaps), "mia_gap": abs(mia - ref_mia)}
        return results

    def setup(self, results: dict[str, dict[str, float] | None], method: str) -> None:
        if results[method] is None:
            raise NotImplementedError(f"method {method!r} is not installed")

    def track_accuracy_gap(self, results: dict, method: str) -> float:
        return results[method]["accuracy_gap"]

    track_accuracy_gap.unit = "fraction"  # type: ignore[attr-defined]

    def track_mia_gap(self, results: dict, method: str) -> float:
        return results[method]["mia_gap"]

    track_mia_gap.unit = "fraction"  # type: ignore[attr-defined]
