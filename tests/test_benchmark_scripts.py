"""The benchmark scripts that build tasks themselves still run, scaled down.

They reach plugins through the registry and the public API only (the
import-linter contract over ``benchmarks/``); these runs check they also still
work against the protocol (both stopped at the auxiliary split once).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "deepobliviate_vs_retrain.py": (
        [
            *("--samples", "1400", "--target", "800", "--blocks", "16"),
            *("--epochs-per-block", "1", "--positions", "0.3", "--many", "5"),
            *("--epsilons", "0.1"),
        ],
        "blocks retrained when the rule is replayed",
    ),
    "gan_unlearning.py": (
        [
            *("--sizes", "300", "--alphas", "0.5", "--forget", "20"),
            *("--epochs", "2", "--widths", "16"),
        ],
        "gan a=0.5",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("script", RUNS)
def test_the_benchmark_runs_scaled_down(script: str) -> None:
    args, expected = RUNS[script]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
