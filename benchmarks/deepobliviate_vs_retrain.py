"""DeepObliviate against naive retraining of the same blocks, side by side in one run.

On MNIST-1D with an MLP, the target set is split into B label-balanced blocks
and trained block after block (DeepObliviate's stored training). For each
deletion request (one point, ten points, one whole block; at given positions)
and each ε this prints DeepObliviate's test accuracy, its consistency
(agreement of predicted labels on the test set) with the naive retrain, the
consistency of the not-unlearned model P_B with the naive retrain (the floor),
blocks retrained, the block speed-up B/(t+1) and the measured speed-up over
the naive retrain. The naive retrain is the paper's baseline: the same B
blocks, seeds and epochs trained from P_0 without the deleted points (not the
``retrain`` method, which trains on the whole retain set at once; its
accuracy is printed once for context as ``standard training``). ε = 0 never
stops and must reproduce the naive retrain exactly (consistency 1). Run::

    nice .venv/bin/python benchmarks/deepobliviate_vs_retrain.py
    nice .venv/bin/python benchmarks/deepobliviate_vs_retrain.py --blocks 200 --samples 8000

Times are CPU seconds of this process (``time.process_time``) on CPU with one
thread (the default: other users' load then does not count); the wall-clock
ratio is printed too. Not an asv benchmark: nothing runs on import.

Each row also shows where retraining stopped (``stop``: block d+t), whether
the stopping rule ended it (``rule``) and with an h from DFA (``dfa``), and
the h it had. A last table replays the rule on each request's full Δ series
(the ε = 0 run: retraining is deterministic, so the series up to any stop is
the same) for every ε under three readings: the default (x = block order,
rising guard), ``from_one`` with the guard, and ``from_one`` without it (the
rule this plugin used before). ``-`` means the rule never stopped. The
leaderboard's MNIST-1D regime is::

    nice .venv/bin/python benchmarks/deepobliviate_vs_retrain.py --samples 4000 \
        --target 1200 --blocks 40 --epochs-per-block 10 --widths 256 256 \
        --positions 0.5 --many 100 --spread --epsilons 0.1 0.02
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from unlearnbench.specs import MethodContext, MethodSpec, Unlearned, resolve_params
from unlearnbench.task import Task
from unlearnbench.task_values import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import make_task, registry
from unlearnbench.training import accuracy, predict_logits

PROFILE_AT = (1, 2, 3, 5, 10, 20, 40)
# the rule's readings as ``deepobliviate`` parameters; min_blocks 3: test from 3 blocks on
READINGS: dict[str, dict[str, Any]] = {
    "block+guard": {},
    "from_one+guard": {"power_law_x": "from_one"},
    "from_one (old)": {"power_law_x": "from_one", "stop_guard": "none"},
}


def method(spec: MethodSpec, **params: Any) -> Any:
    """A ``deepobliviate`` method object, made from the registry as a suite makes it."""
    return spec.create(resolve_params(spec.params, params))


def replay(
    spec: MethodSpec, delta: list[float], first_block: int, shortest: int, epsilons: list[float]
) -> list[str]:
    """Blocks retrained under each reading and ε, from a recorded normalised Δ series
    (never fewer than ``shortest``: up to the last block holding deleted points), by
    the stopping rule of a method object made with those parameters."""
    out = []
    for options in READINGS.values():
        for epsilon in epsilons:
            rule = method(spec, epsilon=epsilon, min_blocks=3, **options).cfg.rule
            stop = rule.first_stop(delta, first_block, shortest)
            out.append("-" if stop is None else str(stop))
    return out


def timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    """``fn(*args)`` with its CPU seconds and wall seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn(*args)
    return out, time.process_time() - cpu, time.perf_counter() - wall


def naive_from_scratch(
    deepobliviate: Any, state: Any, forget: torch.Tensor, task: Task, ctx: MethodContext
) -> Unlearned:
    """The paper's naive retrain: every block from P_0 without ``forget``.

    ``naive`` retrains from the first block holding a deleted point (the checkpoints
    before it do not change); the paper's baseline trains all B blocks, so its state
    is given with every point in block 0. Same model, the whole cost.
    """
    from_zero = dataclasses.replace(state, block_of=torch.zeros_like(state.block_of))
    return deepobliviate.naive(from_zero, forget, task, ctx)


def labels(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return predict_logits(model, x).argmax(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=8000, help="MNIST-1D pool size")
    parser.add_argument("--target", type=int, default=5000, help="training (target) set size")
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--epochs-per-block", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.1, 0.05, 0.02])
    parser.add_argument("--positions", type=float, nargs="+", default=[0.3, 0.0, 0.6])
    parser.add_argument("--many", type=int, default=10, help="points of the multi-point request")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="draw the multi-point request from the whole target set, not one block",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blocks = args.blocks
    splits = SplitSizes(
        target=args.target,
        nonmember=100,
        test=args.samples - args.target - 300,
        shadow_in=100,
        shadow_out=100,
        auxiliary=0,  # no evaluator here reads it
    )
    recipe = TrainRecipe(epochs=args.epochs_per_block, batch_size=64, lr=args.lr)
    requests = [
        ForgetRequest(kind="random", count=1, position=p, blocks=blocks) for p in args.positions
    ]
    requests += [
        ForgetRequest(kind="random", count=args.many)
        if args.spread
        else ForgetRequest(
            kind="random", count=args.many, position=args.positions[0], blocks=blocks
        ),
        ForgetRequest(kind="block", position=args.positions[0], blocks=blocks),
    ]
    spec = registry().get("method", "deepobliviate")
    rows = []
    profiles = []
    replays = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, request in enumerate(requests):
            task, ctx = make_task(
                Path(tmp),
                dataset="mnist1d",
                dataset_params={"samples": args.samples},
                architecture="mlp",
                architecture_params={"widths": args.widths},
                request=request,
                splits=splits,
                recipe=recipe,
                seed=args.seed,
            )
            x, y = task.x[task.splits.test], task.y[task.splits.test]
            forget = task.splits.forget
            deepobliviate = method(spec, blocks=blocks)
            state, fit_cpu, _ = timed(deepobliviate.fit, task, ctx)
            if n == 0:
                standard = ctx.original()
                print(
                    f"MNIST-1D {args.samples} samples, target {args.target}, test {x.shape[0]}, "
                    f"MLP {args.widths}, Adam lr {args.lr}, B={blocks}, "
                    f"{args.epochs_per_block} epochs per block, seed {args.seed}\n"
                    f"stored training: {fit_cpu:.1f} CPU s, {state.storage_bytes / 1e6:.1f} MB; "
                    f"standard training ({args.epochs_per_block} epochs on the whole target): "
                    f"accuracy {accuracy(standard, x, y):.4f}"
                )
            naive_value, naive_cpu, naive_wall = timed(
                naive_from_scratch, deepobliviate, state, forget, task, ctx
            )
            naive = naive_value.model
            before = deepobliviate.trained(state, task, ctx)  # P_B
            naive_labels = labels(naive, x)
            floor = float((labels(before, x) == naive_labels).float().mean())
            naive_acc = accuracy(naive, x, y)
            for epsilon in [*args.epsilons, 0.0]:
                result, cpu, wall = timed(
                    method(spec, blocks=blocks, epsilon=epsilon).unlearn, state, forget, task, ctx
                )
                if epsilon == 0:
                    delta = result.series["residual_memory_normalised"]
                    picks = [x for x in PROFILE_AT if x <= len(delta)]
                    profiles.append([request.label_text, *(delta[x - 1] for x in picks)])
                    first_block = int(result.series["first_block"][0])
                    last_block = max(
                        j + 1
                        for j, members in enumerate(state.blocks)
                        if torch.isin(members, forget).any()
                    )
                    shortest = last_block - first_block + 1
                    replays.append(
                        [
                            request.label_text,
                            *replay(spec, delta, first_block, shortest, args.epsilons),
                        ]
                    )
                rows.append(
                    {
                        "request": request.label_text,
                        "block": int(result.series["first_block"][0]),
                        "ε": epsilon,
                        "acc": accuracy(result.model, x, y),
                        "naive acc": naive_acc,
                        "P_B acc": accuracy(before, x, y),
                        "con": float((labels(result.model, x) == naive_labels).float().mean()),
                        "P_B con": floor,
                        "retrained": int(result.costs["blocks_retrained"]),
                        "stop": int(result.costs["stop_block_final"]),
                        "rule": int(result.costs["rule_stopped"]),
                        "dfa": int(result.costs["dfa_decided"]),
                        "h": result.costs["dfa_h_final"],
                        "block ×": result.costs["block_speedup"],
                        "cpu ×": naive_cpu / cpu,
                        "wall ×": naive_wall / wall,
                        "naive cpu s": naive_cpu,
                        "cpu s": cpu,
                    }
                )
    print(tabulate(rows, headers="keys", floatfmt=".4g"))
    print("\nresidual memory Δ_x / Δ_1 at x blocks after the first affected one (ε = 0 runs)")
    print(tabulate(profiles, headers=["request", *map(str, PROFILE_AT)], floatfmt=".3g"))
    print("\nblocks retrained when the rule is replayed on the ε = 0 run's Δ series")
    heads = [f"{name} ε={e:g}" for name in READINGS for e in args.epsilons]
    print(tabulate(replays, headers=["request", *heads]))


if __name__ == "__main__":
    main()
