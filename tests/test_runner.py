"""The runner end to end through the CLI on tiny suites (CPU, seconds)."""

from __future__ import annotations

import csv
import re
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import write
from unlearnbench.cli import main

SUITE = """
name = "tiny"
seeds = [0, 1]
datasets = ["digits"]
architectures = [{ name = "mlp", params = { widths = [32] } }]
methods = ["retrain", "original"]
evaluators = ["accuracy", "consistency", "time"]
[splits]
target = 400
nonmember = 100
test = 300
shadow_in = 0
shadow_out = 0
[train]
epochs = 30
batch_size = 32
lr = 0.003
[[requests]]
kind = "random"
count = 40
"""


def run(tmp_path: Path, text: str = SUITE) -> int:
    suite = write(tmp_path / "suite.toml", text)
    return main(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress"])


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_run_writes_store_and_leaderboards(tmp_path: Path, capsys) -> None:
    assert run(tmp_path) == 0
    out = tmp_path / "out"
    assert "leaderboard:" in capsys.readouterr().out
    rows = {r["method"]: r for r in read_csv(out / "leaderboard.csv")}
    assert set(rows) == {"retrain", "original"}
    header = list(read_csv(out / "leaderboard.csv")[0])
    assert header[:5] == ["dataset", "architecture", "method", "request", "seeds"]
    for metric in (
        "test_accuracy",
        "retain_accuracy",
        "forget_accuracy",
        "consistency",
        "unlearn_seconds",
        "speedup",
    ):
        assert metric in header and f"{metric}_ci95" in header
    retrain, original = rows["retrain"], rows["original"]
    assert retrain["seeds"] == "2"
    assert float(retrain["consistency"]) == 1.0
    assert float(retrain["speedup"]) == pytest.approx(1.0)
    # the original model was trained on the forget set: an overfit model knows it better
    assert float(original["forget_accuracy"]) >= float(retrain["forget_accuracy"])
    assert float(original["retain_accuracy"]) > 0.95
    markdown = (out / "leaderboard.md").read_text()
    assert "| retrain" in markdown.replace("  ", " ") and "original" in markdown


def test_rerun_resumes_without_recomputing(tmp_path: Path, capsys) -> None:
    assert run(tmp_path) == 0
    db = tmp_path / "out" / "results.sqlite"
    first = sqlite3.connect(db).execute("SELECT cell_id, finished_at FROM cells").fetchall()
    capsys.readouterr()
    assert run(tmp_path) == 0
    assert "0 cells done, 4 already done" in capsys.readouterr().err
    again = sqlite3.connect(db).execute("SELECT cell_id, finished_at FROM cells").fetchall()
    assert sorted(first) == sorted(again)


def test_failed_cell_is_recorded_and_others_go_on(tmp_path, capsys, with_fixture_plugin) -> None:
    text = SUITE.replace('"retrain", "original"', '"retrain", "exploding", "original"')
    assert run(tmp_path, text) == 1
    err = capsys.readouterr().err
    assert "4 cells done, 0 already done, 2 failed" in err
    assert "this method always fails" in err
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    errors = con.execute("SELECT error FROM cells WHERE status = 'failed'").fetchall()
    assert len(errors) == 2 and all("Traceback" in e for (e,) in errors)
    assert "Failed cells (2)" in (tmp_path / "out" / "leaderboard.md").read_text()


def test_shared_original_model_is_trained_once_per_task(tmp_path, with_fixture_plugin) -> None:
    text = SUITE.replace("seeds = [0, 1]", "seeds = [0]").replace(
        "[[requests]]", '[[requests]]\nkind = "class"\nlabel = 2\n[[requests]]'
    )
    assert run(tmp_path, text) == 0
    cache = tmp_path / "out" / "cache"
    kinds = [p.read_text() for p in cache.rglob("*.json")]
    # one original for the seed (shared by both requests); the reference is re-run
    # (and re-timed) in every run, never taken from the cache
    assert sum('"artifact": "original"' in k for k in kinds) == 1
    assert sum('"artifact": "reference"' in k for k in kinds) == 0


def test_fixture_dataset_runs_through_the_whole_pipeline(tmp_path, with_fixture_plugin) -> None:
    text = SUITE.replace('datasets = ["digits"]', 'datasets = ["blobs"]').replace(
        "test = 300", "test = 50"
    )
    assert run(tmp_path, text) == 0
    rows = read_csv(tmp_path / "out" / "leaderboard.csv")
    assert {r["dataset"] for r in rows} == {"blobs"}
    assert float(rows[0]["test_accuracy"]) > 0.8


def test_leaderboard_command(tmp_path: Path, capsys) -> None:
    assert run(tmp_path) == 0
    capsys.readouterr()
    for fmt in ("md", "csv", "json"):
        assert main(["leaderboard", str(tmp_path / "out"), "--format", fmt]) == 0
        assert "retrain" in capsys.readouterr().out
    assert main(["leaderboard", str(tmp_path / "nowhere")]) == 2


def test_a_changed_suite_in_the_same_folder_shows_only_its_own_results(tmp_path, capsys) -> None:
    assert run(tmp_path, SUITE.replace("epochs = 30", "epochs = 1")) == 0
    short = {r["method"]: r for r in read_csv(tmp_path / "out" / "leaderboard.csv")}
    assert run(tmp_path) == 0
    full = {r["method"]: r for r in read_csv(tmp_path / "out" / "leaderboard.csv")}
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    assert con.execute("SELECT count(*) FROM cells WHERE method = 'retrain'").fetchone()[0] == 4
    assert full["retrain"]["seeds"] == "2"
    assert float(full["retrain"]["test_accuracy"]) > float(short["retrain"]["test_accuracy"])


def test_adding_an_evaluator_does_not_retrain_the_shared_models(tmp_path) -> None:
    assert run(tmp_path) == 0
    more = SUITE.replace('"time"]', '"time", "costs"]')
    assert run(tmp_path, more) == 0
    kinds = [p.read_text() for p in (tmp_path / "out" / "cache").rglob("*.json")]
    assert sum('"artifact": "original"' in k for k in kinds) == 2  # one per seed


def test_run_suite_is_the_library_path_and_resumes(tmp_path: Path) -> None:
    """``run_suite`` runs a suite file into a store as ``unlearnbench run`` does, and a
    second call finds every cell done; a wrong executor name is refused first."""
    from tests.suites import suite_toml
    from unlearnbench.execution import run_suite
    from unlearnbench.execution.store import ResultStore
    from unlearnbench.testing import registry

    suite = write(tmp_path / "suite.toml", suite_toml("lib"))
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        run_suite(suite, tmp_path / "out", registry(), executor="threads")
    assert not (tmp_path / "out").exists()
    result = run_suite(suite, tmp_path / "out", registry(), device="cpu")
    assert (result.summary.ok, result.summary.failed, result.plan.size) == (2, 0, 2)
    with ResultStore(result.store_path, read_only=True) as store:
        cells = store.cells()
        assert {c["method"] for c in cells} == {"retrain", "original"}
        assert {c["status"] for c in cells} == {"ok"}
    again = run_suite(suite, tmp_path / "out", registry(), device="cpu")
    assert (again.summary.ok, again.summary.skipped) == (0, 2)


def _record_in_store(store: Path, **provenance: object) -> None:
    """Make every cell of ``store`` say it was computed with ``provenance``'s values."""
    import json
    from contextlib import closing

    with closing(sqlite3.connect(store)) as conn, conn:
        for cell_id, raw in conn.execute("SELECT cell_id, provenance FROM cells").fetchall():
            changed = json.dumps({**json.loads(raw), **provenance})
            conn.execute("UPDATE cells SET provenance = ? WHERE cell_id = ?", (changed, cell_id))


@pytest.mark.parametrize(
    ("recorded", "refusal", "escape"),
    [
        ({"torch_threads": 7}, "2 with 7 threads); this run would use 1", "allow_mixed_threads"),
        ({"device": "cuda:0"}, "(2 on cuda); this run would use cpu", "allow_mixed_devices"),
    ],
)
def test_run_suite_refuses_to_resume_what_it_would_mix(
    tmp_path: Path, recorded, refusal, escape
) -> None:
    """``run_suite`` keeps the CLI's resume rules: finished CPU cells of another torch
    thread count, or cells of another device type, are not mixed with new ones
    (it used to resume them silently) unless asked."""
    from tests.suites import suite_toml
    from unlearnbench.execution import run_suite
    from unlearnbench.execution.run import RunRefused
    from unlearnbench.testing import registry

    suite, out = tmp_path / "suite.toml", tmp_path / "out"
    write(suite, suite_toml("lib", seeds=[0]))
    assert run_suite(suite, out, registry(), device="cpu", threads=1).summary.ok == 2
    _record_in_store(out / "results.sqlite", **recorded)
    write(suite, suite_toml("lib", seeds=[0, 1]))
    before = (out / "results.sqlite").read_bytes()
    with pytest.raises(RunRefused, match=re.escape(refusal)):
        run_suite(suite, out, registry(), device="cpu", threads=1)
    assert (out / "results.sqlite").read_bytes() == before, "the refused run wrote cells"
    mixed = run_suite(suite, out, registry(), device="cpu", threads=1, **{escape: True})
    assert (mixed.summary.ok, mixed.summary.skipped) == (2, 2)


def test_run_suite_chooses_the_executor_as_the_cli_does(tmp_path: Path) -> None:
    """``executor="auto"`` is the library's too: one task stays in this process, at
    one torch thread on the CPU."""
    from tests.suites import suite_toml
    from unlearnbench.execution import run_suite
    from unlearnbench.testing import registry

    suite = write(tmp_path / "suite.toml", suite_toml("lib", seeds=[0]))
    result = run_suite(suite, tmp_path / "out", registry(), device="cpu", executor="auto")
    choice = result.prepared.choice
    assert choice is not None and choice.executor == "local" and choice.threads == 1
    assert choice.why.startswith("1 tasks pending on ")
    assert result.prepared.executor.threads == 1 and result.summary.ok == 2
