"""What makes a number trustworthy: directions, collapsed cells, uninformative attacks,
the do-nothing floor, and work counted in a machine-independent unit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.test_leaderboard import make_store
from unlearnbench.execution.store import CellRecord, MetricValue, ResultStore
from unlearnbench.reports.board import best_cells, build_leaderboard, notes
from unlearnbench.reports.write import render
from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import registry

# Every metric a registered evaluator declares, with the direction it must have.
# "none": the target is retrain's value (judged by the *_gap beside it), never
# maximised or minimised. A new metric fails this test until it is listed here.
INTENDED = {
    "test_accuracy": "higher",
    "retain_accuracy": "higher",
    "forget_accuracy": "none",
    "naive_test_accuracy_gap": "lower",
    "consistency": "higher",
    "naive_consistency": "higher",
    "unlearn_seconds": "lower",
    "speedup": "higher",
    "unlearn_sample_passes": "lower",
    "work_speedup": "higher",
    "naive_work_speedup": "higher",
    "mia_fnr": "none",
    "mia_fnr_gap": "lower",
    "mia_nonmember_tnr": "none",
    "mia_retain_tpr": "none",
    "mia_attack_accuracy": "none",
    "mia_strength": "higher",
    "mia_efficacy": "none",
    "mia_efficacy_gap": "lower",
    "mia_efficacy_strength": "higher",
    "loss_attack_auc": "none",
    "loss_attack_auc_gap": "lower",
    "loss_attack_tpr_at_1fpr": "none",
    "loss_attack_tpr_at_1fpr_gap": "lower",
    "loss_attack_strength": "higher",
    "lira_auc": "none",
    "lira_auc_gap": "lower",
    "lira_tpr_at_1fpr": "none",
    "lira_tpr_at_1fpr_gap": "lower",
    "lira_tpr_at_0_1fpr": "none",
    "lira_tpr_at_0_1fpr_gap": "lower",
    "lira_strength": "higher",
    "unlearning_score": "higher",
    "unlearning_forget_quality": "higher",
    "unlearning_score_sample_passes": "none",
    "unlearning_score_naive": "higher",
    "unlearning_forget_quality_naive": "higher",
    "u_lira_naive_auc": "none",
    "u_lira_naive_auc_gap": "lower",
    "u_lira_naive_tpr_at_1fpr": "none",
    "u_lira_naive_tpr_at_1fpr_gap": "lower",
    "u_lira_auc": "none",
    "u_lira_auc_gap": "lower",
    "u_lira_tpr_at_1fpr": "none",
    "u_lira_tpr_at_1fpr_gap": "lower",
    "u_lira_strength": "higher",
    "backdoor_success": "none",
    "backdoor_success_gap": "lower",
    "backdoor_strength": "higher",
    "backdoor_success_before": "higher",
    "storage_bytes": "lower",
    "prediction_cost": "lower",
    "retrain_sample_epochs": "lower",
}


def test_every_registered_metric_has_its_intended_direction() -> None:
    declared = {
        metric.name: metric.direction
        for entry in registry().entries("evaluator")
        for metric in entry.spec.metrics
    }
    assert declared == INTENDED


def test_strength_is_never_marked_best_it_is_the_tasks_not_the_methods(tmp_path: Path) -> None:
    board = board_of(tmp_path, strength=0.9)
    assert not any(column == "loss_attack_strength" for _, column in best_cells(board))


def test_only_test_accuracy_decides_a_collapse() -> None:
    utility = {
        m.name
        for entry in registry().entries("evaluator")
        for m in entry.spec.metrics
        if m.role == "utility"
    }
    assert utility == {"test_accuracy"}  # a sharded model memorises less: not collapsed


def test_every_attack_metric_has_a_strength_beside_it() -> None:
    for entry in registry().entries("evaluator"):
        roles = [m.role for m in entry.spec.metrics]
        if "attack" in roles:
            assert "attack_strength" in roles, entry.spec.name


def cell(method: str, seed: int, values: dict[str, tuple[float, str, str, dict]]) -> CellRecord:
    metrics = tuple(
        MetricValue(name, value, direction, unit, about)
        for name, (value, direction, unit, about) in values.items()
    )
    return CellRecord(
        cell_id=f"{method}/{seed}",
        task_key=str(seed),
        dataset="d",
        architecture="a",
        method=method,
        request="random:5",
        seed=seed,
        status="ok",
        config={},
        metrics=metrics,
    )


UTILITY = {"evaluator": "accuracy", "role": "utility"}
ATTACK = {"evaluator": "loss_attack", "role": "attack"}
STRENGTH = {"evaluator": "loss_attack", "role": "attack_strength", "informative_above": 0.6}
SPEED = {"evaluator": "time", "role": "speed"}


def scored(test_acc: float, auc: float, gap: float, strength: float, speed: float) -> dict:
    return {
        "test_accuracy": (test_acc, "higher", "fraction", UTILITY),
        "loss_attack_auc": (auc, "none", "AUC", ATTACK),
        "loss_attack_auc_gap": (gap, "lower", "AUC", ATTACK),
        "loss_attack_strength": (strength, "higher", "AUC", STRENGTH),
        "work_speedup": (speed, "higher", "x", SPEED),
    }


def board_of(tmp_path: Path, strength: float):
    records = []
    for seed in (0, 1):
        records += [
            cell("retrain", seed, scored(0.80, 0.50, 0.00, strength, 1.0)),
            cell("original", seed, scored(0.82, 0.70, 0.20, strength, 1e9)),
            cell("wrecker", seed, scored(0.10, 0.05, 0.45, strength, 200.0)),  # collapsed
            cell("good", seed, scored(0.78, 0.55, 0.05, strength, 5.0)),
            cell("meh", seed, scored(0.75, 0.60, 0.10, strength, 3.0)),
        ]
    with make_store(tmp_path, records) as store:
        return build_leaderboard(store)


def index_of(board, method: str) -> int:
    return int(board.table.index[board.table["method"] == method][0])


def test_a_wrecked_model_is_flagged_collapsed_and_never_best(tmp_path: Path) -> None:
    board = board_of(tmp_path, strength=0.9)
    marks = best_cells(board)
    wrecker, good = index_of(board, "wrecker"), index_of(board, "good")
    assert board.table.loc[wrecker, "flags"] == "collapsed"
    assert set(board.table["flags"]) == {"collapsed", ""}
    assert not any(i == wrecker for i, _ in marks)  # not its speed-up, not its AUC
    assert (good, "loss_attack_auc") in marks  # closest to retrain's 0.50
    assert (good, "loss_attack_auc_gap") in marks
    assert (good, "work_speedup") in marks  # the original's 1e9 does not count
    assert not any(i == index_of(board, "original") for i, _ in marks)
    assert "| collapsed |" in render(board, "md")


def test_a_method_that_changes_nothing_is_flagged_and_never_best(tmp_path: Path) -> None:
    """A near no-op (every Avg. Gap metric within 0.01 of the original's) has the
    largest speed-up of all; it must not be bold for it."""
    records = []
    for seed in (0, 1):
        records += [
            cell("retrain", seed, scored(0.80, 0.50, 0.00, 0.9, 1.0)),
            cell("original", seed, scored(0.82, 0.70, 0.20, 0.9, 1e9)),
            cell("noop", seed, scored(0.815, 0.70, 0.20, 0.9, 5000.0)),
            cell("good", seed, scored(0.78, 0.55, 0.05, 0.9, 5.0)),
            cell("meh", seed, scored(0.75, 0.60, 0.10, 0.9, 3.0)),
        ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    noop, good = index_of(board, "noop"), index_of(board, "good")
    assert board.table.loc[noop, "flags"] == "no effect"
    assert board.table.loc[good, "flags"] == ""
    marks = best_cells(board)
    assert not any(i == noop for i, _ in marks)
    assert (good, "work_speedup") in marks
    assert "no-effect" in render(board, "html")


def test_an_attack_at_chance_on_the_original_is_marked_and_not_ranked(tmp_path: Path) -> None:
    weak = board_of(tmp_path / "weak", strength=0.52)
    (item,) = weak.uninformative
    assert item.evaluator == "loss_attack" and item.strength == pytest.approx(0.52)
    assert set(item.metrics) == {"loss_attack_auc", "loss_attack_auc_gap"}
    marks = best_cells(weak)
    assert not any(column.startswith("loss_attack_auc") for _, column in marks)
    assert any(column == "work_speedup" for _, column in marks)  # the rest still ranked
    # but not test accuracy: doing nothing keeps more (0.82) than any method
    assert not any(column == "test_accuracy" for _, column in marks)
    text = render(weak, "md")
    assert "0.550 ± 0 †" in text  # good's AUC, with the dagger instead of bold
    (line,) = notes(weak)
    assert "loss_attack" in line and "d/a/random:5" in line and "0.52 < 0.6" in line
    assert "uninformative" in render(weak, "html")

    strong = board_of(tmp_path / "strong", strength=0.75)
    assert strong.uninformative == []
    assert notes(strong) == []


def test_a_strength_that_differs_by_row_marks_only_the_rows_below(tmp_path: Path) -> None:
    """A strength measured on the model each method unlearns from (the backdoor's
    success before unlearning) voids only the rows whose own model fails it."""
    records = []
    for seed in (0, 1):
        records += [
            cell("retrain", seed, scored(0.80, 0.50, 0.00, 0.9, 1.0)),
            cell("original", seed, scored(0.82, 0.70, 0.20, 0.9, 1e9)),
            cell("good", seed, scored(0.78, 0.55, 0.05, 0.2, 5.0)),  # its model never learned
            cell("meh", seed, scored(0.75, 0.60, 0.10, 0.9, 3.0)),
            cell("poor", seed, scored(0.74, 0.65, 0.15, 0.9, 2.0)),
        ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    good, meh = index_of(board, "good"), index_of(board, "meh")
    (item,) = board.uninformative
    assert item.rows == (good,) and item.methods == ("good",)
    assert item.strength == pytest.approx(0.2)
    marks = best_cells(board)
    assert (good, "loss_attack_auc") not in marks and (meh, "loss_attack_auc") in marks
    assert (good, "work_speedup") in marks  # the rest of the row still ranked
    assert not any(column.startswith("loss_attack_strength") for _, column in marks)
    (line,) = notes(board)
    assert "for good" in line and "0.2 < 0.6" in line
    assert "0.550 ± 0 †" in render(board, "md") and "0.600 ± 0 †" not in render(board, "md")


def test_the_run_warns_about_an_uninformative_attack(tmp_path, caplog) -> None:
    from unlearnbench.reports.write import write_leaderboards

    board_of(tmp_path, strength=0.52)  # writes the store
    with ResultStore(tmp_path / "results.sqlite") as store, caplog.at_level("WARNING"):
        write_leaderboards(tmp_path, store, formats=("md",))
    assert any("loss_attack attack measures nothing" in r.message for r in caplog.records)


def test_work_is_counted_through_cached_artifacts(make_tiny_task) -> None:
    """ctx.train counts sample-passes; loading a cached artifact counts its build again."""
    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10))
    before = ctx.work
    ctx.original()
    trained = ctx.work - before
    assert trained == task.recipe.epochs * task.splits.target.numel()
    ctx.original()  # from the cache: the same work is counted, no training runs
    assert ctx.work - before == 2 * trained
    ctx.add_work(7)
    assert ctx.work - before == 2 * trained + 7
    with pytest.raises(ValueError):
        ctx.add_work(float("nan"))


def test_the_reference_is_timed_in_every_run(tmp_path) -> None:
    """Two runs sharing the cache: the reference's time is measured in each, not reused."""
    import shutil

    from tests.test_runner import SUITE, run

    text = SUITE.replace("seeds = [0, 1]", "seeds = [0]")
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    assert run(tmp_path / "one", text) == 0
    shutil.copytree(tmp_path / "one" / "out" / "cache", tmp_path / "two" / "out" / "cache")
    assert run(tmp_path / "two", text) == 0
    times = []
    for name in ("one", "two"):
        with ResultStore(tmp_path / name / "out" / "results.sqlite") as store:
            rows = [r for r in store.metric_rows() if r["method"] == "retrain"]
        times.append({r["name"]: r["value"] for r in rows}["unlearn_seconds"])
    assert times[0] != times[1]  # two measurements, not one reused
    assert torch.isfinite(torch.tensor(times)).all()


def test_the_suite_check_warns_when_the_shadow_is_smaller_than_the_target(
    tmp_path: Path, caplog
) -> None:
    from unlearnbench.cli import main

    suite = tmp_path / "suite.toml"
    suite.write_text(
        """
seeds = [0]
[splits]
target = 0.4
shadow_in = 0.15
shadow_out = 0.15
nonmember = 0.1
test = 0.15
[[datasets]]
name = "digits"
[[architectures]]
name = "mlp"
[[methods]]
name = "retrain"
[[requests]]
kind = "random"
count = 5
""",
        encoding="utf-8",
    )
    with caplog.at_level("WARNING"):
        code = main(["run", str(suite), "--check", "--out", str(tmp_path / "out")])
    assert code == 0
    assert any(
        "splits.shadow_in" in r.getMessage() and "ML-Leaks" in r.getMessage()
        for r in caplog.records
    )


def test_a_method_that_wrecks_the_model_in_one_seed_is_flagged_collapsed(tmp_path: Path) -> None:
    """Two good seeds and one wrecked model average above the margin (0.633 against the
    original's 0.82 - 0.2), but the method can wreck the model: collapsed, never best."""
    records = []
    for seed in (0, 1, 2):
        sometimes = 0.10 if seed == 0 else 0.90
        records += [
            cell("retrain", seed, scored(0.80, 0.50, 0.00, 0.9, 1.0)),
            cell("original", seed, scored(0.82, 0.70, 0.20, 0.9, 1e9)),
            cell("sometimes", seed, scored(sometimes, 0.50, 0.00, 0.9, 200.0)),
            cell("good", seed, scored(0.78, 0.55, 0.05, 0.9, 5.0)),
        ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    sometimes = index_of(board, "sometimes")
    assert board.table.loc[sometimes, "test_accuracy"] == pytest.approx(1.9 / 3)
    assert board.table.loc[sometimes, "flags"] == "collapsed"
    assert board.table.loc[index_of(board, "good"), "flags"] == ""
    assert not any(i == sometimes for i, _ in best_cells(board))
