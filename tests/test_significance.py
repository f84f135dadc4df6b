"""Paired significance marks, paired differences, the seed warning, the headline's width
and the ranking across tasks (Friedman, Nemenyi critical difference)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from unlearnbench.execution.store import STORE_FILE, CellRecord, MetricValue, ResultStore
from unlearnbench.reports import crossrank
from unlearnbench.reports.board import Leaderboard, build_leaderboard
from unlearnbench.reports.headline import MAX_COLUMNS, headline_groups
from unlearnbench.reports.plots import make_plots
from unlearnbench.reports.significance import few_seeds, marks
from unlearnbench.reports.summary import terminal_summary
from unlearnbench.reports.text import to_markdown
from unlearnbench.reports.write import render

UTILITY = ("higher", "fraction", {"evaluator": "accuracy", "role": "utility", "avg_gap": True})
BASE = [0.40, 0.48, 0.44, 0.52, 0.46]  # the seeds' shared level: sd 0.044
Values = dict[str, tuple[float, str, str, dict[str, Any]]]


def cell(method: str, seed: int, values: Values, request: str = "random:10") -> CellRecord:
    return CellRecord(
        cell_id=f"{method}/{request}/{seed}",
        task_key=f"{request}/{seed}",
        dataset="d",
        architecture="a",
        method=method,
        request=request,
        seed=seed,
        status="ok",
        config={},
        metrics=tuple(MetricValue(n, v, d, u, m) for n, (v, d, u, m) in values.items()),
    )


def accuracy_board(tmp_path: Path, offsets: dict[str, list[float]]) -> Leaderboard:
    """retrain and original plus ``offsets``' methods: test accuracy = the seed's
    shared level + the method's offset on that seed."""
    rows = {"retrain": [0.0] * len(BASE), "original": [-0.12] * len(BASE), **offsets}
    with ResultStore(tmp_path / STORE_FILE) as store:
        for method, offset in rows.items():
            for seed, (level, extra) in enumerate(zip(BASE, offset, strict=True)):
                store.write(cell(method, seed, {"test_accuracy": (level + extra, *UTILITY)}))
        return build_leaderboard(store)


def index_of(board: Leaderboard, method: str) -> int:
    return int(board.table.index[board.table["method"] == method][0])


def test_a_consistent_difference_inside_the_seed_noise_is_separated_paired_only(
    tmp_path: Path,
) -> None:
    # a beats b by 0.010 ± 0.001 on every seed; the seeds' shared level varies by 0.044
    board = accuracy_board(
        tmp_path,
        {
            "a": [0.011, 0.010, 0.009, 0.010, 0.011],
            "b": [0.0, 0.0, 0.0, 0.0, 0.001],
            "c": [-0.10] * 5,
        },
    )
    a, b = index_of(board, "a"), index_of(board, "b")
    table = board.table
    mean_a, ci_a = table.loc[a, "test_accuracy"], table.loc[a, "test_accuracy_ci95"]
    mean_b, ci_b = table.loc[b, "test_accuracy"], table.loc[b, "test_accuracy_ci95"]
    assert mean_a - mean_b == pytest.approx(0.010)
    assert mean_a - ci_a < mean_b + ci_b  # unpaired: the 95% intervals overlap
    found = marks(board)
    assert (a, "test_accuracy") in found.best  # paired: separated
    assert not found.tied
    # the paired difference to the reference is precise, the unpaired interval is not
    assert table.loc[a, "test_accuracy_vs_ref"] == pytest.approx(0.0102)
    assert table.loc[a, "test_accuracy_vs_ref_ci95"] < ci_a / 10
    assert table.loc[a, "test_accuracy_vs_orig"] == pytest.approx(0.0102 + 0.12)
    assert "**47.0, Δ +1.0 ± 0.1**" in to_markdown(board)  # the headline shows Δ


def test_a_group_where_nothing_separates_bolds_nothing_and_marks_ties(tmp_path: Path) -> None:
    # a and b swap places from seed to seed; c is below both on every seed
    board = accuracy_board(
        tmp_path,
        {
            "a": [0.02, -0.02, 0.03, -0.01, 0.01],
            "b": [-0.01, 0.02, -0.02, 0.02, 0.0],
            "c": [-0.08, -0.09, -0.07, -0.08, -0.085],
        },
    )
    a, b, c = (index_of(board, m) for m in "abc")
    found = marks(board)
    assert not any(column == "test_accuracy" for _, column in found.best)
    assert {i for i, col in found.tied if col == "test_accuracy"} == {a, b}
    assert (c, "test_accuracy") not in found.tied
    rows = [line for line in to_markdown(board).splitlines() if line.startswith("| ")]
    assert not any("**" in line for line in rows)
    assert sorted(line.split("|")[1].strip() for line in rows if " ≈ " in line)[:2] == ["a", "b"]
    head = to_markdown(board).split("## Across tasks")[0]
    assert "paired t-test" in head  # the legend names the test
    assert 'class="num tied"' in render(board, "html")
    assert terminal_summary(board).count("≈") >= 2


def test_an_all_tied_column_marks_nothing(tmp_path: Path) -> None:
    board = accuracy_board(
        tmp_path,
        {"a": [0.02, -0.02, 0.03, -0.01, 0.01], "b": [-0.01, 0.02, -0.02, 0.02, 0.0]},
    )
    found = marks(board)
    assert not found.best and not found.tied


def test_fewer_than_three_seeds_warn(tmp_path: Path) -> None:
    rows = {"retrain": 0.8, "original": 0.85, "a": 0.7}
    with ResultStore(tmp_path / STORE_FILE) as store:
        for method, value in rows.items():
            for seed in (0, 1):
                store.write(cell(method, seed, {"test_accuracy": (value, *UTILITY)}))
        board = build_leaderboard(store)
        (line,) = few_seeds(board)
        assert "d/a/random:10" in line and "fewer than 3 seeds" in line
        assert "Warning: d/a/random:10" in to_markdown(board)
        assert "Warning: d/a/random:10" in render(board, "html")
        for method, value in rows.items():
            store.write(cell(method, 2, {"test_accuracy": (value, *UTILITY)}))
        assert few_seeds(build_leaderboard(store)) == []


def attack(evaluator: str, gap: float, strength: float, threshold: float) -> Values:
    meta = {"evaluator": evaluator, "role": "attack"}
    return {
        f"{evaluator}_gap": (gap, "lower", "AUC", meta),
        f"{evaluator}_strength": (
            strength,
            "higher",
            "AUC",
            {"evaluator": evaluator, "role": "attack_strength", "informative_above": threshold},
        ),
    }


def wide_values(level: float) -> Values:
    """Every kind of headline candidate, several of each."""
    acc = {"evaluator": "accuracy", "avg_gap": True}
    time = {"evaluator": "time", "role": "speed"}
    cost = {"evaluator": "cost", "role": "cost"}
    return {
        "test_accuracy": (level, *UTILITY[:2], {**acc, "role": "utility"}),
        "other_utility": (level, "higher", "fraction", {"evaluator": "x", "role": "utility"}),
        "forget_accuracy": (level, "none", "fraction", {**acc, "role": "forgetting"}),
        "retain_accuracy": (level, "higher", "fraction", acc),
        "consistency": (level, "higher", "fraction", {"evaluator": "consistency"}),
        **attack("weak", 0.1, 0.65, 0.6),
        **attack("strong", 0.2, 0.90, 0.6),
        **attack("backdoor", 0.3, 0.55, 0.5),
        **attack("chance", 0.4, 0.99, 1.5),  # below its own threshold: uninformative
        "speedup": (2.0, "higher", "x", time),
        "work_speedup": (3.0, "higher", "x", time),
        "storage_bytes": (1e6, "lower", "bytes", cost),
        "other_bytes": (1e3, "lower", "bytes", cost),
    }


def test_the_headline_fits_a_screen_and_keeps_the_strongest_informative_attack(
    tmp_path: Path,
) -> None:
    with ResultStore(tmp_path / STORE_FILE) as store:
        for seed in range(3):
            for method, level in (("retrain", 0.8), ("original", 0.9), ("a", 0.7), ("b", 0.6)):
                values = wide_values(level + 0.01 * seed)
                if method == "a":
                    values["naive_work_speedup"] = (5.0, "higher", "x", values["speedup"][3])
                store.write(cell(method, seed, values))
        board = build_leaderboard(store)
    ((_, _, columns),) = list(headline_groups(board))
    keys = [c.key for c in columns]
    assert keys == [
        "test_accuracy",
        "forget_accuracy",
        "consistency",
        "avg_gap",
        "strong_gap",  # margin (0.9 - 0.6) / 0.4 beats backdoor's (0.55 - 0.5) / 0.5
        "work_speedup",
        "naive_work_speedup",
        "storage_bytes",
    ]
    header = to_markdown(board).split("\n")[4]
    assert header.startswith("| method") and 3 + len(keys) == header.count("|") - 1
    assert header.count("|") - 1 <= MAX_COLUMNS


def ranked_board(tmp_path: Path, table: dict[str, list[float]]) -> Leaderboard:
    """One seed per group; ``table``: method -> test accuracy in groups r0, r1, ..."""
    with ResultStore(tmp_path / STORE_FILE) as store:
        for method, values in table.items():
            for group, value in enumerate(values):
                store.write(
                    cell(method, 0, {"test_accuracy": (value, *UTILITY)}, request=f"r{group}")
                )
        return build_leaderboard(store)


def test_critical_difference_on_a_hand_worked_example(tmp_path: Path) -> None:
    # ranks per group (1 = highest accuracy):   r0 r1 r2 r3   average
    board = ranked_board(
        tmp_path,
        {
            "retrain": [0.95] * 4,  # anchors: never ranked
            "original": [0.55] * 4,
            "m1": [0.9, 0.9, 0.8, 0.9],  # 1  1  2  1     1.25
            "m2": [0.8, 0.7, 0.9, 0.8],  # 2  3  1  2     2.00
            "m3": [0.7, 0.8, 0.7, 0.7],  # 3  2  3  3     2.75
            "m4": [0.6, 0.6, 0.6, 0.6],  # 4  4  4  4     4.00
            "wreck": [0.1] * 4,  # collapsed (0.45 below the original): never ranked
        },
    )
    result = crossrank.rank(board, "utility")
    assert not result.reason and result.groups == 4
    assert result.left_out == ["wreck"]
    assert list(result.ranks.index) == ["m1", "m2", "m3", "m4"]
    assert list(result.ranks) == pytest.approx([1.25, 2.0, 2.75, 4.0])
    # Friedman: 12N/(k(k+1)) * sum(R_j^2) - 3N(k+1) = 2.4 * 29.125 - 60 = 9.9 (no ties)
    assert result.statistic == pytest.approx(9.9)
    assert result.pvalue == pytest.approx(stats.chi2.sf(9.9, 3))
    # Nemenyi (Demšar 2006, table 5): q_0.05 = 2.569 for k = 4; CD = q sqrt(k(k+1)/(6N))
    assert result.cd == pytest.approx(2.569 * math.sqrt(20 / 24), abs=1e-3)  # 2.345
    assert result.separated("m1") == ["m4"]  # 2.75 > CD
    assert result.separated("m2") == []  # 2.00 < CD
    assert result.pairwise.loc["m1", "m4"] < 0.05 < result.pairwise.loc["m2", "m4"]
    result.pvalue = 0.2  # a Friedman test that does not reject: no pair is read
    assert result.separated("m1") == []
    text = to_markdown(board)
    assert "Friedman χ² = 9.9" in text and "CD = 2.35" in text
    assert "| 1   | m1       | 1.25           | m4" in text
    assert "critical_difference" in make_plots(board)
    (utility,) = [m for m in json.loads(render(board, "json"))["across_tasks"] if m["groups"]]
    assert utility["measure"] == "utility" and utility["friedman_chi2"] == pytest.approx(9.9)
    assert utility["average_ranks"] == pytest.approx({"m1": 1.25, "m2": 2, "m3": 2.75, "m4": 4})


def test_every_seed_of_a_group_is_a_block_unless_groups_are_asked(tmp_path: Path) -> None:
    # the hand-worked table again, its four columns now four seeds of one group
    table = {
        "retrain": [0.95] * 4,
        "original": [0.55] * 4,
        "m1": [0.9, 0.9, 0.8, 0.9],
        "m2": [0.8, 0.7, 0.9, 0.8],
        "m3": [0.7, 0.8, 0.7, 0.7],
        "m4": [0.6, 0.6, 0.6, 0.6],
    }
    with ResultStore(tmp_path / STORE_FILE) as store:
        for method, values in table.items():
            for seed, value in enumerate(values):
                store.write(cell(method, seed, {"test_accuracy": (value, *UTILITY)}))
        by_seed = build_leaderboard(store)
        by_group = build_leaderboard(store, rank_blocks="groups")
    result = crossrank.rank(by_seed, "utility")
    assert not result.reason and result.groups == 4 and result.blocks == "seeds"
    assert list(result.ranks) == pytest.approx([1.25, 2.0, 2.75, 4.0])
    assert result.statistic == pytest.approx(9.9)
    assert result.separated("m1") == ["m4"]
    assert "over 4 group-seed blocks" in to_markdown(by_seed)
    assert "each seed of each group is one block" in to_markdown(by_seed)
    # one group's means: a single block ranks nothing
    assert crossrank.rank(by_group, "utility").reason.startswith("not enough groups: 1 group(s)")
    assert "each group is one block" in to_markdown(by_group)


def test_too_few_groups_rank_nothing(tmp_path: Path) -> None:
    board = ranked_board(
        tmp_path, {"retrain": [0.5], "original": [0.9], "a": [0.8], "b": [0.7], "c": [0.6]}
    )
    result = crossrank.rank(board, "utility")
    assert result.reason.startswith("not enough groups")
    assert "utility: not enough groups" in to_markdown(board)
    assert crossrank.rank(board, "speed").reason == "no speed metric"


FORGET = ("none", "fraction", {"evaluator": "accuracy", "role": "forgetting", "avg_gap": True})


def test_no_effect_is_what_the_seeds_do_not_separate_from_the_original(tmp_path: Path) -> None:
    """One-point requests: gradient ascent's forget measure off the original's by 0.02
    in the mean (a few flipped single-point decisions) escaped `no effect` and its
    speed-up was bold. A difference the paired test does not separate is no effect;
    a small consistent one is."""
    forget = {
        "retrain": [0.50, 0.52, 0.48, 0.50, 0.50],
        "original": [1.0] * 5,
        "noise": [1.0, 0.967, 1.0, 0.967, 0.967],  # 0.02 off in the mean, not separated
        "shift": [0.98, 0.975, 0.98, 0.975, 0.98],  # 0.022 off on every seed
        "clear": [0.6, 0.7, 0.65, 0.6, 0.7],
    }
    with ResultStore(tmp_path / STORE_FILE) as store:
        for method, values in forget.items():
            for seed, value in enumerate(values):
                metrics = {"test_accuracy": (0.45, *UTILITY), "forget_accuracy": (value, *FORGET)}
                store.write(cell(method, seed, metrics))
        board = build_leaderboard(store)
        flags = dict(zip(board.table["method"], board.table["flags"], strict=True))
        assert flags["noise"] == "no effect"
        assert flags["shift"] == "" and flags["clear"] == ""
        for seed, value in enumerate([0.97, 0.99]):  # two seeds: the margin alone decides
            metrics = {"test_accuracy": (0.45, *UTILITY), "forget_accuracy": (value, *FORGET)}
            store.write(cell("short", seed, metrics))
        table = build_leaderboard(store).table
    assert dict(zip(table["method"], table["flags"], strict=True))["short"] == ""
