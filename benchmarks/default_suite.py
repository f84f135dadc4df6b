"""The built-in default suite end to end (``unlearnbench run``, executor ``auto``), timed.

Runs the command the README's first line runs, each time into a fresh output
folder (nothing cached), ``--repeats`` times, and prints wall and CPU seconds
(the command and its workers) against the target (issue "Faster where the time
goes": under 40 s on the 2-core CPU). ``--against DIR`` also runs another
checkout of the project (``git worktree add DIR <commit>``) on the same
machine, alternating with this one, and prints the ratio of the medians: on a
shared machine only runs side by side compare.

    python benchmarks/default_suite.py --repeats 3
    git worktree add /tmp/before 6a2aeb7
    python benchmarks/default_suite.py --repeats 3 --against /tmp/before
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the installed command's entry (console_main); a checkout from before it existed: main
COMMAND = (
    "import sys, unlearnbench.cli as cli\n"
    "entry = getattr(cli, 'console_main', None)\n"
    "entry() if entry else sys.exit(cli.main())\n"
)


def run_once(checkout: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds (children: the command and its workers) of one run."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(checkout)  # ahead of the editable install of this checkout
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", COMMAND, "run", "--out", str(out), "--no-progress"],
        cwd=checkout,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, run alternately")
    parser.add_argument("--target", type=float, default=40.0, help="wall seconds")
    args = parser.parse_args(argv)
    checkouts = {"this": ROOT}
    if args.against is not None:
        checkouts["against"] = args.against.resolve()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in checkouts}
    print(f"default suite, executor auto, {os.cpu_count()} cores; wall and CPU seconds\n")
    print("| run | checkout | wall s | CPU s |")
    print("|---:|---|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="default-suite-") as tmp:
        for repeat in range(args.repeats):
            for name, checkout in checkouts.items():
                wall, cpu = run_once(checkout, Path(tmp) / f"{name}-{repeat}")
                times[name].append((wall, cpu))
                print(
                    f"| {repeat + 1} | {name} ({checkout}) | {wall:.1f} | {cpu:.1f} |", flush=True
                )
    print()
    medians = {name: statistics.median(w for w, _ in runs) for name, runs in times.items()}
    for name, median in medians.items():
        cpu = statistics.median(c for _, c in times[name])
        print(f"{name}: median {median:.1f} s wall, {cpu:.1f} s CPU")
    this = medians["this"]
    verdict = "under" if this < args.target else "over"
    print(
        f"this checkout: {this:.1f} s, {verdict} the {args.target:g} s target "
        f"({this / args.target:.2f}x of it)"
    )
    if "against" in medians:
        pairs = [a[0] / t[0] for t, a in zip(times["this"], times["against"], strict=True)]
        print(
            f"against / this: {medians['against'] / this:.2f}x (medians); per pair "
            + ", ".join(f"{p:.2f}x" for p in pairs)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
