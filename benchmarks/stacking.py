"""Stacked (torch.func) training against one model after another, by MLP size, on the CPU.

`unlearnbench.training.stacking_pays` decides where SISA's shards and LiRA's
reference models train stacked; this prints the ratio it rests on: CPU seconds
of K models trained one by one (``train_model``) over K trained at once
(``train_stacked``), both on synthetic tensors (K disjoint sets of ``--points``
points, batch 64, Adam), best of ``--repeats`` alternated runs, one torch thread.
A ratio above 1 means stacking pays.

    python benchmarks/stacking.py --models 5 16 --epochs 5
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from unlearnbench.task_values import TrainRecipe
from unlearnbench.training import (
    STACKING_CPU_MAX_PARAMETERS,
    StackedJob,
    stacking_pays,
    train_model,
    train_stacked,
)

# (input features, hidden widths): MNIST-1D (40), digits (64), MNIST (784) and between
SHAPES = [
    (64, [64]),
    (40, [64, 64]),
    (64, [128, 64]),
    (784, [32]),
    (200, [128, 64]),
    (400, [128, 64]),
    (40, [256, 256]),
    (784, [128, 64]),
]


def mlp(inputs: int, widths: list[int], classes: int = 10) -> nn.Sequential:
    layers: list[nn.Module] = []
    previous = inputs
    for width in widths:
        layers += [nn.Linear(previous, width), nn.ReLU()]
        previous = width
    layers.append(nn.Linear(previous, classes))
    return nn.Sequential(*layers)


def cpu_seconds(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    fn()
    return time.process_time() - start


def compare(inputs: int, widths: list[int], k: int, points: int, epochs: int, repeats: int):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    x, y = torch.randn(k * points, inputs), torch.randint(0, 10, (k * points,))
    recipe = TrainRecipe(epochs=epochs, batch_size=64)
    parts = [torch.arange(i * points, (i + 1) * points) for i in range(k)]
    stacked, alone = [], []
    for _ in range(repeats):
        models = [mlp(inputs, widths) for _ in range(k)]
        jobs = [StackedJob(part, (0, i)) for i, part in enumerate(parts)]
        stacked.append(cpu_seconds(lambda: train_stacked(models, jobs, x, y, recipe)))  # noqa: B023
        models = [mlp(inputs, widths) for _ in range(k)]

        def one_by_one() -> None:
            for i, (model, part) in enumerate(zip(models, parts, strict=True)):  # noqa: B023
                train_model(model, x, y, part, recipe, seed=(0, i))

        alone.append(cpu_seconds(one_by_one))
    return min(stacked), min(alone)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[5, 16])
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    print(
        f"{args.points} points a model, {args.epochs} epochs, batch 64, Adam, 1 thread; "
        f"CPU seconds, best of {args.repeats}; stacking_pays: at most "
        f"{STACKING_CPU_MAX_PARAMETERS:,} parameters\n"
    )
    print(
        "| input | widths | parameters | K | stacked s | one by one s | one by one / stacked "
        "| stacking_pays |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for inputs, widths in SHAPES:
        size = sum(p.numel() for p in mlp(inputs, widths).parameters())
        pays = stacking_pays(mlp(inputs, widths), cpu)
        for k in args.models:
            stacked, alone = compare(inputs, widths, k, args.points, args.epochs, args.repeats)
            print(
                f"| {inputs} | {widths} | {size:,} | {k} | {stacked:.2f} | {alone:.2f} | "
                f"{alone / stacked:.2f}x | {'yes' if pays else 'no'} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
