"""``<results folder>/plots.json``: the suite's ``[[plots]]``, kept with its results.

``run`` writes the file, so ``unlearnbench leaderboard DIR`` redraws the suite's
plots without the suite file. It is read back through the suite parser, so a
hand-edited file is checked like a suite, every mistake naming its key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from unlearnbench.execution.cache import atomic_write_bytes
from unlearnbench.execution.suite import PlotSpec, SuiteError, parse_plots

PLOTS_FILE = "plots.json"


def save_plot_specs(out_dir: Path, specs: Sequence[PlotSpec]) -> None:
    """Write the specs; with none, remove an earlier suite's file (its plots are
    no longer this folder's run)."""
    path = out_dir / PLOTS_FILE
    if not specs:
        path.unlink(missing_ok=True)
        return
    text = json.dumps([spec.as_dict() for spec in specs], indent=2, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def load_plot_specs(folder: Path) -> tuple[PlotSpec, ...]:
    """The folder's specs (none without a file); :class:`SuiteError` when it is bad."""
    path = folder / PLOTS_FILE
    if not path.exists():
        return ()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SuiteError(PLOTS_FILE, f"cannot be read as JSON: {exc}") from None
    return parse_plots(raw, key=PLOTS_FILE)
