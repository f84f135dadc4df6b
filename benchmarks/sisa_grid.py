"""SISA over a grid of shards S and slices R, measured side by side with retrain.

For each (S, R) this prints the aggregate's test accuracy and its consistency
(agreement on the test set) with retraining after the same one-point
deletion, the measured speed-up of unlearning over retraining (median of 5
retrains over the mean of the single-point requests, each from the freshly
fitted state), the speed-up
counted in retrained sample-epochs, the theoretical expectation S·3R/(2R+1)
(Bourtoule et al.; DeepObliviate's SISA discussion), storage (S·R
checkpoints) and prediction cost (S forward passes), and the ratio of stacked
(torch.func) to one-by-one shard training time for the same fit (best of two
fits each), measured in the same run. Run::

    nice .venv/bin/python benchmarks/sisa_grid.py            # digits, MLP 128-64, 40 epochs
    nice .venv/bin/python benchmarks/sisa_grid.py --dataset mnist1d --requests 4

Times are CPU seconds of this process (``time.process_time``) when running on
CPU with one thread (the default: other users' load then does not count), wall
seconds otherwise. Not an asv benchmark: nothing runs on import. SISA is created
through the plugin registry, as a suite would (public API only).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from unlearnbench.task import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import make_task, registry
from unlearnbench.training import accuracy, predict_logits

GRID = [(1, 1), (1, 5), (5, 1), (5, 5), (20, 1), (20, 5)]


def create(params: dict[str, Any]) -> Any:
    """The registered ``sisa`` method with ``params``."""
    return registry().get("method", "sisa").create(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist1d"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--requests", type=int, default=8, help="single-point deletions per cell")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    wall = device.type != "cpu" or args.threads != 1
    clock: Callable[[], float] = time.perf_counter if wall else time.process_time

    def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
        start = clock()
        out = fn(*args, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out, clock() - start

    root = Path(tempfile.mkdtemp(prefix="sisa-grid-"))
    recipe = TrainRecipe(epochs=args.epochs, batch_size=32, lr=1e-3)
    # no auxiliary split (SISA reads none): the five splits cover the data set as measured
    splits = SplitSizes(
        target=0.4, nonmember=0.1, test=0.2, shadow_in=0.15, shadow_out=0.15, auxiliary=0
    )
    fresh = iter(range(10**6))

    def new_task():  # a fresh cache each time, so every fit really trains
        return make_task(
            root / str(next(fresh)),
            dataset=args.dataset,
            architecture_params={"widths": [128, 64]},
            request=ForgetRequest(kind="random", count=args.requests, steps=args.requests),
            splits=splits,
            recipe=recipe,
            seed=args.seed,
            device=args.device,
        )

    def best_fit(method: Any, repeats: int = 2) -> float:
        """Least time of ``repeats`` fits, each on a fresh cache (the machine is shared)."""
        return min(timed(method.fit, *new_task())[1] for _ in range(repeats))

    task, ctx = new_task()
    test_x, test_y = task.x[task.splits.test], task.y[task.splits.test]
    requests = task.forget_steps  # single points, the same for every cell
    ctx.train(task.new_model("init"), task.splits.target)  # warm-up, not timed
    retrain_times, retrain_models, retrain_se = [], [], 0
    for forget in requests[:5]:  # retrain cost does not depend on the point
        model = task.new_model("init")
        stats, seconds = timed(ctx.train, model, task.splits.target, exclude=forget)
        retrain_times.append(seconds)
        retrain_models.append(model)
        retrain_se = stats.sample_epochs
    retrain_s = statistics.median(retrain_times)
    reference = predict_logits(retrain_models[0], test_x).argmax(1)
    print(
        f"SISA grid on {args.dataset}: {task.splits.target.numel()} target points, MLP 128-64, "
        f"{args.epochs} epochs, {len(requests)} single-point requests per cell, "
        f"{'wall' if wall else 'CPU'} seconds, {args.threads} thread(s), device {device}"
    )
    print(
        f"retrain: {retrain_s:.2f} s, test accuracy "
        f"{accuracy(retrain_models[0], test_x, test_y):.3f}, {retrain_se} sample-epochs"
    )
    head = (
        f"{'S':>3} {'R':>2} | {'acc':>5} {'cons':>5} | {'speed-up':>8} {'counted':>7} "
        f"{'S·3R/(2R+1)':>11} | {'storage':>9} {'pred':>4} | {'fit 1-by-1':>10} "
        f"{'fit stacked':>11} {'ratio':>5}"
    )
    print(head)
    print("-" * len(head))
    for shards, slices in GRID:
        method = create({"shards": shards, "slices": slices, "stacked": "off"})
        fit_off = best_fit(method)
        task, ctx = new_task()
        state = method.fit(task, ctx)
        fit_on_text = ratio_text = "-"
        if shards > 1:
            fit_on = best_fit(create({"shards": shards, "slices": slices, "stacked": "on"}))
            fit_on_text, ratio_text = f"{fit_on:.2f} s", f"{fit_on / fit_off:.2f}"
        times, sample_epochs, results = [], [], []
        for forget in requests:
            result, seconds = timed(method.unlearn, state, forget, task, ctx)
            times.append(seconds)
            sample_epochs.append(result.costs["retrain_sample_epochs"])
            results.append(result)
        first = results[0]
        agree = float((predict_logits(first.model, test_x).argmax(1) == reference).float().mean())
        speedup = retrain_s / max(statistics.mean(times), 1e-9)
        counted = retrain_se / max(statistics.mean(sample_epochs), 1e-9)
        theory = shards * 3 * slices / (2 * slices + 1)
        storage = first.costs["storage_bytes"] / 2**20
        print(
            f"{shards:>3} {slices:>2} | {accuracy(first.model, test_x, test_y):>5.3f} "
            f"{agree:>5.3f} | {speedup:>7.1f}x {counted:>6.1f}x {theory:>10.1f}x | "
            f"{storage:>6.2f} MB {first.costs['prediction_cost']:>4.0f} | "
            f"{fit_off:>8.2f} s {fit_on_text:>11} {ratio_text:>5}"
        )


if __name__ == "__main__":
    main()
