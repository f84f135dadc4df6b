"""Leaderboard tables, gaps, best marks, plots and the CLI, on hand-made result stores."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from tests.suites import suite_toml
from unlearnbench.builtin.evaluators.accuracy import METRICS as ACCURACY_METRICS
from unlearnbench.builtin.evaluators.attacks import EFFICACY_METRICS
from unlearnbench.builtin.evaluators.mia import METRICS as MIA_METRICS
from unlearnbench.cli import main
from unlearnbench.execution.store import STORE_FILE, CellRecord, MetricValue, ResultStore
from unlearnbench.reports.board import (
    best_cells,
    build_leaderboard,
    infer_reference,
    variant_parameters,
)
from unlearnbench.reports.gaps import AVG_GAP
from unlearnbench.reports.plots import _stop, make_plots, paired_gaps
from unlearnbench.reports.text import to_csv, to_markdown
from unlearnbench.reports.write import render, write_leaderboards

DIRECTIONS = {
    "test_accuracy": "higher",
    "retain_accuracy": "higher",
    "forget_accuracy": "none",
    "mia_fnr": "higher",
    "unlearn_seconds": "lower",
    "speedup": "higher",
}
UNITS = {
    "test_accuracy": "fraction",
    "retain_accuracy": "fraction",
    "forget_accuracy": "fraction",
    "unlearn_seconds": "s",
    "speedup": "x",
}
# first_block, stop_block: undeclared costs
ROLES = {
    "test_accuracy": "utility",
    "forget_accuracy": "forgetting",
    "unlearn_seconds": "cost",
    "speedup": "speed",
}
# the Avg. Gap fields as the built-in evaluators declare them (Metric.meta())
DECLARED = {
    m.name: {k: v for k, v in m.meta().items() if k in ("avg_gap", "mia_gap")}
    for m in (*ACCURACY_METRICS, *EFFICACY_METRICS, *MIA_METRICS)
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(
    method: str,
    seed: int,
    values: dict[str, float],
    *,
    request: str = "random:10",
    series: dict[str, list[float]] | None = None,
    config: dict[str, Any] | None = None,
) -> CellRecord:
    metrics = tuple(
        MetricValue(
            name,
            value,
            DIRECTIONS.get(name, "none"),
            UNITS.get(name, ""),
            {**DECLARED.get(name, {}), **({"role": ROLES[name]} if name in ROLES else {})},
        )
        for name, value in values.items()
    )
    return CellRecord(
        cell_id=f"{method}/{request}/{seed}",
        task_key=f"{request}/{seed}",
        dataset="digits",
        architecture="mlp",
        method=method,
        request=request,
        seed=seed,
        status="ok",
        config=config or {},
        metrics=metrics,
        series=series,
    )


def make_store(path: Path, records: Iterable[CellRecord]) -> ResultStore:
    store = ResultStore(path / STORE_FILE)
    for rec in records:
        store.write(rec)
    return store


def demo_records() -> list[CellRecord]:
    """Two requests x three seeds x four methods, written in a scrambled order.

    Values are exact functions of (method, seed) so expectations can be computed.
    """
    level = {"sisa": 0.80, "retrain": 0.90, "fancy": 0.88, "original": 0.95}
    speed = {"sisa": 4.0, "retrain": 1.0, "fancy": 20.0, "original": 1000.0}
    out = []
    for request in ("random:10", "class:3"):
        for seed in range(3):
            for method in ("sisa", "retrain", "fancy", "original"):
                base = level[method] + 0.01 * seed
                values = {
                    "test_accuracy": base,
                    "retain_accuracy": base + 0.02,
                    "forget_accuracy": base - 0.05 if method != "fancy" else 0.84 + 0.01 * seed,
                    "mia_fnr": 1.0 - base,
                    "unlearn_seconds": 1.0 / speed[method],
                    "speedup": speed[method] * (1 + 0.1 * seed),
                }
                series = {
                    "loss_attack.roc_fpr": [0.0, 0.5, 1.0],
                    "loss_attack.roc_tpr": [0.0, base * 0.6, 1.0],
                }
                if method == "fancy":
                    values["first_block"] = 3.0
                    values["stop_block"] = 5.0 + seed
                    series["residual_memory"] = [1.0 / (i + 1) for i in range(3 + seed)]
                out.append(record(method, seed, values, request=request, series=series))
    return out


@pytest.fixture
def demo_store(tmp_path: Path) -> ResultStore:
    store = make_store(tmp_path, demo_records())
    yield store
    store.close()


def row(board, method: str, request: str = "random:10") -> pd.Series:
    table = board.table
    found = table[(table["method"] == method) & (table["request"] == request)]
    assert len(found) == 1
    return found.iloc[0]


def test_means_intervals_and_csv_columns(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    sisa = row(board, "sisa")
    values = pd.Series([0.80, 0.81, 0.82])
    expected_ci = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
    assert sisa["seeds"] == 3
    assert sisa["test_accuracy"] == pytest.approx(0.81)
    assert sisa["test_accuracy_ci95"] == pytest.approx(expected_ci)
    header = to_csv(board).splitlines()[0].split(",")
    assert header[:8] == [
        "dataset",
        "architecture",
        "method",
        "request",
        "seeds",
        "flags",
        "test_accuracy",
        "test_accuracy_ci95",
    ]
    means = header[6 : header.index("test_accuracy_gap")]
    assert means[1::2] == [f"{m}_ci95" for m in means[0::2]]
    assert header[-2:] == [AVG_GAP, f"{AVG_GAP}_ci95"]


def test_single_seed_has_no_interval_columns(tmp_path: Path) -> None:
    with make_store(tmp_path, [record("retrain", 0, {"test_accuracy": 0.9})]) as store:
        board = build_leaderboard(store)
    assert not any(c.endswith("_ci95") for c in board.table.columns)


def test_reference_and_original_lead_each_group(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    for _, group in board.table.groupby(["dataset", "architecture", "request"], sort=False):
        assert list(group["method"]) == ["retrain", "original", "sisa", "fancy"]


def test_missing_anchor_rows_are_shown_empty(tmp_path: Path) -> None:
    records = [record("sisa", s, {"test_accuracy": 0.8}) for s in range(2)]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    assert list(board.table["method"]) == ["retrain", "original", "sisa"]
    assert list(board.table["seeds"]) == [0, 0, 2]
    assert math.isnan(row(board, "sisa")["test_accuracy_gap"])


def test_anchor_names_are_parameters(tmp_path: Path) -> None:
    config = {
        "reference": {"name": "exact", "params": {}},
        "method": {"name": "exact", "params": {}},
    }
    records = [
        record("sisa", 0, {"test_accuracy": 0.8}),
        record("noop", 0, {"test_accuracy": 0.95}),
        record("exact", 0, {"test_accuracy": 0.9}, config={**config, "label": "exact"}),
    ]
    with make_store(tmp_path, records) as store:
        assert infer_reference(store) == "exact"
        board = build_leaderboard(store, reference="exact", original="noop")
    assert list(board.table["method"]) == ["exact", "noop", "sisa"]
    assert row(board, "sisa")["test_accuracy_gap"] == pytest.approx(0.1)


def test_the_original_as_reference_is_one_row(tmp_path: Path) -> None:
    """A suite whose reference is ``original`` renders (it failed with 'cannot handle a
    non-unique multi-index': the anchor row was listed twice)."""
    config = {"reference": {"name": "original", "params": {}}}
    records = [
        record("original", 0, {"test_accuracy": 0.9}, config=config),
        record("sisa", 0, {"test_accuracy": 0.8}, config=config),
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store, reference="original")
    assert list(board.table["method"]) == ["original", "sisa"]
    assert row(board, "sisa")["test_accuracy_gap"] == pytest.approx(0.1)


def test_gaps_to_reference_and_avg_gap(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    sisa, retrain = row(board, "sisa"), row(board, "retrain")
    seeds = board.per_seed[board.per_seed["request"] == "random:10"].set_index("seed")
    for metric in ("test_accuracy", "forget_accuracy", "speedup"):
        mine = seeds[seeds["method"] == "sisa"][metric]
        theirs = seeds[seeds["method"] == "retrain"][metric]
        assert sisa[f"{metric}_gap"] == pytest.approx((mine - theirs).abs().mean())
        assert retrain[f"{metric}_gap"] == 0
    assert board.avg_gap_metrics == [
        "test_accuracy",
        "retain_accuracy",
        "forget_accuracy",
        "mia_fnr",
    ]
    expected = sum(sisa[f"{m}_gap"] for m in board.avg_gap_metrics) / 4
    assert sisa[AVG_GAP] == pytest.approx(expected)
    # the class:3 group has its own reference row
    assert row(board, "sisa", "class:3")["test_accuracy_gap"] == pytest.approx(0.1)


def test_an_evaluators_own_gap_metric_is_used_not_duplicated(tmp_path: Path) -> None:
    records = [
        record("retrain", 0, {"test_accuracy": 0.9, "mia_efficacy": 0.3, "mia_efficacy_gap": 0.0}),
        record("sisa", 0, {"test_accuracy": 0.8, "mia_efficacy": 0.5, "mia_efficacy_gap": 0.25}),
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    assert list(board.table.columns).count("mia_efficacy_gap") == 1
    assert board.avg_gap_metrics == ["test_accuracy", "mia_efficacy"]
    assert row(board, "sisa")[AVG_GAP] == pytest.approx((0.1 + 0.25) / 2)


def test_best_values_follow_each_direction(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    # sisa's Avg. Gap (0.10) is worse than doing nothing (0.05): flagged, never ranked
    assert set(board.table.loc[board.table["method"] == "sisa", "flags"]) == {"worse than original"}
    assert best_cells(board) == set()  # one ranked row left: nothing to be best among
    board.table["flags"] = ""  # rank sisa anyway, to see each direction
    board.cache.clear()  # the marks are cached per table
    marks = best_cells(board)
    index = {
        m: int(
            board.table.index[
                (board.table["method"] == m) & (board.table["request"] == "random:10")
            ][0]
        )
        for m in ("retrain", "original", "sisa", "fancy")
    }
    # the original (doing nothing) is never a contender, though it has the highest
    # test accuracy and the lowest time
    assert not any(i == index["original"] for i, _ in marks)
    assert not any(i == index["retrain"] for i, _ in marks)  # nor the reference: anchors
    # higher: fancy's 0.89 beats sisa's 0.81, but doing nothing keeps 0.96: no win
    assert (index["fancy"], "test_accuracy") not in marks
    assert (index["sisa"], "test_accuracy") not in marks
    assert (index["fancy"], "unlearn_seconds") in marks  # lower
    assert (index["fancy"], "speedup") in marks
    # none: forget accuracy closest to retrain's 0.86 is fancy's 0.85, not retrain itself
    assert (index["fancy"], "forget_accuracy") in marks
    assert (index["retrain"], "forget_accuracy") not in marks
    # gaps: smallest among non-reference rows (fancy 0.02 from retrain; original excluded)
    assert (index["fancy"], "test_accuracy_gap") in marks
    assert (index["retrain"], "test_accuracy_gap") not in marks


def test_cost_counters_without_a_unit_are_not_marked(tmp_path: Path) -> None:
    records = [
        record(m, seed, {"forget_accuracy": acc + 0.001 * seed, "blocks": blocks + seed})
        for m, acc, blocks in (("retrain", 0.8, 10.0), ("a", 0.7, 9.0), ("b", 0.5, 2.0))
        for seed in range(3)
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    marks = best_cells(board)
    assert (int(board.table.index[board.table["method"] == "a"][0]), "forget_accuracy") in marks
    assert not any(column == "blocks" for _, column in marks)


def test_markdown_shows_directions_marks_gaps_and_plots(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    text = render(board, "md", "T", plots={"Trade-off": "plots/tradeoff.png"})
    assert "test_accuracy % ↑" in text and "unlearn_seconds ↓" in text
    assert "| forget_accuracy % " in text  # none-direction: no arrow
    # sisa is worse than doing nothing: flagged; fancy, the one ranked method, is named
    assert "| worse than original |" in text
    assert "Verdict: best by Avg. Gap: fancy 0.0175 ± 0 (original 0.05 ± 0" in text
    assert "**89.0 ± " not in text  # fancy's test accuracy: doing nothing keeps more
    assert "## Details: gap to retrain" in text and "avg_gap" in text
    assert "![Trade-off](plots/tradeoff.png)" in text
    assert "## Details: gap to retrain" not in to_markdown(board, "T", gaps=False)


def test_json_names_directions_and_gap_columns(demo_store: ResultStore) -> None:
    data = json.loads(render(build_leaderboard(demo_store), "json"))
    directions = {m["name"]: m["direction"] for m in data["metrics"]}
    assert directions["forget_accuracy"] == "none" and directions["speedup"] == "higher"
    assert data["reference"] == "retrain"
    assert "test_accuracy_gap" in data["gap_columns"]
    assert all("avg_gap" in r for r in data["rows"])


def test_unknown_format_names_the_choices(demo_store: ResultStore) -> None:
    with pytest.raises(ValueError, match="html"):
        render(build_leaderboard(demo_store), "pdf")


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo store with every leaderboard file written once (plots are slow)."""
    out = tmp_path_factory.mktemp("written")
    with make_store(out, demo_records()) as store:
        assert write_leaderboards(out, store, "Demo") == out / "leaderboard.md"
    return out


def test_plots_are_written_as_pngs(written: Path) -> None:
    pngs = {p.stem: p.read_bytes() for p in (written / "plots").glob("*.png")}
    assert set(pngs) == {"tradeoff", "residual_memory", "roc"}
    assert all(png.startswith(PNG_MAGIC) and len(png) > 5000 for png in pngs.values())


def test_plots_are_skipped_without_their_data(tmp_path: Path) -> None:
    plain = [record("retrain", 0, {"test_accuracy": 0.9}), record("x", 0, {"test_accuracy": 0.8})]
    with make_store(tmp_path / "plain", plain) as store:
        assert make_plots(build_leaderboard(store)) == {}
    with make_store(tmp_path / "empty", []) as store:
        assert make_plots(build_leaderboard(store)) == {}


def test_a_failing_plot_is_left_out_not_fatal(
    demo_store: ResultStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import unlearnbench.reports.plots as plots

    def broken(board: object) -> None:
        raise RuntimeError("bad data")

    monkeypatch.setattr(plots, "PLOTS", {"tradeoff": broken, "roc": plots.roc})
    assert set(make_plots(build_leaderboard(demo_store))) == {"roc"}
    assert "tradeoff plot failed" in caplog.text


def test_tradeoff_error_bars_pair_seeds_with_the_reference(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    gaps = paired_gaps(board, ["test_accuracy"])
    sisa = gaps[(gaps["method"] == "sisa") & (gaps["request"] == "random:10")]
    # sisa is 0.10 below retrain on every seed
    assert list(sisa["gap"]) == pytest.approx([0.1, 0.1, 0.1])


def test_stop_marker_comes_from_a_series_then_a_metric() -> None:
    metrics = {"stop_block": 7.0, "first_block": 3.0}
    assert _stop({"residual_memory": [1.0], "stop_index": [4.0]}, metrics, "") == 4.0
    assert _stop({"residual_memory": [1.0]}, metrics, "") == 7.0
    assert _stop({"residual_memory@step1": [1.0]}, metrics, "@step1") is None
    assert _stop({"stop@step1": [2.0]}, metrics, "@step1") == 2.0


def test_write_leaderboards_writes_every_format(written: Path) -> None:
    for fmt in ("md", "csv", "json", "html"):
        assert (written / f"leaderboard.{fmt}").stat().st_size > 0
    markdown = (written / "leaderboard.md").read_text(encoding="utf-8")
    for name in ("tradeoff", "residual_memory", "roc"):
        assert f"plots/{name}.png" in markdown
    page = (written / "leaderboard.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert "http://" not in page and "https://" not in page
    table = pd.read_csv(io.StringIO((written / "leaderboard.csv").read_text(encoding="utf-8")))
    assert len(table) == 8


def test_cli_leaderboard_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plain = [record("retrain", 0, {"test_accuracy": 0.9}), record("x", 0, {"test_accuracy": 0.8})]
    make_store(tmp_path / "plain", plain).close()
    assert main(["leaderboard", str(tmp_path / "plain"), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert page.lstrip().startswith("<!DOCTYPE html>") and '<td data-v="x">x</td>' in page
    make_store(tmp_path, demo_records()).close()
    assert main(["leaderboard", str(tmp_path), "--format", "md"]) == 0
    assert "plots/tradeoff.png" in capsys.readouterr().out
    assert (tmp_path / "plots" / "tradeoff.png").exists()
    assert main(["leaderboard", str(tmp_path), "--format", "csv", "--reference", "sisa"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split(",")[2] == "sisa"
    assert main(["leaderboard", str(tmp_path / "nowhere")]) == 2


def test_cli_leaderboard_write_rerenders_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_store(tmp_path, demo_records()).close()
    assert main(["leaderboard", str(tmp_path), "--write"]) == 0
    printed = capsys.readouterr().out
    assert "leaderboard.html" in printed and "| method" not in printed  # paths, not tables
    for fmt in ("md", "csv", "json", "html"):
        assert (tmp_path / f"leaderboard.{fmt}").stat().st_size > 0
    assert (tmp_path / "plots" / "tradeoff.png").exists()
    assert f"# Leaderboard: {tmp_path.name}" in (tmp_path / "leaderboard.md").read_text()


SUITE = suite_toml(
    seeds=[0, 1],
    evaluators=["accuracy", "time"],
    splits={"target": 300, "nonmember": 100, "test": 200, "shadow_in": 150, "shadow_out": 150},
    train={"epochs": 3, "batch_size": 32, "lr": 0.003},
    methods=["original", "retrain"],
)


@pytest.mark.slow
def test_a_real_run_writes_the_leaderboards(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress"]) == 0
    table = pd.read_csv(out / "leaderboard.csv")
    assert list(table["method"]) == ["retrain", "original"]  # reference first
    assert list(table["seeds"]) == [2, 2]
    retrain = table.iloc[0]
    assert retrain["test_accuracy_gap"] == 0 and retrain[AVG_GAP] == 0
    assert "test_accuracy_ci95" in table
    assert (out / "plots" / "tradeoff.png").read_bytes().startswith(PNG_MAGIC)
    assert not (out / "plots" / "roc.png").exists()  # no ROC series in this suite
    assert "data:image/png;base64," in (out / "leaderboard.html").read_text(encoding="utf-8")


def test_a_store_with_only_failures_still_renders(tmp_path: Path) -> None:
    failed = CellRecord(
        "bad",
        "k",
        "digits",
        "mlp",
        "gan",
        "random:10",
        0,
        "failed",
        {},
        error="Trace\nValueError: boom",
    )
    with make_store(tmp_path, [failed]) as store:
        board = build_leaderboard(store)
    assert board.table.empty
    page = render(board, "html", "T", images={})
    assert "No finished cells yet" in page and "ValueError: boom" in page
    assert "digits/mlp/gan/random:10 seed 0: ValueError: boom" in render(board, "md")
    assert json.loads(render(board, "json"))["failures"][0]["method"] == "gan"


def test_tuned_rows_show_the_parameters_their_search_changed(tmp_path: Path) -> None:
    def config(label: str, lr: float) -> dict[str, Any]:
        return {"label": label, "method": {"name": "ft", "params": {"lr": lr, "epochs": 5}}}

    records = [
        record("retrain", 0, {"test_accuracy": 0.9}),
        record("ft", 0, {"test_accuracy": 0.8}, config=config("ft", 0.01)),
        record("ft[tuned]", 0, {"test_accuracy": 0.85}, config=config("ft[tuned]", 0.003)),
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    assert variant_parameters(board) == [("ft[tuned]", 0, {"lr": 0.003})]
    text = render(board, "md")
    assert "## Tuned parameters" in text and "| ft[tuned] " in text and "lr = 0.003" in text
    assert json.loads(render(board, "json"))["tuned_parameters"] == [
        {"method": "ft[tuned]", "seed": 0, "parameters": {"lr": 0.003}}
    ]


def two_methods(tmp_path: Path, a: list[float], b: list[float]) -> Any:
    """retrain, original and methods ``a`` and ``b`` with the given per-seed test accuracies
    (the original's 0.70: below the methods', whose wins over it are then wins)."""
    records = [
        record(method, seed, {"test_accuracy": value})
        for method, values in (("retrain", [0.9] * len(a)), ("original", [0.70] * len(a)))
        for seed, value in enumerate(values)
    ]
    records += [
        record(method, seed, {"test_accuracy": value})
        for method, values in (("a", a), ("b", b))
        for seed, value in enumerate(values)
    ]
    with make_store(tmp_path, records) as store:
        return build_leaderboard(store)


def test_a_best_value_clear_of_the_runner_up_is_bold(tmp_path: Path) -> None:
    board = two_methods(tmp_path, [0.850, 0.851, 0.852], [0.800, 0.801, 0.802])
    a = int(board.table.index[board.table["method"] == "a"][0])
    assert (a, "test_accuracy") in best_cells(board)


def test_one_seed_or_a_tie_bolds_nothing(tmp_path: Path) -> None:
    assert not best_cells(two_methods(tmp_path / "one", [0.85], [0.80]))
    assert not best_cells(two_methods(tmp_path / "tie", [0.85, 0.86], [0.85, 0.86]))


def test_speedups_aggregate_geometrically_and_the_original_shows_none(tmp_path: Path) -> None:
    # Table I's per-seed speed-ups: an arithmetic mean gives 249, the geometric 138
    per_seed = [364.0, 364.0, 20.0]
    records = [
        record(method, seed, {"test_accuracy": 0.9, "speedup": value})
        for method, values in (
            ("retrain", [1.0, 1.0, 1.0]),
            ("original", [66e3, 4.4e6, 1e5]),
            ("deepobliviate", per_seed),
        )
        for seed, value in enumerate(values)
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    mine = row(board, "deepobliviate")
    logs = pd.Series([math.log(v) for v in per_seed])
    assert mine["speedup"] == pytest.approx(math.exp(logs.mean()))
    assert mine["speedup"] == pytest.approx(138.4, abs=0.1)
    factor = math.exp(stats.t.ppf(0.975, 2) * logs.std(ddof=1) / math.sqrt(3))
    assert mine["speedup_ci95"] == pytest.approx(factor)
    assert math.isnan(row(board, "original")["speedup"])  # a no-op's ratio: shown as a dash
    text = to_markdown(board, "T")
    low, high = mine["speedup"] / factor, mine["speedup"] * factor
    assert f"138× ({low:.3g}×–{high / 1e3:.3g}k×)" in text
    assert "geometric means over seeds" in text
    assert "66k" not in text and "4.4M" not in text


def test_gaps_are_paired_by_seed_for_every_metric(tmp_path: Path) -> None:
    # a is 0.1 above retrain on seed 0 and 0.1 below on seed 1: its means are equal,
    # so a gap between means says 0; per seed it is 0.1 every time
    records = [
        record("retrain", 0, {"test_accuracy": 0.8, "mia_fnr": 0.3}),
        record("retrain", 1, {"test_accuracy": 0.9, "mia_fnr": 0.4}),
        record("a", 0, {"test_accuracy": 0.9, "mia_fnr": 0.4}),
        record("a", 1, {"test_accuracy": 0.8, "mia_fnr": 0.3}),
    ]
    with make_store(tmp_path, records) as store:
        board = build_leaderboard(store)
    a = row(board, "a")
    assert a["test_accuracy"] == pytest.approx(row(board, "retrain")["test_accuracy"])
    assert a["test_accuracy_gap"] == pytest.approx(0.1)
    assert a["mia_fnr_gap"] == pytest.approx(0.1)
    assert a[AVG_GAP] == pytest.approx(0.1)
    assert a[f"{AVG_GAP}_ci95"] == pytest.approx(0.0, abs=1e-9)


def test_a_row_that_moves_any_forgetting_measure_is_not_no_effect(tmp_path: Path) -> None:
    # "shadow" moves only an attack metric (like l1-sparse's shadow-attack FNR); "noop"
    # moves nothing
    base = {"test_accuracy": 0.9, "forget_accuracy": 0.95, "mia_efficacy": 0.2}
    records = []
    ROLES["shadow_fnr"] = "attack"
    try:
        for seed in range(2):
            records += [
                record("retrain", seed, {**base, "forget_accuracy": 0.85, "shadow_fnr": 0.6}),
                record("original", seed, {**base, "shadow_fnr": 0.1}),
                record("noop", seed, {**base, "shadow_fnr": 0.1}),
                record("shadow", seed, {**base, "shadow_fnr": 0.47}),
            ]
        with make_store(tmp_path, records) as store:
            board = build_leaderboard(store)
    finally:
        del ROLES["shadow_fnr"]
    assert row(board, "noop")["flags"] == "no effect"
    assert row(board, "shadow")["flags"] == ""


def test_each_format_names_the_mark_it_shows(demo_store: ResultStore) -> None:
    board = build_leaderboard(demo_store)
    page = render(board, "html", "T")
    assert "td.best{font-weight:700;background:#e6f4ea}" in page  # bold on green
    assert "Bold on a green fill: best of the group" in page
    assert "Bold on a green fill: the best value of its column" in page
    markdown = render(board, "md", "T")
    assert "Bold: best of the group" in markdown and "green" not in markdown
