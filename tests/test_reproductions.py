"""Every committed reproduction suite still validates, and runs end to end scaled down."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from unlearnbench.cli import main

ROOT = Path(__file__).resolve().parents[1] / "leaderboards" / "reproductions"
SUITES = sorted(ROOT.glob("*/suite.toml"))


def test_there_are_reproductions() -> None:
    assert SUITES, f"no suite under {ROOT}"


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.parent.name)
def test_a_reproduction_suite_passes_the_check(suite: Path, tmp_path: Path) -> None:
    """The full-size suite: every key, plugin and size is valid (nothing trains)."""
    assert main(["run", str(suite), "--check", "--out", str(tmp_path / "out")]) == 0


def scaled_down(text: str) -> str:
    """The same suite at toy size: one seed, few samples, epochs and blocks."""
    text = re.sub(r"(?m)^seeds = .*$", "seeds = [0]", text)
    text = re.sub(r"samples = \d+", "samples = 3000", text)
    text = re.sub(r"(?m)^epochs = \d+", "epochs = 2", text)
    text = re.sub(r"epochs_per_block = \d+", "epochs_per_block = 1", text)
    # B = 600 / 300 / 120 -> 20 / 10 / 4 (positions are relative, so they still hold)
    text = re.sub(r"blocks = (\d+)", lambda m: f"blocks = {max(2, int(m[1]) // 30)}", text)
    text = re.sub(r"blocks = \[([\d, ]+)\]", lambda m: "blocks = ["
                  + ", ".join(str(max(2, int(b) // 30)) for b in m[1].split(",")) + "]", text)
    return text


@pytest.mark.slow
@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.parent.name)
def test_a_reproduction_runs_scaled_down(suite: Path, tmp_path: Path) -> None:
    small = tmp_path / "suite.toml"
    small.write_text(scaled_down(suite.read_text(encoding="utf-8")), encoding="utf-8")
    tomllib.loads(small.read_text(encoding="utf-8"))
    out = tmp_path / "out"
    assert main(["run", str(small), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert (out / "leaderboard.md").exists()
