"""The same grid on the local, processes and Ray executors, side by side.

Runs one grid (by default 8 tasks: digits, an MLP, seeds 0-7, retrain and
original, accuracy and consistency) with each executor into a fresh folder,
and prints each wall time (worker / Ray start-up included, as a user pays it),
its ratio to the local executor, the machine's core count, and whether the
quality metrics are identical (they must be at equal threads per cell: only
timings may differ; torch's CPU kernels may round differently at another
thread count, which is why the local run at all cores is compared apart).

    nice .venv/bin/python benchmarks/executors.py [--tasks 8] [--epochs 30]

Layout: local = 1 process x all cores (torch's default); local-1t = 1 process
x 1 thread (separates the cost of threads fighting over busy cores from the
gain of parallel cells); processes = W workers x (cores / W)
threads (default 2 x 1 on a 2-core machine); ray = a local instance with
``num_cpus`` = cores, 1 CPU (1 thread) per task.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import tomllib
from pathlib import Path

import torch

from unlearnbench.execution import run_suite
from unlearnbench.host.manager import RegistryFactory  # run_suite's picklable registry

SUITE = """
name = "executors-bench"
seeds = {seeds}
reference = "retrain"
evaluators = ["accuracy", "consistency"]

[splits]
target = 0.4
nonmember = 0.1
test = 0.2
shadow_in = 0
shadow_out = 0

[train]
epochs = {epochs}
batch_size = 32
lr = 0.001

[[datasets]]
name = "digits"

[[architectures]]
name = "mlp"
params = {{ widths = [128, 64] }}

[[methods]]
name = "retrain"

[[methods]]
name = "original"

[[requests]]
kind = "random"
count = 20
"""


def quality(path: Path) -> list[tuple[str, str, float]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT cell_id, name, value FROM metrics WHERE name LIKE '%accuracy%' "
            "OR name LIKE '%consistency%' OR name LIKE '%agreement%' ORDER BY cell_id, name"
        ).fetchall()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8, help="seeds, one task each")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-ray", action="store_true")
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))  # the cores this process may use (Linux)
    registry = RegistryFactory()()
    root = Path(tempfile.mkdtemp(prefix="unlearnbench-executors-"))
    suite_path = root / "suite.toml"
    text = SUITE.format(seeds=list(range(args.tasks)), epochs=args.epochs)
    suite_path.write_text(text, encoding="utf-8")
    grid = tomllib.loads(text)  # one data set, architecture and request: a task per seed
    tasks, methods = len(grid["seeds"]), len(grid["methods"])
    print(
        f"{cores} cores (os.cpu_count={os.cpu_count()}), torch {torch.__version__}; grid: "
        f"{tasks} tasks x {methods} methods, "
        f"{args.epochs} epochs, digits MLP [128, 64]"
    )

    names = ["local", "local-1t", "processes"] + ([] if args.skip_ray else ["ray"])
    times: dict[str, float] = {}
    metrics: dict[str, list] = {}
    for name in names:
        out = root / name
        if name.startswith("local"):
            threads = 1 if name == "local-1t" else cores
            options: dict = {"executor": "local", "threads": threads}
            layout = f"1 process x {threads} threads"
        elif name == "processes":
            options = {"executor": "processes", "workers": args.workers}
            layout = f"{args.workers} workers (threads: cores / workers)"
        else:
            options = {"executor": "ray"}
            layout = f"ray num_cpus={cores}, 1 CPU per task"
        result = run_suite(
            suite_path, out, registry, device="cpu", registry_factory=RegistryFactory(), **options
        )
        times[name] = result.seconds  # the run only: data set loading and checks excluded
        summary = result.summary
        assert summary.ok == result.plan.size == tasks * methods, summary.failures
        metrics[name] = quality(result.store_path)
        torch.set_num_threads(cores)
        print(f"  {name:<10} {times[name]:7.2f} s   ({layout})", flush=True)

    print("ratios (local time / executor time; > 1 is faster than local):")
    for name in names[1:]:
        print(f"  {name:<10} {times['local'] / times[name]:.2f}x")
    # torch's CPU kernels sum in a thread-count-dependent order: compare at 1 thread
    one = [n for n in names if n != "local"]
    same = all(metrics[n] == metrics["local-1t"] for n in one)
    count = len(metrics["local-1t"])
    print(f"quality metrics identical at 1 thread per cell ({', '.join(one)}): {same} ({count})")
    print(f"  local at {cores} threads identical too: {metrics['local'] == metrics['local-1t']}")


if __name__ == "__main__":
    main()
