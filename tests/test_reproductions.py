"""Every committed reproduction suite still validates, and runs end to end scaled down."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from unlearnbench.cli import main

ROOT = Path(__file__).resolve().parents[1] / "leaderboards" / "reproductions"
SUITES = sorted(ROOT.glob("*/suite.toml"))
# The claims re-tested on real MNIST images (mnist5k), beside the MNIST-1D suites.
MNIST5K_SUITES = sorted(ROOT.glob("*/suite-mnist5k.toml"))


def test_there_are_reproductions() -> None:
    assert SUITES, f"no suite under {ROOT}"


@pytest.mark.parametrize(
    "suite", SUITES + MNIST5K_SUITES, ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_a_reproduction_suite_passes_the_check(suite: Path, tmp_path: Path) -> None:
    """The full-size suite: every key, plugin and size is valid (nothing trains)."""
    assert main(["run", str(suite), "--check", "--out", str(tmp_path / "out")]) == 0


def smaller_requests(text: str) -> str:
    """Request sizes of 100 and more divided by 20; small ones kept (they tell requests
    apart, e.g. Fig. 6's 1, 6 and 60 points)."""
    return re.sub(r"\bcount = (\d+)", lambda m: f"count = {_smaller(int(m[1]))}", text)


def _smaller(count: int) -> int:
    return count // 20 if count >= 100 else count


def fewer_blocks(text: str) -> str:
    """Every block count (DeepObliviate's B, request positions' B) divided by 30."""
    text = re.sub(r"blocks = (\d+)", lambda m: f"blocks = {max(2, int(m[1]) // 30)}", text)
    return re.sub(
        r"blocks = \[([\d, ]+)\]",
        lambda m: (
            "blocks = [" + ", ".join(str(max(2, int(b) // 30)) for b in m[1].split(",")) + "]"
        ),
        text,
    )


def scaled_down(text: str) -> str:
    """The same suite at toy size: one seed, few samples, epochs and blocks."""
    text = re.sub(r"(?m)^seeds = .*$", "seeds = [0]", text)
    text = re.sub(r"samples = (\d+)", lambda m: f"samples = {max(3000, int(m[1]) // 20)}", text)
    text = re.sub(  # split counts (suites that give them per data set) and large requests
        r"\b(target|shadow_in|shadow_out|nonmember|test|auxiliary) = (\d+)",
        lambda m: f"{m[1]} = {int(m[2]) // 20}",
        text,
    )
    text = smaller_requests(text)
    text = re.sub(r"(?m)^epochs = \d+", "epochs = 2", text)
    text = re.sub(r"epochs_per_block = \d+", "epochs_per_block = 1", text)
    # B = 600 / 300 / 120 -> 20 / 10 / 4 (positions are relative, so they still hold)
    text = fewer_blocks(text)
    # GAN: a few generator steps instead of up to 1,000 (its critic dominates toy runs)
    text = re.sub(
        r'(?m)^name = "gan"$',
        'name = "gan"\nparams = { max_steps = 20, min_steps = 10, critic_warmup = 10 }',
        text,
    )
    return text


@pytest.mark.slow
@pytest.mark.parametrize(
    "suite", SUITES + MNIST5K_SUITES, ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_a_reproduction_runs_scaled_down(suite: Path, tmp_path: Path) -> None:
    small = tmp_path / "suite.toml"
    small.write_text(scaled_down(suite.read_text(encoding="utf-8")), encoding="utf-8")
    tomllib.loads(small.read_text(encoding="utf-8"))
    out = tmp_path / "out"
    assert main(["run", str(small), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert (out / "leaderboard.md").exists()


GPU_SUITES = sorted(ROOT.glob("*/suite-gpu.toml"))


def test_the_real_mnist_re_tests_are_there() -> None:
    """Fig. 2, Table I, Table VI, SISA and GAN unlearning are re-tested on mnist5k."""
    assert {p.parent.name for p in MNIST5K_SUITES} >= {
        "deepobliviate-fig2-residual-memory",
        "deepobliviate-table1-fig6",
        "deepobliviate-table6-backdoor",
        "sisa-speedup",
        "gan-data-size",
    }


def test_every_reproduction_has_a_gpu_sized_suite() -> None:
    assert [p.parent for p in GPU_SUITES] == [p.parent for p in SUITES]


def gpu_scaled_down(text: str, root: Path) -> str:
    """A GPU-sized suite pointed at tiny real-format files: splits /100, B /30."""
    text = text.replace('root = "data"', f'root = "{root.as_posix()}"')
    text = re.sub(
        r"\b(target|shadow_in|shadow_out|nonmember|test|auxiliary) = (\d+)",
        lambda m: f"{m[1]} = {int(m[2]) // 100}",
        text,
    )
    text = smaller_requests(text)
    text = fewer_blocks(text)
    return re.sub(r"shards = 50, slices = 20", "shards = 5, slices = 2", text)


@pytest.mark.parametrize("suite", GPU_SUITES, ids=lambda p: p.parent.name)
def test_a_gpu_sized_suite_passes_the_check_on_real_format_files(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The paper-data suite reads MNIST / CIFAR-10 in torchvision's on-disk formats and
    every key, plugin and (scaled) size is valid; nothing trains."""
    from tests.test_vision_datasets import trust_cifar, write_cifar, write_mnist

    data = tmp_path / "data"
    text = suite.read_text(encoding="utf-8")
    if 'name = "mnist"' in text:
        write_mnist(data, "MNIST", 600, 100, gz=False)
    if 'name = "cifar10"' in text:
        folder, _, _ = write_cifar(data, per_batch=100)
        trust_cifar(monkeypatch, folder)
    small = tmp_path / "suite-gpu.toml"
    small.write_text(gpu_scaled_down(text, data), encoding="utf-8")
    assert main(["run", str(small), "--check", "--out", str(tmp_path / "out")]) == 0
