"""``run --plots``: which figures a run draws, checked before the run; none loads no matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.suites import suite_toml
from tests.test_leaderboard import demo_records, make_store
from unlearnbench import UnlearnbenchError
from unlearnbench.cli import main
from unlearnbench.cli.run import _plot_choice
from unlearnbench.reports.plot_requests import PlotRequest, choose_plots
from unlearnbench.reports.write import write_board

SWEEP = PlotRequest(name="fig6", metrics=("test_accuracy",), x="request.count")


def test_choose_plots_reads_all_none_and_names() -> None:
    assert choose_plots("all") is None
    assert choose_plots("none") == frozenset()
    assert choose_plots("tradeoff, roc") == {"tradeoff", "roc"}
    assert choose_plots("fig6,roc", [SWEEP]) == {"fig6", "roc"}
    with pytest.raises(UnlearnbenchError, match=r"unknown plot name.*'fig7'.*fig6"):
        choose_plots("roc,fig7", [SWEEP])
    with pytest.raises(UnlearnbenchError, match="unknown plot name"):
        choose_plots(",")


def test_the_default_suite_draws_the_tradeoff_plot_and_others_all() -> None:
    suite = SimpleNamespace(plots=())  # what _plot_choice reads of a suite
    assert _plot_choice(None, suite, default_suite=True) == {"tradeoff"}
    assert _plot_choice(None, suite, default_suite=False) is None
    assert _plot_choice("all", suite, default_suite=True) is None


ALL = {"tradeoff.png", "residual_memory.png", "roc.png"}  # what the demo board has


@pytest.mark.parametrize(
    ("plots", "files"),
    [
        (None, ALL),
        (frozenset(), set()),
        (frozenset({"roc", "tradeoff"}), {"roc.png", "tradeoff.png"}),
    ],
)
def test_write_board_draws_only_the_chosen_plots(tmp_path: Path, plots, files) -> None:
    store = make_store(tmp_path, demo_records())
    try:
        write_board(tmp_path / "out", store, plots=plots)
    finally:
        store.close()
    out = tmp_path / "out"
    assert {p.name for p in (out / "plots").glob("*.png")} == files
    markdown = (out / "leaderboard.md").read_text()
    assert {name for name in ALL if f"plots/{name}" in markdown} == files
    assert (out / "leaderboard.html").exists()


def test_no_plots_imports_no_matplotlib(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from tests.test_leaderboard import demo_records, make_store\n"
        "from unlearnbench.reports.write import write_board\n"
        f"store = make_store(Path({str(tmp_path)!r}), demo_records())\n"
        f"write_board(Path({str(tmp_path / 'out')!r}), store, plots=frozenset())\n"
        "store.close()\n"
        "assert not any(m.startswith('matplotlib') for m in sys.modules), 'matplotlib loaded'\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_run_refuses_an_unknown_plot_before_anything_runs(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "s.toml"
    suite.write_text(suite_toml())
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--plots", "nope", "--no-progress"])
    assert code != 0
    assert "unknown plot name" in capsys.readouterr().err
    assert not out.exists()
