"""Throughput of the shared training loop next to a bare PyTorch loop.

For LeNet-5 on MNIST-shaped random data and ResNet-18 (CIFAR stem) on
CIFAR-shaped random data, it times ``unlearnbench.training.train_model`` and
a bare loop (same model initialisation, same data tensors on the same device,
same batch size, Adam, batches cut from ``torch.randperm``) in the same
process, alternating the two, and prints samples per second and the ratio
shared / bare (target: >= 0.90). On a GPU it also prints the time of one
LeNet-5 epoch over 60,000 images (target: about a second).

    nice python benchmarks/training_throughput.py                 # auto: full on CUDA, small on CPU
    python benchmarks/training_throughput.py --size full --amp --channels-last

Not an asv benchmark (no ``time_*`` names): a script printing ratios measured
side by side, as the project's speed targets ask.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unlearnbench.specs import resolve_params
from unlearnbench.task_values import TrainRecipe
from unlearnbench.testing import registry
from unlearnbench.training import train_model


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, int, int]
    architecture: str  # a registered architecture, built as a suite would build it
    params: Mapping[str, Any]
    samples: dict[str, int]
    batch: dict[str, int]


CASES = (
    Case(
        "lenet5 / MNIST-shaped",
        (1, 28, 28),
        "lenet5",
        {},
        {"small": 2048, "full": 60000},
        {"small": 256, "full": 256},
    ),
    Case(
        "resnet18 / CIFAR-shaped",
        (3, 32, 32),
        "resnet18",
        {"stem": "cifar"},
        {"small": 256, "full": 20000},
        {"small": 64, "full": 128},
    ),
)


def builder(case: Case) -> Callable[[], nn.Module]:
    """Builds the case's model (10 classes) as a suite would: from the plugin registry."""
    spec = registry().get("architecture", case.architecture)
    params = resolve_params(spec.params, dict(case.params))
    return lambda: spec.build(case.shape, 10, params)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch: int,
    recipe: TrainRecipe,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """The reference: randperm-indexed batches, cross-entropy, Adam; nothing else."""
    model.train()
    perm = torch.randperm(x.shape[0], device=x.device)
    dtype = torch.float16 if x.device.type == "cuda" else torch.bfloat16
    for begin in range(0, x.shape[0], batch):
        idx = perm[begin : begin + batch]
        xb = x[idx]
        if recipe.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=dtype, enabled=recipe.amp):
            loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()


def measure(case: Case, size: str, device: torch.device, recipe: TrainRecipe, repeats: int):
    n = case.samples[size]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *case.shape, generator=gen).to(device)
    y = torch.randint(0, 10, (n,), generator=gen).to(device)
    indices = torch.arange(n, device=device)
    build = builder(case)
    torch.manual_seed(0)
    init = build().to(device)
    shared_model, bare_model = copy.deepcopy(init), copy.deepcopy(init)
    if recipe.channels_last:
        bare_model.to(memory_format=torch.channels_last)
    shared_opt = torch.optim.Adam(shared_model.parameters(), lr=recipe.lr)
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=recipe.lr)
    scaler = torch.amp.GradScaler("cuda") if recipe.amp and device.type == "cuda" else None

    def run_shared(epoch: int) -> None:
        train_model(
            shared_model, x, y, indices, recipe, seed=("bench", epoch), optimizer=shared_opt
        )

    def run_bare(epoch: int) -> None:
        bare_epoch(bare_model, bare_opt, x, y, recipe.batch_size, recipe, scaler)

    times: dict[str, list[float]] = {"shared": [], "bare": []}
    runs = {"shared": run_shared, "bare": run_bare}
    for name in ("shared", "bare"):  # warm-up: allocator, cuDNN algorithm choice
        runs[name](-1)
    sync(device)
    for rep in range(repeats):
        order = ("shared", "bare") if rep % 2 == 0 else ("bare", "shared")
        for name in order:
            sync(device)
            start = time.perf_counter()
            runs[name](rep)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return n, {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["auto", "small", "full"], default="auto")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per loop")
    parser.add_argument("--amp", action="store_true", help="recipe.amp in both loops")
    parser.add_argument("--channels-last", action="store_true", help="recipe.channels_last")
    parser.add_argument("--only", choices=["lenet5", "resnet18"], help="run one case")
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    device = torch.device(("cuda" if cuda else "cpu") if args.device == "auto" else args.device)
    size = args.size if args.size != "auto" else ("full" if device.type == "cuda" else "small")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"size {size}, amp {args.amp}, channels_last {args.channels_last}"
    )
    print(f"{'case':<26}{'n':>7}{'batch':>7}{'shared/s':>12}{'bare/s':>12}{'ratio':>8}")
    for case in CASES:
        if args.only and not case.name.startswith(args.only):
            continue
        recipe = TrainRecipe(
            epochs=1,
            batch_size=case.batch[size],
            lr=1e-3,
            amp=args.amp,
            channels_last=args.channels_last,
        )
        n, t = measure(case, size, device, recipe, args.repeats)
        shared, bare = n / t["shared"], n / t["bare"]
        print(
            f"{case.name:<26}{n:>7}{recipe.batch_size:>7}{shared:>12,.0f}{bare:>12,.0f}"
            f"{shared / bare:>8.3f}"
        )
        if case.name.startswith("lenet5"):
            print(f"  lenet5 epoch of 60,000 images at this rate: {60000 / shared:.2f} s")
    print("ratio = shared / bare samples per second (target >= 0.90)")


if __name__ == "__main__":
    main()
