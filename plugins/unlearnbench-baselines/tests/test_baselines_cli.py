"""End to end through the installed entry point: the ``unlearnbench`` command
finds the plugin, runs every baseline in a suite, and blocking the plugin
removes its methods."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_baselines_contract import METHODS, fast

SUITE = """
name = "baselines-e2e"
seeds = [0]
reference = "retrain"
evaluators = ["accuracy", "consistency", "costs"]

[splits]
target = 300
nonmember = 100
test = 200
shadow_in = 150
shadow_out = 150

[train]
epochs = 5
batch_size = 32
lr = 0.003

[[datasets]]
name = "digits"

[[architectures]]
name = "mlp"
params = { widths = [32] }

[[methods]]
name = "retrain"

[[methods]]
name = "original"
"""


def inline(params: dict[str, int]) -> str:
    return ", ".join(f"{key} = {value}" for key, value in params.items())


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("unlearnbench", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "unlearnbench.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def test_blocking_the_plugin_removes_its_methods():
    listed = cli("list", "methods")
    assert listed.returncode == 0, listed.stderr
    blocked = cli("list", "methods", env={"UNLEARNBENCH_BLOCK_PLUGINS": "baselines"})
    assert blocked.returncode == 0, blocked.stderr
    for name in METHODS:
        assert f"  {name} " in listed.stdout
        assert f"  {name} " not in blocked.stdout
    assert "  retrain " in blocked.stdout


@pytest.mark.slow
def test_a_suite_runs_every_baseline(tmp_path):
    methods = "".join(
        f'\n[[methods]]\nname = "{name}"\nparams = {{ {inline(fast(name))} }}\n' for name in METHODS
    )
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE + methods + '\n[[requests]]\nkind = "random"\ncount = 10\nsteps = 2\n')
    out = tmp_path / "out"
    run = cli("run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu")
    assert run.returncode == 0, run.stdout + run.stderr
    board = cli("leaderboard", str(out), "--format", "json")
    rows = {row["method"]: row for row in json.loads(board.stdout)["rows"]}
    assert set(METHODS) <= set(rows)
    for name in METHODS:
        assert rows[name]["retrain_sample_epochs"] > 0
        assert 0.0 <= rows[name]["test_accuracy"] <= 1.0
