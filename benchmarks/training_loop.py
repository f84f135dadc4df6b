"""The shared training loop against a bare PyTorch loop over the same tensors.

Both train the same model from the same initialisation on the same in-memory
tensors with the same batch size, optimizer and randperm batching; they run
interleaved (A, B, A, B, ...) in one process so machine noise hits both, and
the script prints the median times and their ratio (target: within 10%).

It then measures the optimizer implementations the shared factory offers
(``make_optimizer(impl=...)``: ``foreach``, ``for_loop``, ``fused``) for Adam
and SGD with momentum, interleaved the same way, on the digits MLP and on the
default suite's MLP (784-128-64-10, 1,500 MNIST-shaped points): the median
seconds per training (this process's CPU seconds on the CPU, steadier than wall
time on a shared machine; wall seconds on CUDA), the speed against
``for_loop`` (torch's CPU default), and whether the trained parameters equal
``for_loop``'s bit for bit (else the largest absolute difference).
``--device cuda`` measures the same on a GPU (not run yet: no GPU has been lent
to this project).

    python benchmarks/training_loop.py [--repeats 7] [--epochs 50] [--threads 1]
    python benchmarks/training_loop.py --skip-loop --opt-epochs 10   # the table only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from unlearnbench.task_values import OPTIMIZER_IMPLS, TrainRecipe
from unlearnbench.training import make_optimizer, train_model

IMPLS = [impl for impl in OPTIMIZER_IMPLS if impl != "auto"]  # auto is one of these


def digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x, torch.tensor(bunch.target, dtype=torch.long)


def fresh_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(64, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def bare_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch: int, lr: float
) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)  # as make_optimizer
    model.train()
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def suite_mlp() -> nn.Module:
    """The default suite's architecture: MLP 784-128-64-10."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def mnist_shaped(n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    """Random tensors of the default suite's target set's shape (nothing to download)."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def optimizer_table(args: argparse.Namespace) -> None:
    """Median training time per optimizer implementation, and bit-identity to for_loop."""
    device = torch.device(args.device)
    cases = [
        ("digits MLP", fresh_mlp, digits_tensors()),
        ("default-suite MLP", suite_mlp, mnist_shaped()),
    ]
    print(
        f"\noptimizer implementations on {device}, {torch.get_num_threads()} threads, "
        f"{args.opt_epochs} epochs, batch {args.batch}, {args.repeats} interleaved repeats"
    )
    print(f"{'model':<18} {'optimizer':<9} {'impl':<9} {'median_s':>8} {'vs for_loop':>11}  result")
    for label, build, (x, y) in cases:
        x, y = x.to(device), y.to(device)
        indices = torch.arange(x.shape[0], device=device)
        for optimizer, lr in (("adam", 1e-3), ("sgd", 0.01)):
            recipe = TrainRecipe(
                epochs=args.opt_epochs,
                batch_size=args.batch,
                lr=lr,
                optimizer=optimizer,
                momentum=0.9,
            )
            times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
            params: dict[str, torch.Tensor] = {}
            for repeat in range(args.repeats + 1):
                for impl in IMPLS:
                    model = build().to(device)
                    opt = make_optimizer(model.parameters(), recipe, impl=impl)
                    clock = time.perf_counter if device.type == "cuda" else time.process_time
                    start = clock()
                    train_model(model, x, y, indices, recipe, seed=0, optimizer=opt)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    if repeat:
                        times[impl].append(clock() - start)
                    params[impl] = torch.cat([p.detach().flatten() for p in model.parameters()])
            base = statistics.median(times["for_loop"])
            for impl in IMPLS:
                median = statistics.median(times[impl])
                diff = float((params[impl] - params["for_loop"]).abs().max())
                same = "bit-identical" if diff == 0 else f"max |diff| {diff:.1e}"
                print(
                    f"{label:<18} {optimizer:<9} {impl:<9} {median:8.3f} "
                    f"{base / median:10.2f}x  {same}",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--opt-epochs", type=int, default=10, help="epochs per optimizer run")
    parser.add_argument("--device", default="cpu", help="optimizer table: cpu or cuda")
    parser.add_argument("--skip-loop", action="store_true", help="only the optimizer table")
    parser.add_argument("--skip-optimizers", action="store_true", help="only the loop ratio")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.skip_loop:
        loop_ratio(args)
    if not args.skip_optimizers:
        optimizer_table(args)


def loop_ratio(args: argparse.Namespace) -> None:
    """The shared loop against the bare one, both on foreach Adam (the factory's
    default), so the ratio is the loop's own overhead."""
    x, y = digits_tensors()
    indices = torch.arange(x.shape[0])
    recipe = TrainRecipe(epochs=args.epochs, batch_size=args.batch, lr=1e-3)
    ours, bare = [], []
    for repeat in range(args.repeats + 1):
        model = fresh_mlp()
        start = time.perf_counter()
        train_model(model, x, y, indices, recipe, seed=repeat)
        t_ours = time.perf_counter() - start
        model = fresh_mlp()
        start = time.perf_counter()
        bare_loop(model, x, y, args.epochs, args.batch, 1e-3)
        t_bare = time.perf_counter() - start
        if repeat:  # the first round warms up allocators and kernels
            ours.append(t_ours)
            bare.append(t_bare)
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    print(
        f"digits MLP, {x.shape[0]} samples, {args.epochs} epochs, batch {args.batch}, "
        f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats"
    )
    print(f"shared loop (train_model): median {m_ours:.3f} s  (min {min(ours):.3f})")
    print(f"bare PyTorch loop:         median {m_bare:.3f} s  (min {min(bare):.3f})")
    print(f"ratio shared / bare: {m_ours / m_bare:.3f} (median), {min(ours) / min(bare):.3f} (min)")


if __name__ == "__main__":
    main()
