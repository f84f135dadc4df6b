"""Draw DeepObliviate's residual-memory curves per training regime from a results store.

Reads the ``residual_memory`` series (raw Δ, one per cell) of a store written
by ``leaderboards/reproductions/deepobliviate-fig2-residual-memory/
suite-regimes.toml`` (ε = 0, so each series covers every block from d to B),
groups the cells by architecture label and method label (Adam; SGD at each
lr), and writes

- a figure: per group, Δ/Δ_d of each seed (thin) and its mean over seeds
  (thick), one panel per architecture, plus the raw mean Δ on a log scale;
- a Markdown table: per group and seed, Δ_d, the drop (the minimum of Δ/Δ_d
  over the first 10% of the retrained blocks, and where), the mean of Δ/Δ_d
  over the middle and the last 10%, and last / middle (above 1: Δ still
  rises in the second half; about 1: a plateau; below 1: still falling);
- the mean curves as CSV (block after d, one column per group).

Run::

    .venv/bin/python benchmarks/deepobliviate_delta_regimes.py STORE --out DIR

Plain sqlite3 and matplotlib: no plugin code, so it can check the store.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def regime(config: dict) -> str:
    """'Adam lr 0.001' or 'SGD lr 0.05': the block optimizer and learning rate of a cell."""
    params = config["method"]["params"]
    train = config.get("train", {})
    optimizer = params.get("optimizer", "recipe")
    name = train.get("optimizer", "adam") if optimizer == "recipe" else optimizer
    lr = params.get("lr", 0.0) or train.get("lr", 0.001)
    return f"{'SGD' if name == 'sgd' else 'Adam'} lr {lr:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(args.store)
    rows = con.execute(
        "select c.architecture, c.seed, c.config, s.points from cells c "
        "join series s using(cell_id) where s.name = 'residual_memory' and c.status = 'ok'"
    ).fetchall()
    curves: dict[tuple[str, str], dict[int, np.ndarray]] = defaultdict(dict)
    for arch, seed, config, points in rows:
        cfg = json.loads(config)
        label = arch  # the suite label (logreg) or the plugin name
        values = np.asarray([p[-1] if isinstance(p, list) else p for p in json.loads(points)])
        curves[label, regime(cfg)][seed] = values
    archs = sorted({a for a, _ in curves}, key=lambda a: (a != "mlp", a))
    regimes = sorted({r for _, r in curves}, key=lambda r: (not r.startswith("Adam"), r))
    colours = dict(zip(regimes, ["tab:red", "tab:blue", "tab:green", "tab:purple"], strict=False))
    fig, axes = plt.subplots(2, len(archs), figsize=(5.5 * len(archs), 8), squeeze=False)
    table = [
        "| model | regime | seed | Δ_d | drop: min Δ/Δ_d in the first 10% (block after d) "
        "| middle 10% | last 10% | last / middle |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    means: dict[str, np.ndarray] = {}
    for col, arch in enumerate(archs):
        for name in regimes:
            seeds = curves.get((arch, name))
            if not seeds:
                continue
            length = min(len(v) for v in seeds.values())
            normed = []
            for seed, raw in sorted(seeds.items()):
                rel = raw[:length] / raw[0]
                normed.append(rel)
                axes[0, col].plot(rel, color=colours[name], lw=0.5, alpha=0.5)
                tenth = max(length // 10, 1)
                middle = length // 2 - tenth // 2
                low = int(np.argmin(rel[:tenth]))
                parts = [rel[middle : middle + tenth].mean(), rel[-tenth:].mean()]
                table.append(
                    f"| {arch} | {name} | {seed} | {raw[0]:.3g} | {rel[low]:.3f} ({low}) | "
                    + " | ".join(f"{p:.3f}" for p in parts)
                    + f" | {parts[1] / parts[0]:.2f} |"
                )
            mean = np.mean(normed, axis=0)
            means[f"{arch} {name}"] = mean
            axes[0, col].plot(
                mean, color=colours[name], lw=2, label=f"{name} (mean of {len(normed)})"
            )
            raw_mean = np.mean([v[:length] for v in seeds.values()], axis=0)
            axes[1, col].plot(raw_mean, color=colours[name], lw=1.5, label=name)
        axes[0, col].set_title(f"{arch}: Δ / Δ_d (thin: seeds)", fontsize=10)
        axes[0, col].set_yscale("log")
        axes[0, col].axhline(1.0, color="grey", lw=0.5)
        axes[1, col].set_title(f"{arch}: raw Δ (L1), mean over seeds", fontsize=10)
        axes[1, col].set_yscale("log")
        for row in (0, 1):
            axes[row, col].set_xlabel("blocks after the deleted point's block d")
            axes[row, col].legend(fontsize=8)
    fig.suptitle(
        "DeepObliviate, Fig. 2 setting (MNIST-1D, B = 600, d = 150, 1 point, 5 epochs/block):\n"
        "residual memory after the deletion by training regime",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(args.out / "residual_memory_regimes.png", dpi=110)
    (args.out / "residual_memory_regimes.md").write_text("\n".join(table) + "\n")
    length = min(len(v) for v in means.values())
    lines = ["block_after_d," + ",".join(means)]
    lines += [f"{k}," + ",".join(f"{v[k]:.6g}" for v in means.values()) for k in range(length)]
    (args.out / "residual_memory_regimes_mean.csv").write_text("\n".join(lines) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
