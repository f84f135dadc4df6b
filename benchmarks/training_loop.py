"""The shared training loop against a bare PyTorch loop over the same tensors.

Both train the same model from the same initialisation on the same in-memory
tensors with the same batch size, optimizer and randperm batching; they run
interleaved (A, B, A, B, ...) in one process so machine noise hits both, and
the script prints the median times and their ratio (target: within 10%).

    python benchmarks/training_loop.py [--repeats 7] [--epochs 50] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from unlearnbench.task_values import TrainRecipe
from unlearnbench.training import train_model


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
    opt = torch.optim.Adam(model.parameters(), lr=lr)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
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
