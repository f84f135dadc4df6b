"""DeepObliviate's stored training against standard training, over its training budget.

The paper's unlearning claims presuppose that stored (block-sequential)
training reaches the accuracy of standard training (Table I: 99.03% against
99.07% on MNIST). This measures that precondition on the Table I
reproduction's data, model and split (``leaderboards/reproductions/
deepobliviate-table1-fig6/suite.toml``: MNIST-1D with 100,000 generated
samples, 60% target, 10% test, ``lenet5_1d``, Adam at lr 1e-3, batch 64)
for every combination of ``epochs_per_block`` and ``optimizer_state``
(``fresh``: a new Adam per block, the suite's; ``persist``: one Adam kept
across blocks), on every seed given. Standard training is the task's
original (the suite's ``original``: the recipe's 20 epochs on the whole
target set) and, for equal work, the same training stopped after as many
epochs as the stored training's epochs per block (each point is seen
``epochs_per_block`` times in both). Everything goes through the registry
and the methods' public ``fit``/``unlearn`` (an ``unlearn`` of no point
returns the stored model P_B). Run::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/deepobliviate_budget.py
    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/deepobliviate_budget.py \
        --blocks 200 --epochs-per-block 5 --seeds 0   # a quick look

It prints a Markdown table per seed row and the mean over seeds, and the
answer to "is stored training within 1 point of standard training?". Times
are CPU seconds of this process with one torch thread. Not an asv benchmark:
nothing runs on import.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tabulate import tabulate

from unlearnbench.host.manager import load_registry
from unlearnbench.specs import resolve_params
from unlearnbench.task_values import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import make_task
from unlearnbench.training import accuracy

SPLITS = SplitSizes(target=0.6, nonmember=0.05, test=0.1, shadow_in=0, shadow_out=0, auxiliary=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000, help="MNIST-1D pool size")
    parser.add_argument("--blocks", type=int, default=1000)
    parser.add_argument("--epochs-per-block", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--optimizer-state", nargs="+", default=["fresh", "persist"])
    parser.add_argument("--epochs", type=int, default=20, help="standard training's epochs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--margin", type=float, default=1.0, help="points (the precondition)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reg, _ = load_registry()
    spec = reg.get("method", "deepobliviate")
    request = ForgetRequest(kind="random", count=1, position=0.0005, blocks=args.blocks)
    rows: list[dict[str, object]] = []
    standard: dict[tuple[int, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:

        def task_for(seed: int, epochs: int):  # type: ignore[no-untyped-def]
            return make_task(
                Path(tmp),
                dataset="mnist1d",
                dataset_params={"samples": args.samples},
                architecture="lenet5_1d",
                request=request,
                splits=SPLITS,
                recipe=TrainRecipe(epochs=epochs, batch_size=64, lr=1e-3, optimizer="adam"),
                seed=seed,
                reg=reg,
            )

        for seed in args.seeds:
            task, ctx = task_for(seed, args.epochs)
            x, y = task.x[task.splits.test], task.y[task.splits.test]
            for epochs in sorted({args.epochs, *args.epochs_per_block}):
                c = ctx if epochs == args.epochs else task_for(seed, epochs)[1]
                cpu = time.process_time()
                standard[seed, epochs] = 100 * accuracy(c.original(), x, y)
                print(
                    f"seed {seed}: standard training, {epochs} epochs: "
                    f"{standard[seed, epochs]:.2f}% ({time.process_time() - cpu:.0f} CPU s)",
                    flush=True,
                )
            nothing = torch.empty(0, dtype=torch.long)
            for epb in args.epochs_per_block:
                for state_kind in args.optimizer_state:
                    params = {"blocks": args.blocks, "epochs_per_block": epb}
                    params["optimizer_state"] = state_kind
                    method = spec.create(resolve_params(spec.params, params))
                    cpu = time.process_time()
                    stored = method.fit(task, ctx)
                    seconds = time.process_time() - cpu
                    model = method.unlearn(stored, nothing, task, ctx).model
                    acc = 100 * accuracy(model, x, y)
                    row = {
                        "seed": seed,
                        "epochs/block": epb,
                        "Adam": state_kind,
                        "stored": acc,
                        f"std {args.epochs} ep": standard[seed, args.epochs],
                        f"gap to {args.epochs} ep": acc - standard[seed, args.epochs],
                        "std equal work": standard[seed, epb],
                        "gap equal work": acc - standard[seed, epb],
                        "CPU s": seconds,
                    }
                    rows.append(row)
                    print(tabulate([row], headers="keys", floatfmt=".2f"), flush=True)
    print("\nPer seed (test accuracy in %, gaps in points: stored − standard)\n")
    print(tabulate(rows, headers="keys", tablefmt="github", floatfmt=".2f"))
    means = []
    for epb in args.epochs_per_block:
        for state_kind in args.optimizer_state:
            mine = [r for r in rows if r["epochs/block"] == epb and r["Adam"] == state_kind]
            gaps = [float(r[f"gap to {args.epochs} ep"]) for r in mine]  # type: ignore[arg-type]
            means.append(
                {
                    "epochs/block": epb,
                    "Adam": state_kind,
                    "stored": statistics.mean(float(r["stored"]) for r in mine),  # type: ignore[arg-type]
                    f"std {args.epochs} ep": statistics.mean(
                        float(r[f"std {args.epochs} ep"])
                        for r in mine  # type: ignore[arg-type]
                    ),
                    f"gap to {args.epochs} ep": statistics.mean(gaps),
                    "worst seed gap": min(gaps),
                    "gap equal work": statistics.mean(
                        float(r["gap equal work"])
                        for r in mine  # type: ignore[arg-type]
                    ),
                    f"within {args.margin:g} pt (every seed)": all(g >= -args.margin for g in gaps),
                }
            )
    print(f"\nMean over seeds {args.seeds}\n")
    print(tabulate(means, headers="keys", tablefmt="github", floatfmt=".2f"))
    persist_minus_fresh = []
    for seed in args.seeds:
        for epb in args.epochs_per_block:
            acc = {
                r["Adam"]: float(r["stored"])  # type: ignore[arg-type]
                for r in rows
                if r["seed"] == seed and r["epochs/block"] == epb
            }
            if {"fresh", "persist"} <= acc.keys():
                persist_minus_fresh.append(
                    {
                        "seed": seed,
                        "epochs/block": epb,
                        "persist − fresh": acc["persist"] - acc["fresh"],
                    }
                )
    if persist_minus_fresh:
        print("\nKeeping Adam across blocks (persist − fresh, points)\n")
        print(tabulate(persist_minus_fresh, headers="keys", tablefmt="github", floatfmt=".2f"))


if __name__ == "__main__":
    main()
