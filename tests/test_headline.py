"""The headline table (columns by role, row order) and readable units."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from unlearnbench.execution.store import STORE_FILE, CellRecord, MetricValue, ResultStore
from unlearnbench.reports.board import build_leaderboard
from unlearnbench.reports.headline import headline_columns, headline_groups
from unlearnbench.reports.summary import terminal_summary
from unlearnbench.reports.text import to_csv, to_markdown
from unlearnbench.reports.units import format_unit

ACC = {"evaluator": "accuracy"}
GAP = {**ACC, "avg_gap": True}  # declared in the Avg. Gap, as the built-in accuracies are
MIA = {"evaluator": "mia", "role": "attack"}
BACKDOOR = {"evaluator": "backdoor", "role": "attack"}
TIME = {"evaluator": "time", "role": "speed"}
COST = {"evaluator": "cost", "role": "cost"}


def strength_meta(threshold: float) -> dict:
    return {"role": "attack_strength", "informative_above": threshold}


def metrics(acc: float, forget: float, speed: float, backdoor: bool) -> dict:
    """Name -> (value, direction, unit, meta), in the order evaluators report them."""
    out = {
        "retain_accuracy": (acc + 0.05, "higher", "fraction", GAP),  # no role: a detail
        "test_accuracy": (acc, "higher", "fraction", {**GAP, "role": "utility"}),
        "forget_accuracy": (forget, "none", "fraction", {**GAP, "role": "forgetting"}),
        "consistency": (acc, "higher", "fraction", ACC),
        "unlearn_seconds": (2.0 / speed, "lower", "s", {**TIME, "role": "cost"}),
        "speedup": (speed, "higher", "x", TIME),
        "work_speedup": (speed * 2, "higher", "x", TIME),
        "mia_efficacy": (forget, "none", "fraction", {**MIA, "mia_gap": 0}),
        "mia_efficacy_gap": (abs(forget - 0.5), "lower", "fraction", MIA),
        "storage_bytes": (2.5e6, "lower", "bytes", COST),
    }
    if backdoor:
        out["backdoor_success_gap"] = (forget / 2, "lower", "fraction", BACKDOOR)
        out["backdoor_strength"] = (0.95, "higher", "fraction", {**BACKDOOR, **strength_meta(0.5)})
    out["mia_efficacy_strength"] = (0.7, "higher", "AUC", {**MIA, **strength_meta(0.6)})
    return out


def cell(method: str, seed: int, request: str, values: dict) -> CellRecord:
    return CellRecord(
        cell_id=f"{method}/{request}/{seed}",
        task_key=f"{request}/{seed}",
        dataset="digits",
        architecture="mlp",
        method=method,
        request=request,
        seed=seed,
        status="ok",
        config={},
        metrics=tuple(MetricValue(n, v, d, u, m) for n, (v, d, u, m) in values.items()),
    )


METHODS = {  # method -> (test accuracy, forget accuracy, speed-up)
    "close": (0.79, 0.52, 5.0),
    "far": (0.70, 0.90, 50.0),
    "wrecked": (0.10, 0.10, 9.0),  # collapsed: more than 0.2 below the original
    "retrain": (0.80, 0.50, 1.0),
    "original": (0.82, 1.00, 1e4),
}


@pytest.fixture
def board(tmp_path: Path):
    with ResultStore(tmp_path / STORE_FILE) as store:
        for request in ("random:5", "backdoor:5"):
            for seed in (0, 1):
                for method, (acc, forget, speed) in METHODS.items():
                    values = metrics(acc + 0.01 * seed, forget, speed, request == "backdoor:5")
                    if method == "far":
                        values["naive_speedup"] = (3.0, "higher", "x", TIME)  # not on retrain
                    store.write(cell(method, seed, request, values))
        yield build_leaderboard(store)


def test_headline_columns_are_chosen_by_role_in_reading_order(board) -> None:
    keys = [c.key for c in headline_columns(board)]
    assert keys == [
        "test_accuracy",  # utility
        "forget_accuracy",  # forgetting
        "consistency",  # agreement with the reference
        "avg_gap",
        "mia_efficacy_gap",  # attack gaps (each group keeps its strongest)
        "backdoor_success_gap",
        "work_speedup",  # speed-up over the reference: work-based
        "naive_speedup",  # over the method's own naive retraining (the reference has none)
        "storage_bytes",  # cost in bytes
    ]  # not retain_accuracy (no role), unlearn_seconds (cost in s), speedup (wall-clock)
    labels = {c.key: c.label for c in headline_columns(board)}
    assert labels["test_accuracy"] == "test accuracy % ↑"
    assert labels["avg_gap"] == "Avg. Gap % ↓"


def test_each_group_shows_its_strongest_attack_on_the_original(board) -> None:
    by_request = {key[2]: [c.key for c in cols] for key, _, cols in headline_groups(board)}
    # backdoor: (0.95 - 0.5) / 0.5 = 0.9 beats the MIA's (0.7 - 0.6) / 0.4 = 0.25
    assert "backdoor_success_gap" in by_request["backdoor:5"]
    assert "mia_efficacy_gap" not in by_request["backdoor:5"]
    assert "mia_efficacy_gap" in by_request["random:5"]  # no backdoor there
    assert "backdoor_success_gap" not in by_request["random:5"]


def test_rows_anchors_first_then_by_avg_gap_collapsed_last(board) -> None:
    for _, rows, _ in headline_groups(board):
        assert list(rows["method"]) == ["retrain", "original", "close", "far", "wrecked"]


def test_markdown_puts_headline_first_with_group_headings_and_legends(board) -> None:
    text = to_markdown(board, "T")
    assert text.index("## digits / mlp — request random:5") < text.index("## Details")
    head = text[: text.index("## Details")]
    assert "| dataset" not in head  # dataset and architecture are in the heading
    assert "retrain (reference)" in head and "original (no unlearning)" in head
    assert head.count("Bold: best of the group") == 2  # one legend line per table
    # close's test accuracy, percent (0.79, 0.80 over seeds), with the paired difference
    # to retrain (0.80, 0.81: -1 point on each seed); the unpaired interval in the details
    assert "79.5, Δ −1.0 ± 0" in head and "79.5 ± 6.4" in text.split("## Details")[1]
    assert "2.5 ± 0 MB" in head and "10× (±0)" in head  # storage, close's work speed-up
    assert "**" not in head.split("wrecked")[1].split("\n")[0]  # a collapsed row: no bold


def test_csv_keeps_raw_numbers(board) -> None:
    csv = to_csv(board)
    assert "2500000.0" in csv and "%" not in csv and "×" not in csv


def test_terminal_summary_shows_all_rows_or_the_best(board) -> None:
    text = terminal_summary(board)
    assert text.count("wrecked") == 2 and "more rows" not in text
    short = terminal_summary(board, max_rows=4, best=1)
    rows = [line.split()[0] for line in short.splitlines() if line.strip()]
    assert "close" in rows and "far" not in rows and "(2 more rows" in short


@pytest.mark.parametrize(
    ("value", "ci", "unit", "expected"),
    [
        (0.8944, 0.0123, "fraction", "89.4 ± 1.2"),
        (0.0123, 0.001, "s", "12.3 ± 1 ms"),
        (3.21, None, "s", "3.21 s"),
        (7.886e6, 0.0, "bytes", "7.89 ± 0 MB"),
        (1.2e9, None, "bytes", "1.2 GB"),
        (512, None, "bytes", "512 B"),
        (5.45, 0.3, "x", "5.45× ± 0.3×"),
        (66000, 0.0, "x", "66k× ± 0"),
        (66000, 1100, "samples", "66k ± 1.1k"),
        (2.5e6, None, "samples", "2.5M"),
        (500, None, "samples", "500"),
        (0.5, 0.01, "AUC", "0.500 ± 0.010"),
        (0.25, 1e-18, "fraction", "25.0 ± 0"),  # floating-point dust is no interval
        (math.nan, 0.1, "fraction", "–"),
        (1234.5678, None, "", "1235"),
    ],
)
def test_units_a_person_reads(value, ci, unit, expected) -> None:
    assert format_unit(value, ci, unit) == expected
