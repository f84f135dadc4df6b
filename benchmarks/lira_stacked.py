"""LiRA's reference models: stacked (torch.func) against one-by-one training, side by side.

On the default suite's task (MNIST-1D, 4,000 samples, MLP [128, 64], 40
epochs, batch 32, Adam; 1,200 points per model, the target's size) it
trains K models on complementary seeded halves of a pool of twice the target's
size (the scored ``target ∪ nonmember`` points topped up from the shadow splits,
as LiRA's reference models, docs/lira.md) for K in {8, 16, 32}, stacked
(``unlearnbench.training.train_stacked``) and one by one (``ctx.train``),
alternating, each ``--repeats`` times, best time kept, and prints the wall
times, the ratio one-by-one / stacked and the largest difference of the
per-example φ the two paths give. On CUDA it times the same on the GPU too.
Public API only (``unlearnbench.training``, ``unlearnbench.task``,
``unlearnbench.testing``).

    OMP_NUM_THREADS=1 python benchmarks/lira_stacked.py            # 1 thread (as the tests)
    python benchmarks/lira_stacked.py --threads 2 --models 8 16 --epochs 10

Not an asv benchmark: a script printing ratios measured side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from unlearnbench.task import ForgetRequest, MethodContext, SplitSizes, Task, TrainRecipe
from unlearnbench.testing import make_task
from unlearnbench.training import StackedJob, predict_logits, train_stacked

DEFAULT_SPLITS = SplitSizes(
    target=0.3, nonmember=0.1, test=0.15, shadow_in=0.3, shadow_out=0.1, auxiliary=0.05
)


def default_task(device: str, epochs: int, cache: Path) -> tuple[Task, MethodContext]:
    """The default suite's MNIST-1D task (seed 0)."""
    return make_task(
        cache,
        dataset="mnist1d",
        dataset_params={"samples": 4000},
        architecture_params={"widths": [128, 64]},
        splits=DEFAULT_SPLITS,
        recipe=TrainRecipe(epochs=epochs, batch_size=32, lr=0.001),
        request=ForgetRequest(kind="random", count=20),
        device=device,
    )


def pool_of(task: Task) -> torch.Tensor:
    """The scored points (target ∪ nonmember) topped up to twice the target's size
    with a seeded draw from the shadow splits."""
    s = task.splits
    n = s.target.numel()
    scored = torch.unique(torch.cat([s.target, s.nonmember]).cpu())
    shadow = torch.unique(torch.cat([s.shadow_in, s.shadow_out]).cpu())
    shadow = shadow[~torch.isin(shadow, scored)]
    fill = shadow[torch.randperm(shadow.numel(), generator=torch.Generator().manual_seed(0))]
    return torch.unique(torch.cat([scored, fill[: 2 * n - scored.numel()]]))


def halves(pool: torch.Tensor, models: int) -> list[torch.Tensor]:
    """Complementary halves in pairs: each pool point is in half of the models."""
    size, out = pool.numel() // 2, []
    for pair in range((models + 1) // 2):
        perm = torch.randperm(pool.numel(), generator=torch.Generator().manual_seed(pair))
        out += [pool[perm[:size]], pool[perm[size : 2 * size]]]
    return out[:models]


def phi(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LiRA's logit-scaled confidence z_y - logsumexp_{j != y} z_j, in float64."""
    z = logits.double()
    true = z.gather(1, y[:, None]).squeeze(1)
    return true - torch.logsumexp(z.scatter(1, y[:, None], float("-inf")), dim=1)


def reference_phi(task: Task, ctx: MethodContext, models: int, stacked: bool) -> torch.Tensor:
    """Train K reference models (stacked or one by one) and return their φ on the pool."""
    pool = pool_of(task)
    parts = halves(pool, models)
    nets = [task.new_model(("lira", k)) for k in range(models)]
    if stacked:
        jobs = [StackedJob(part, (task.seed, ("lira", k))) for k, part in enumerate(parts)]
        train_stacked(nets, jobs, task.x, task.y, task.recipe)
    else:  # ctx.train seeds batches with (task.seed, seed_label), as the jobs above
        for k, (net, part) in enumerate(zip(nets, parts, strict=True)):
            ctx.train(net, part.to(task.device), seed_label=("lira", k))
    on_device = pool.to(task.device)
    x, y = task.x[on_device], task.y[on_device]
    return torch.stack([phi(predict_logits(net, x), y).cpu() for net in nets])


def timed(task: Task, ctx: MethodContext, models: int, stacked: bool) -> tuple[float, torch.Tensor]:
    if task.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    phis = reference_phi(task, ctx, models, stacked)
    if task.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, phis


def run(device: str, models: list[int], epochs: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as cache:
        task, ctx = default_task(device, epochs, Path(cache))
        pool = pool_of(task).numel()
        print(
            f"\n{device}, {torch.get_num_threads()} thread(s), pool {pool}, "
            f"{pool // 2} points per model, {epochs} epochs"
        )
        print(f"{'K':>4} {'stacked s':>10} {'one-by-one s':>13} {'speed-up':>9} {'max |dphi|':>11}")
        for k in models:
            best = {True: float("inf"), False: float("inf")}
            phis: dict[bool, torch.Tensor] = {}
            for _ in range(repeats):
                for stacked in (True, False):
                    seconds, phis[stacked] = timed(task, ctx, k, stacked)
                    best[stacked] = min(best[stacked], seconds)
            diff = float((phis[True] - phis[False]).abs().max())
            print(
                f"{k:>4} {best[True]:>10.2f} {best[False]:>13.2f} "
                f"{best[False] / best[True]:>8.2f}x {diff:>11.2e}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: as set)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run("cpu", args.models, args.epochs, args.repeats)
    if torch.cuda.is_available():
        run("cuda", args.models, args.epochs, args.repeats)


if __name__ == "__main__":
    main()
