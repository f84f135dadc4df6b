"""Replay DeepObliviate's stopping rule under every reading on recorded Δ series.

Reads a results store of ``leaderboards/reproductions/deepobliviate-table1-fig6/
suite-literal.toml``: its ``full-series`` cells (ε = 0) retrain every block after
the deleted one and record the whole raw Δ series (``residual_memory``).
Retraining is deterministic, so the series up to any stop is the same, and the
rule's decision under any reading and ε can be replayed on it exactly. For each
request and seed this prints the blocks retrained (``-``: never stopped) under

- ``ours``: Δ / Δ_d, x = block order, first test after 11 blocks (suite.toml);
- ``literal``: raw Δ (Eq. 5's L1 sum), x = block order, first test after 11;
- ``literal-4``: raw Δ, first test after 4 blocks, h from nolds.dfa from 4 points;
- ``from_one``: Δ / Δ_d with x = 1, 2, ... from the first retrained block;
- ``per_param``: Δ per parameter (mean absolute difference), x = block order;

each with the paper's |slope| < ε alone (``stop_guard = "none"``), and, where the
store ran that reading, checks the replay against the cell's blocks_retrained.
Then the block speed-up B / blocks, mean over seeds (the paper's Table I
reading) and its ratio of totals. Run::

    .venv/bin/python benchmarks/deepobliviate_literal_replay.py STORE [--markdown OUT]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path
from typing import Any

from unlearnbench.specs import MethodSpec, resolve_params
from unlearnbench.testing import registry

EPSILONS = (0.1, 0.08, 0.06, 0.04, 0.02)
# each reading: how Δ is scaled, and the ``deepobliviate`` parameters of its rule
READINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "ours": ("first", {"min_blocks": 11, "dfa_min_points": 11}),
    "literal": ("none", {"min_blocks": 11, "dfa_min_points": 11}),
    "literal-4": ("none", {"min_blocks": 4, "dfa_min_points": 4}),
    "from_one": ("first", {"min_blocks": 11, "dfa_min_points": 11, "power_law_x": "from_one"}),
    "per_param": ("per_param", {"min_blocks": 11, "dfa_min_points": 11}),
}


def scaled(raw: list[float], mode: str, num_params: int) -> list[float]:
    """Δ on the scale of the method's ``normalise`` parameter: ``first`` ÷ Δ_d,
    ``per_param`` ÷ the trainable parameter count, ``none`` raw."""
    if mode == "none":
        return [float(v) for v in raw]
    if mode == "per_param":
        scale = float(max(num_params, 1))
    else:
        scale = float(raw[0]) if raw and raw[0] > 0 else 1.0
    return [float(v) / scale for v in raw]


def first_stops(
    spec: MethodSpec, delta: list[float], first_block: int, options: dict[str, Any]
) -> dict[float, int | None]:
    """The first stop of the rule of ``deepobliviate`` (made from the registry with
    ``stop_guard="none"`` and ``options``) for every ε in one pass: the fitted slope
    at each length does not depend on ε, so each prefix is tested once."""
    params = {"epsilon": max(EPSILONS), "stop_guard": "none", **options}
    rule = spec.create(resolve_params(spec.params, params)).cfg.rule
    stops: dict[float, int | None] = dict.fromkeys(EPSILONS)
    for k in range(rule.min_points, len(delta) + 1):
        slope = abs(rule.test(delta[:k], first_block).slope)
        for epsilon in EPSILONS:
            if stops[epsilon] is None and slope < epsilon:
                stops[epsilon] = k
        if all(v is not None for v in stops.values()):
            break
    return stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args()
    con = sqlite3.connect(args.store)
    reg = registry()
    spec = reg.get("method", "deepobliviate")
    arch = reg.get("architecture", "lenet5_1d")
    model = arch.build((1, 40), 10, resolve_params(arch.params, {}))
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    series = con.execute(
        "select c.request, c.seed, c.config, s.points, f.points from cells c "
        "join series s on s.cell_id = c.cell_id and s.name = 'residual_memory' "
        "join series f on f.cell_id = c.cell_id and f.name = 'first_block' "
        "where c.method = 'full-series' and c.status = 'ok' order by c.request, c.seed"
    ).fetchall()
    actual = {
        (request, seed, method): value
        for request, seed, method, value in con.execute(
            "select c.request, c.seed, c.method, m.value from cells c join metrics m "
            "using(cell_id) where m.name = 'blocks_retrained' and c.status = 'ok'"
        )
    }
    lines = [
        f"lenet5_1d: {num_params} trainable parameters. Blocks retrained by reading and ε "
        "(`-`: the rule never stopped before block B); `[cell: n]` where the suite's cell "
        "disagrees with the replay.",
        "",
        "| request | seed | Δ_d (raw) | blocks | reading | "
        + " | ".join(f"ε={e:g}" for e in EPSILONS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(EPSILONS),
    ]
    speedups: dict[tuple[str, str, float], list[tuple[int, int]]] = {}
    mismatches = checked = 0
    for request, seed, config, points, first in series:
        raw = json.loads(points)
        first_block = int(json.loads(first)[0])
        blocks = json.loads(config)["method"]["params"]["blocks"]
        for reading, (mode, options) in READINGS.items():
            delta = scaled(raw, mode, num_params)
            stops = first_stops(spec, delta, first_block, options)
            cells = []
            for epsilon in EPSILONS:
                stop = stops[epsilon]
                done = len(raw) if stop is None else stop
                speedups.setdefault((request, reading, epsilon), []).append((blocks, done))
                text = "-" if stop is None else str(stop)
                cell = actual.get((request, seed, f"{reading}(epsilon={epsilon:g})"))
                if cell is not None:
                    checked += 1
                    if int(cell) != done:
                        mismatches += 1
                        text += f" [cell: {int(cell)}]"
                cells.append(text)
            lines.append(
                f"| {request} | {seed} | {raw[0]:.3g} | {len(raw)} | {reading} | "
                + " | ".join(cells)
                + " |"
            )
    lines += [
        "",
        f"Replay against the suite's cells: {checked - mismatches} of {checked} agree.",
        "",
        "Block speed-up B / blocks retrained: mean over seeds (ratio of totals)",
        "",
        "| request | reading | " + " | ".join(f"ε={e:g}" for e in EPSILONS) + " |",
        "|---|---|" + "---|" * len(EPSILONS),
    ]
    for request in sorted({r for r, _, _ in speedups}):
        for reading in READINGS:
            parts = []
            for epsilon in EPSILONS:
                pairs = speedups[request, reading, epsilon]
                mean = sum(b / d for b, d in pairs) / len(pairs)
                total = sum(b for b, _ in pairs) / sum(d for _, d in pairs)
                parts.append(f"{mean:.1f} ({total:.1f})")
            lines.append(f"| {request} | {reading} | " + " | ".join(parts) + " |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
