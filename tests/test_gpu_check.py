"""benchmarks/gpu/check.sh: it says why it cannot run without a GPU, records failed and
timed-out steps in its report, and its reproduction step passes on toy-size files.

CI runs the whole ``check.sh --dry-run`` as its own step (.ci/run); these tests keep
to the parts that are fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.gpu.check import Outcome, Step, section

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "benchmarks" / "gpu" / "check.sh"
GPU_SUITES = sorted((ROOT / "leaderboards" / "reproductions").glob("*/suite-gpu.toml"))


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(
        ["bash", str(CHECK), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_the_check_stops_at_once_and_says_why(tmp_path: Path) -> None:
    done = run_check("--out-dir", str(tmp_path))
    assert done.returncode == 2
    assert "cannot start: CUDA is not available" in done.stderr
    assert "--dry-run" in done.stderr
    assert not list(tmp_path.iterdir())  # no report of a check that did not run


def test_a_cli_step_with_failed_cells_fails_even_when_it_exits_0() -> None:
    step = Step("local executor", [sys.executable, "-m", "unlearnbench.cli", "run"], 60)
    stderr = (
        "suite 'x': 1 tasks, 4 cells on cuda (local executor); results in /tmp/x\n"
        "4 cells done, 0 already done, 1 failed, 0 timed out in 3.0 s\n"
    )
    text, ok = section(step, Outcome(0, 3.0, "board\nleaderboard: /tmp/x/leaderboard.html", stderr))
    assert not ok and "FAILED" in text
    assert "- suite 'x': 1 tasks, 4 cells on cuda (local executor)\n" in text
    assert "/tmp/x" not in text.split("```")[1]  # the board, without its temporary path
    good = stderr.replace("1 failed", "0 failed")
    assert section(step, Outcome(0, 3.0, "board", good))[1]


def test_a_timed_out_step_is_reported_with_its_error_output() -> None:
    step = Step("", [sys.executable, "benchmarks/gpu/throughput.py"], 10)
    text, ok = section(step, Outcome(None, 10.0, "| partial table |", "Traceback\nboom"))
    assert not ok
    assert text.startswith("TIMED OUT in 10.0 s")
    assert "| partial table |" in text and "boom" in text


def test_a_skipped_step_says_why() -> None:
    text, ok = section(Step("Ray executor", [], 75), None)
    assert ok and text.startswith("**Ray executor**: skipped: Ray is not installed")


def test_the_dry_run_checks_every_gpu_sized_reproduction(tmp_path: Path) -> None:
    """Step 4 of ``--dry-run``: toy-size real-format files, every suite-gpu.toml checked,
    a report named with the date and the device."""
    done = run_check("--dry-run", "--only", "4", "--out-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    (report,) = tmp_path.iterdir()
    assert re.fullmatch(r"gpu-check-\d{4}-\d{2}-\d{2}-cpu-dry-run\.md", report.name)
    text = report.read_text(encoding="utf-8")
    assert "every step passed" in text
    assert GPU_SUITES
    for suite in GPU_SUITES:
        assert re.search(rf"\| {suite.parent.name} \| ok \|", text), suite.parent.name


def test_the_gpu_run_asks_for_cuda_and_full_sizes_in_every_step(tmp_path: Path) -> None:
    """What the dry run cannot exercise: the GPU run's own arguments."""
    from benchmarks.gpu.check import build_parser, steps

    args = build_parser().parse_args([])
    groups = steps(args, tmp_path)
    argvs = [step.argv for _, group in groups for step in group if step.argv]
    assert len(groups) == 4
    for argv in argvs:
        assert argv[argv.index("--device") + 1] == "cuda", argv
    joined = [" ".join(argv) for argv in argvs]
    assert "--size full" in joined[0]
    assert "--dataset mnist5k" in joined[1]
    assert all("suite-small.toml" in j for j in joined if "unlearnbench.cli" in j)
    if any("--executor ray" in j for j in joined):  # Ray installed
        assert any("--executor ray --gpus-per-task 0.25" in j for j in joined)


@pytest.mark.parametrize("suite", ["suite-small.toml", "suite-dry-run.toml"])
def test_the_end_to_end_suites_pass_the_check(suite: str, tmp_path: Path) -> None:
    from unlearnbench.cli import main

    path = ROOT / "benchmarks" / "gpu" / suite
    assert main(["run", str(path), "--check", "--device", "cpu", "--out", str(tmp_path)]) == 0
