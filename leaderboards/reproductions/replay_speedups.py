"""Replay the reproduction READMEs' speed-ups from a results store, independently
of unlearnbench's reports (sqlite3 and the standard library only).

Per method and request: the work each seed's unlearning took, the per-seed work
speed-ups against retrain, and their ratio of totals (sum of retrain's work over
sum of the method's), beside the arithmetic and geometric means of the per-seed
ratios; against the method's own naive retraining where the store has it; and
blocks retrained for DeepObliviate.

    python leaderboards/reproductions/replay_speedups.py FOLDER/results.sqlite
"""

from __future__ import annotations

import math
import sqlite3
import sys
from collections import defaultdict


def load(path: str) -> dict[tuple[str, str], dict[int, dict[str, float]]]:
    """(method, request) -> seed -> metric -> value, for the ``ok`` cells."""
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    rows = conn.execute(
        "SELECT c.method, c.request, c.seed, m.name, m.value FROM cells c "
        "JOIN metrics m USING (cell_id) WHERE c.status = 'ok'"
    ).fetchall()
    out: dict[tuple[str, str], dict[int, dict[str, float]]] = defaultdict(dict)
    for method, request, seed, name, value in rows:
        out[(method, request)].setdefault(seed, {})[name] = value
    return out


def geometric(values: list[float]) -> float:
    if not values or any(v <= 0 for v in values):
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))


def report(path: str) -> None:
    for (method, request), seeds in sorted(load(path).items()):
        cells = [seeds[s] for s in sorted(seeds)]
        if not all("work_speedup" in c and "unlearn_sample_passes" in c for c in cells):
            continue
        work = [max(c["unlearn_sample_passes"], 1.0) for c in cells]
        reference = [c["work_speedup"] * w for c, w in zip(cells, work, strict=True)]
        ratios = [c["work_speedup"] for c in cells]
        print(f"{method} {request}: seeds {sorted(seeds)}, work {work}")
        print(
            f"  against retrain: per seed {[round(r, 1) for r in ratios]}, "
            f"arithmetic {sum(ratios) / len(ratios):.3g}, geometric {geometric(ratios):.3g}, "
            f"ratio of totals {sum(reference) / sum(work):.3g}"
        )
        if all("naive_work_speedup" in c for c in cells):
            naive = [c["naive_work_speedup"] * w for c, w in zip(cells, work, strict=True)]
            total = sum(naive) / sum(work)
            print(f"  against its own naive retraining: ratio of totals {total:.3g}")
        if all("blocks_retrained" in c for c in cells):
            print(f"  blocks retrained {[c['blocks_retrained'] for c in cells]}")


if __name__ == "__main__":
    for store in sys.argv[1:]:
        report(store)
