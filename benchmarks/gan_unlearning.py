"""GAN unlearning vs retraining on MNIST-1D with an overfit MLP, as the target set grows.

Seed paper 000 claims its GAN deletion is faster than retraining and that the
advantage grows with data (and model) size, at a small accuracy cost. This
script measures that side by side in one process: for each target size it
trains the original model, retrains without the forget set (the reference) and
runs ``gan`` at several α, and prints test accuracy, forget accuracy, mean
top-1 confidence on the forget vs non-member points, the GAN's steps and final
distance estimate, and the wall and CPU time of the deletion against retrain's.

Run (about 2-4 minutes on a 2-core machine; keep it under ``nice``)::

    nice .venv/bin/python benchmarks/gan_unlearning.py
    nice .venv/bin/python benchmarks/gan_unlearning.py --sizes 1000 2000 --alphas 0.5

``--suite default`` instead runs the built-in default suite's tasks (mnist5k, its
MLP, its three requests, ``--seeds`` of its seeds) as ``unlearnbench run`` builds
them, and prints per request the retrain and GAN unlearning wall times, their
ratio (retrain / GAN: above 1 means GAN is faster) and the GAN's steps and
accuracies; ``--gan KEY=VALUE`` overrides a GAN parameter (repeatable)::

    nice .venv/bin/python benchmarks/gan_unlearning.py --suite default --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from unlearnbench.specs import MethodContext, resolve_params
from unlearnbench.task import Task
from unlearnbench.task_values import ForgetRequest, SplitSizes, TrainRecipe
from unlearnbench.testing import make_task, registry
from unlearnbench.training import accuracy, predict_proba

NONMEMBER, TEST, AUXILIARY = 500, 1000, 500  # auxiliary: the GAN's third-party data


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.2, 0.5, 1.0])
    parser.add_argument("--forget", type=int, default=100, help="points deleted (fixed)")
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: stable on a busy machine)"
    )
    parser.add_argument(
        "--suite", choices=["default"], default=None, help="run the default suite's requests"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="with --suite")
    parser.add_argument(
        "--gan", action="append", default=[], metavar="KEY=VALUE", help="GAN parameter override"
    )
    return parser.parse_args()


def gan_overrides(items: list[str]) -> dict[str, object]:
    """``KEY=VALUE`` pairs, the value read as a TOML value (a bare word as a string)."""
    import tomllib

    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


def default_suite(args: argparse.Namespace) -> None:
    """Retrain against GAN unlearning on the default suite's tasks, timed back to back."""
    from unlearnbench.cli.common import default_suite_path
    from unlearnbench.execution.cache import ArtifactCache
    from unlearnbench.execution.cell import run_method
    from unlearnbench.execution.context import TaskContext
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.suite import load_suite
    from unlearnbench.execution.task_runner import Runner

    reg = registry()
    plan = build_plan(load_suite(default_suite_path()), reg)
    overrides = gan_overrides(args.gan)
    print(f"default suite, torch threads {args.threads}, GAN overrides {overrides or 'none'}")
    print(
        f"{'request':<10} {'seed':>4} {'retrain_s':>9} {'gan_s':>7} {'ratio':>6} {'cpu':>6} "
        f"{'steps':>5} "
        f"{'critic':>6} {'dist':>6} {'test_r':>6} {'test_g':>6} {'fgt_r':>6} {'fgt_g':>6}"
    )
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        runner = Runner(reg, ArtifactCache(Path(tmp)), torch.device("cpu"))
        for task_plan in plan.tasks:
            if task_plan.seed not in args.seeds:
                continue
            task = runner.build_task(task_plan)
            ctx = TaskContext(task, runner.cache)
            ctx.original()  # cached, as the run's set-up does, before anything is timed
            gan = next(c.method for c in task_plan.cells if c.method.name == "gan")
            gan_spec = reg.get("method", "gan")
            gan = type(gan)(
                gan.name, resolve_params(gan_spec.params, {**gan.params, **overrides}), gan.label
            )
            retrain = reg.get("method", "retrain")
            ref, _, ref_cpu = timed(run_method, retrain, task_plan.reference, task, ctx)
            out, _, gan_cpu = timed(run_method, gan_spec, gan, task, ctx)
            ratio = ref.unlearn_seconds / out.unlearn_seconds
            ratios.append(ratio)
            cpu_ratios.append(ref_cpu / gan_cpu)
            s = task.splits
            print(
                f"{task_plan.request.kind:<10} {task_plan.seed:>4} {ref.unlearn_seconds:9.2f} "
                f"{out.unlearn_seconds:7.2f} {ratio:6.2f} {ref_cpu / gan_cpu:6.2f} "
                f"{out.costs['gan_steps']:5.0f} "
                f"{out.costs['critic_steps']:6.0f} {out.costs['gan_distance_final']:6.3f} "
                f"{accuracy(ref.model, task.x[s.test], task.y[s.test]):6.3f} "
                f"{accuracy(out.model, task.x[s.test], task.y[s.test]):6.3f} "
                f"{accuracy(ref.model, task.x[s.forget], task.y[s.forget]):6.3f} "
                f"{accuracy(out.model, task.x[s.forget], task.y[s.forget]):6.3f}",
                flush=True,
            )
    geo = torch.tensor(ratios).log().mean().exp().item()
    geo_cpu = torch.tensor(cpu_ratios).log().mean().exp().item()
    print("ratio = retrain wall seconds / GAN wall seconds of the unlearning step (fit")
    print(f"excluded, as the board's speedup): geometric mean {geo:.2f}, min {min(ratios):.2f}")
    print("cpu = the same with this process's CPU seconds of the whole method (fit included;")
    print(f"steadier on a loaded machine): geometric mean {geo_cpu:.2f}, min {min(cpu_ratios):.2f}")


def gan_task(args: argparse.Namespace, size: int, cache: Path) -> tuple[Task, MethodContext]:
    """The task of one target size, its splits drawn from one MNIST-1D pool (sized
    for the largest of ``--sizes``) and built as a suite builds it."""
    return make_task(
        cache,
        dataset="mnist1d",
        dataset_params={"samples": max(args.sizes) + NONMEMBER + TEST + AUXILIARY},
        architecture="mlp",
        architecture_params={"widths": args.widths},
        request=ForgetRequest(kind="random", count=args.forget),
        splits=SplitSizes(
            target=size,
            nonmember=NONMEMBER,
            test=TEST,
            shadow_in=0,
            shadow_out=0,
            auxiliary=AUXILIARY,
        ),
        recipe=TrainRecipe(epochs=args.epochs, batch_size=64, lr=1e-3),
        seed=args.seed,
    )


def timed(fn, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def describe(task: Task, model: torch.nn.Module) -> dict[str, float]:
    s = task.splits

    def conf(idx: torch.Tensor) -> float:
        return float(predict_proba(model, task.x[idx]).max(1).values.mean())

    return {
        "test": accuracy(model, task.x[s.test], task.y[s.test]),
        "forget": accuracy(model, task.x[s.forget], task.y[s.forget]),
        "conf_f": conf(s.forget),
        "conf_nm": conf(s.nonmember),
    }


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.suite == "default":
        default_suite(args)
        return
    gan_spec = registry().get("method", "gan")
    header = (
        f"{'target':>6} {'method':<12} {'test':>6} {'forget':>6} {'conf_f':>6} {'conf_nm':>7} "
        f"{'steps':>5} {'dist0':>6} {'dist':>6} {'wall_s':>7} {'cpu_s':>7} {'speedup':>7}"
    )
    print(f"MNIST-1D, MLP {args.widths}, {args.epochs} epochs, forget {args.forget} random points,")
    print(
        f"{NONMEMBER} non-member points; conf_nm = the original model's top-1 confidence on them; "
        f"the GAN's non-member posteriors from {AUXILIARY} auxiliary points"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            task, ctx = gan_task(args, size, Path(tmp))
            original, o_wall, o_cpu = timed(ctx.original)
            ref_nm = describe(task, original)["conf_nm"]

            def retrain(task=task, ctx=ctx):
                model = task.new_model("init")
                ctx.train(model, task.splits.target, exclude=task.splits.forget)
                return model

            reference, r_wall, r_cpu = timed(retrain)
            rows = [
                ("original", original, {}, [], o_wall, o_cpu),
                ("retrain", reference, {}, [], r_wall, r_cpu),
            ]
            for alpha in args.alphas:
                gan = gan_spec.create(resolve_params(gan_spec.params, {"alpha": alpha}))
                state = gan.fit(task, ctx)
                result, g_wall, g_cpu = timed(
                    lambda gan=gan, state=state, task=task, ctx=ctx: gan.unlearn(
                        state, task.forget_steps[0], task, ctx
                    )
                )
                rows.append(
                    (
                        f"gan a={alpha:g}",
                        result.model,
                        result.costs,
                        result.series["gan_distance"],
                        g_wall,
                        g_cpu,
                    )
                )
            for name, model, costs, series, wall, cpu in rows:
                m = describe(task, model)
                steps = f"{costs['gan_steps']:5.0f}" if costs else f"{'':5}"
                dist = (
                    f"{series[0]:6.3f} {costs['gan_distance_final']:6.3f}" if costs else f"{'':13}"
                )
                speed = f"{r_cpu / cpu:7.2f}" if name.startswith("gan") else f"{'':7}"
                print(
                    f"{size:>6} {name:<12} {m['test']:6.3f} {m['forget']:6.3f} {m['conf_f']:6.3f} "
                    f"{ref_nm:7.3f} {steps} {dist} {wall:7.2f} {cpu:7.2f} {speed}",
                    flush=True,
                )
    print("dist0 / dist = the critic's distance estimate after its warm-up / at the stop (< 0.03);")
    print("speedup = retrain CPU seconds / GAN deletion CPU seconds (same process, 1 thread);")
    print("original's time is its training; GAN times exclude fit (one forward pass of the")
    print("frozen model over the auxiliary set).")


if __name__ == "__main__":
    main()
