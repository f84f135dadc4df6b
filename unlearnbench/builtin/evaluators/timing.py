"""``time``: wall time and work of the unlearning step, and speed-ups over the reference.

``speedup`` = reference (retrain) seconds / method seconds, both the timed
``unlearn`` step summed over a request stream, and both measured in the same
run: the host re-runs the reference in every run rather than reusing a time
from the artifact cache, so the ratio never divides times of different moments
or machines. Wall time still moves with the machine's load, so the work is also
counted in a machine-independent unit, sample-passes (one forward and backward
pass of one example; a GAN's critic steps and SISA's or DeepObliviate's
retrained slices or blocks included): ``work_speedup`` = reference work /
method work. For methods that define a naive retraining under their own
procedure, ``naive_work_speedup`` = its work / the method's (DeepObliviate's
block speed-up is the same idea in blocks). Methods that do (almost) nothing
get huge speed-ups; times are floored at one microsecond and work at one
sample-pass to stay finite, and leaderboards never mark the do-nothing
``original`` best. (The module is ``timing``, not ``time``: it shadows no
standard-library module.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import EvaluatorSpec, Metric, hookimpl
from unlearnbench.specs import EvaluationInputs, MethodContext

FLOOR_SECONDS = 1e-6
FLOOR_WORK = 1.0


class Time:
    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        costs = inputs.costs
        seconds = float(costs["unlearn_seconds"])
        work = max(float(costs["unlearn_sample_passes"]), FLOOR_WORK)
        out = {
            "unlearn_seconds": seconds,
            "speedup": float(costs["reference_seconds"]) / max(seconds, FLOOR_SECONDS),
            "unlearn_sample_passes": float(costs["unlearn_sample_passes"]),
            "work_speedup": float(costs["reference_sample_passes"]) / work,
        }
        if "naive_sample_passes" in costs:
            out["naive_work_speedup"] = float(costs["naive_sample_passes"]) / work
        return out


def create(params: Mapping[str, Any]) -> Time:
    return Time()


@hookimpl
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    return [
        EvaluatorSpec(
            name="time",
            create=create,
            metrics=(
                Metric(
                    "unlearn_seconds", "lower", "s", "wall time of the unlearning step", role="cost"
                ),
                Metric(
                    "speedup",
                    "higher",
                    "x",
                    "reference seconds / method seconds (both timed in the same run)",
                    role="speed",
                ),
                Metric(
                    "unlearn_sample_passes",
                    "lower",
                    "samples",
                    "work of the unlearning step: forward+backward passes of single examples",
                    role="cost",
                ),
                Metric(
                    "work_speedup",
                    "higher",
                    "x",
                    "reference sample-passes / method sample-passes (machine-independent)",
                    role="speed",
                ),
                Metric(
                    "naive_work_speedup",
                    "higher",
                    "x",
                    "sample-passes of exact retraining under the method's own procedure / "
                    "the method's",
                    role="speed",
                ),
            ),
            description=__doc__,
        )
    ]
