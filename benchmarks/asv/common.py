"""Shared set-up of the asv benchmarks: one fixed tiny task, methods by name.

The task is ``unlearnbench.testing``'s tiny real task (digits, a one-layer MLP
of 32 units, 300 training points, 5 epochs, 10 random points forgotten, seed
0), so every commit is measured on exactly the same work. Trained models go to
an artifact cache directory made by ``setup_cache`` and shared by the
benchmark processes of one class.

Only the public API is used (``unlearnbench``, ``.specs``, ``.task``,
``.training``, ``.testing``: paths that exist in older commits too), so asv
can run these benchmarks against the history.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unlearnbench import MethodSpec, Unlearned
from unlearnbench.task import ForgetRequest, MethodContext, Task
from unlearnbench.testing import make_task, registry, run_unlearning

METHODS = ("retrain", "original", "sisa", "gan", "deepobliviate")
"""Methods benchmarked; those not installed are skipped (NotImplementedError)."""
REQUEST = ForgetRequest(kind="random", count=10)
THREADS = 2


def tiny(cache_dir: str | Path) -> tuple[Task, MethodContext]:
    torch.set_num_threads(THREADS)
    return make_task(Path(cache_dir), request=REQUEST)


def method_spec(name: str) -> MethodSpec:
    """The registered method, or NotImplementedError, which makes asv skip it."""
    reg = registry()
    if name not in reg.names("method"):
        raise NotImplementedError(f"method {name!r} is not installed")
    return reg.get("method", name)  # type: ignore[return-value]


def run(name: str, task: Task, ctx: MethodContext) -> Unlearned:
    """``fit`` then ``unlearn`` over the request's stream, as the runner does for one cell."""
    result = run_unlearning(method_spec(name), task, ctx)
    result.model.eval()
    return result
