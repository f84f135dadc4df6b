"""Step 2 of the GPU check: stacked (torch.func) training against one model after another.

Two places train many small models of one shape: SISA's shards and LiRA's
reference models. Both are reached through the plugin registry, on one task
(data set and architecture as given; the default suite's mnist5k + MLP and
LeNet-5 on the GPU), each timed stacked and one by one on a fresh artifact
cache (nothing is loaded from an earlier fit), alternating, best of
``--repeats``: SISA's ``fit`` (``stacked = on / off``) and the ``lira``
evaluator, whose time is its K reference models plus scoring (``stacked = on /
off``). Prints a Markdown table with the ratio one-by-one / stacked and whether
the two paths' results agree (SISA: the fitted ensemble's test predictions;
LiRA: its AUC).

    python benchmarks/gpu/stacked.py --device cuda --epochs 40 --models 16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import torch

from unlearnbench import EvaluationInputs, ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.specs import resolve_params
from unlearnbench.testing import make_task, registry
from unlearnbench.training import predict_logits

# The default suite's splits (fractions of the pool).
SPLITS = SplitSizes(
    target=0.3, nonmember=0.1, test=0.15, shadow_in=0.3, shadow_out=0.1, auxiliary=0.05
)


def timed(device: torch.device, fn: Callable[[], Any]) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--architectures", nargs="+", default=["mlp", "lenet5"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--shards", type=int, default=5)
    parser.add_argument("--slices", type=int, default=5)
    parser.add_argument("--models", type=int, default=16, help="LiRA reference models K")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    reg = registry()
    root = Path(tempfile.mkdtemp(prefix="gpu-check-stacked-"))
    fresh = count()
    recipe = TrainRecipe(epochs=args.epochs, batch_size=64, lr=1e-3)
    sisa_spec: Any = reg.get("method", "sisa")
    lira_spec: Any = reg.get("evaluator", "lira")
    print(
        f"{args.dataset}, default-suite splits, {args.epochs} epochs, batch 64, Adam; best of "
        f"{args.repeats} alternated runs, each on a fresh artifact cache; wall seconds.\n"
    )
    print("| what | architecture | stacked s | one by one s | one by one / stacked | agree |")
    print("|---|---|---:|---:|---:|---|")
    for arch in args.architectures:
        arch_params = {"widths": [128, 64]} if arch == "mlp" else None

        def new_task(arch: str = arch, arch_params: Any = arch_params) -> Any:
            return make_task(
                root / str(next(fresh)),
                dataset=args.dataset,
                architecture=arch,
                architecture_params=arch_params,
                request=ForgetRequest(kind="random", count=20),
                splits=SPLITS,
                recipe=recipe,
                device=args.device,
                reg=reg,
            )

        # SISA: fit S shards over R slices
        best: dict[str, float] = {}
        preds: dict[str, torch.Tensor] = {}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                params = {"shards": args.shards, "slices": args.slices, "stacked": mode}
                method = sisa_spec.create(resolve_params(sisa_spec.params, params))
                task, ctx = new_task()
                state, seconds = timed(device, lambda: method.fit(task, ctx))  # noqa: B023
                best[mode] = min(best.get(mode, float("inf")), seconds)
                model = method.trained(state, task, ctx)
                preds[mode] = predict_logits(model, task.x[task.splits.test]).argmax(1)
        agree = (
            f"{float((preds['on'] == preds['off']).float().mean()):.3f} of test predictions"
            if len(preds) == 2
            else "-"
        )
        print(
            f"| SISA fit, S={args.shards}, R={args.slices} | {arch} | {best['on']:.2f} | "
            f"{best['off']:.2f} | {best['off'] / best['on']:.2f}x | {agree} |"
        )

        # LiRA: K reference models (+ scoring), through the evaluator
        best, aucs = {}, {}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                task, ctx = new_task()
                original = ctx.original()  # not timed: the evaluator's input
                inputs = EvaluationInputs(
                    task=task, original=original, unlearned=original, reference=original, costs={}
                )
                params = {"models": args.models, "stacked": mode}
                evaluator = lira_spec.create(resolve_params(lira_spec.params, params))
                result, seconds = timed(device, lambda: evaluator.evaluate(inputs, ctx))  # noqa: B023
                best[mode] = min(best.get(mode, float("inf")), seconds)
                aucs[mode] = result.metrics.get("lira_auc", float("nan"))
        print(
            f"| LiRA, K={args.models} reference models | {arch} | {best['on']:.2f} | "
            f"{best['off']:.2f} | {best['off'] / best['on']:.2f}x | AUC {aucs['on']:.3f} "
            f"vs {aucs['off']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
