"""Suite-declared plots (``[[plots]]``): parsing, the table behind them, the
figures, the warnings, and a run that writes and redraws them."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scipy import stats

from tests.suites import suite_toml, toml_value
from unlearnbench.cli import main
from unlearnbench.execution.store import STORE_FILE, CellRecord, MetricValue, ResultStore
from unlearnbench.execution.suite import SuiteError, parse_suite
from unlearnbench.reports.board import build_leaderboard
from unlearnbench.reports.plot_requests import BUILTIN_PLOTS, PlotError, PlotRequest, parse_plots
from unlearnbench.reports.plots import PLOTS
from unlearnbench.reports.sweep_frame import LABEL, X, cell_frame, points, select
from unlearnbench.reports.sweeps import make_sweeps, sweep_figure
from unlearnbench.reports.write import render

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = {
    "datasets": ["digits"],
    "architectures": [{"name": "mlp", "params": {"widths": [16]}}],
    "methods": ["retrain", "original"],
}
GOOD = {
    "name": "fig6",
    "title": "DeepObliviate, Fig. 6 shape",
    "metrics": ["test_accuracy", "block_speedup"],
    "x": "request.count",
    "series": "method.epsilon",
    "where": {"request.position": 0.0995},
    "log_x": True,
}


def plot(**changes: Any) -> dict[str, Any]:
    """A valid ``[[plots]]`` table with ``changes``; a value None drops the key."""
    table = {**GOOD, **changes}
    return {k: v for k, v in table.items() if v is not None}


# --- parsing ----------------------------------------------------------------------


def test_a_good_plot_table_and_its_defaults() -> None:
    suite = parse_suite({**BASE, "plots": [GOOD, {"name": "b", "metrics": ["m"], "x": "seed"}]})
    fig6, plain = parse_plots(suite.plots)  # the suite keeps the tables; reports check them
    assert fig6 == PlotRequest(
        name="fig6",
        metrics=("test_accuracy", "block_speedup"),
        x="request.count",
        title="DeepObliviate, Fig. 6 shape",
        series="method.epsilon",
        where={"request.position": 0.0995},
        log_x=True,
    )
    assert (plain.title, plain.series, plain.where, plain.log_x, plain.log_y) == (
        "b",
        "method",
        {},
        False,
        False,
    )
    assert parse_suite(BASE).plots == ()
    # unquoted dotted keys (a nested table in TOML) mean the same path
    nested = parse_plots([plot(where={"request": {"position": 0.0995}})])
    assert nested[0].where == {"request.position": 0.0995}
    # the dict form round-trips (plots.json)
    assert parse_plots([fig6.as_dict()]) == (fig6,)


def test_suite_plots_can_never_overwrite_a_built_in_plot() -> None:
    assert set(BUILTIN_PLOTS) == set(PLOTS)


@pytest.mark.parametrize(
    ("plots", "key", "text"),
    [
        ({"name": "a"}, "plots", "array of tables"),
        ([plot(colour="red")], "plots[0].colour", "unknown key"),
        ([plot(metrics=None)], "plots[0].metrics", "required"),
        ([plot(metrics=[])], "plots[0].metrics", "non-empty list"),
        ([plot(metrics="test_accuracy")], "plots[0].metrics", "non-empty list"),
        ([plot(metrics=["a", "a"])], "plots[0].metrics", "twice"),
        ([plot(x=None)], "plots[0].x", "required"),
        ([plot(name="a/b")], "plots[0].name", "file name"),
        ([plot(name="")], "plots[0].name", "file name"),
        ([plot(name="tradeoff")], "plots[0].name", "built-in"),
        ([plot(), plot(title="again")], "plots[1].name", "also plots[0]"),
        ([plot(log_x="yes")], "plots[0].log_x", "expected bool"),
        ([plot(log_y=1)], "plots[0].log_y", "expected bool"),
        ([plot(where="request.count = 1")], "plots[0].where", "expected dict"),
        ([plot(where={"request.position": math.nan})], "plots[0].where.request.position", "nan"),
        ([plot(where={"nope.x": 1})], "plots[0].where.nope.x", "no known path"),
        ([plot(x="foo")], "plots[0].x", "no known path"),
        ([plot(x="splits")], "plots[0].x", "needs a field"),
        ([plot(x="train.lrr")], "plots[0].x", "no field 'lrr'"),
        ([plot(series="seed.x")], "plots[0].series", "no fields"),
        ([plot(series=3)], "plots[0].series", "expected str"),
    ],
)
def test_bad_plot_tables_name_their_key(plots: Any, key: str, text: str) -> None:
    with pytest.raises((SuiteError, PlotError)) as info:
        parse_plots(parse_suite({**BASE, "plots": plots}).plots)
    assert info.value.key == key
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("plots", "key", "text"),
    [
        ([plot(colour="red")], "plots[0].colour", "unknown key"),
        ([plot(x="train.lrr")], "plots[0].x", "no field 'lrr'"),
    ],
)
def test_run_check_refuses_a_bad_plot_table_naming_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plots: Any, key: str, text: str
) -> None:
    """The suite reader keeps [[plots]] as data; ``run --check`` still refuses a bad
    one before anything runs, naming the suite file and the key."""
    path = tmp_path / "suite.toml"
    path.write_text(suite_toml(name="bad-plots") + _plots_toml(plots), encoding="utf-8")
    assert main(["run", str(path), "--check", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {key}: " in err and text in err
    assert not (tmp_path / "out").exists()


def _plots_toml(plots: list[dict[str, Any]]) -> str:
    tables = ("\n".join(f"{k} = {toml_value(v)}" for k, v in t.items()) for t in plots)
    return "".join(f"\n[[plots]]\n{table}\n" for table in tables)


# --- a hand-made store of a DeepObliviate-like sweep --------------------------------

EPSILONS = (0.1, 0.05)
COUNTS = (1, 6, 60)
SEEDS = (0, 1, 2)


def accuracy(label: str, count: int, position: float, seed: int) -> float:
    """A known value per cell (position 0.5 is far off, to show where filters it)."""
    level = {"retrain": 0.90, "original": 0.95, "do(epsilon=0.1)": 0.85, "do(epsilon=0.05)": 0.88}
    return level[label] - 0.01 * math.log10(count) + 0.01 * seed + (0.5 if position == 0.5 else 0)


def speedup(epsilon: float, count: int, seed: int) -> float:
    return 10.0 / (epsilon * count) + seed


def sweep_records(target: float | int = 0.5, samples: int | None = 1000) -> list[CellRecord]:
    methods: dict[str, tuple[str, dict[str, Any]]] = {
        "retrain": ("retrain", {}),
        "original": ("original", {}),
    }
    for epsilon in EPSILONS:
        methods[f"do(epsilon={epsilon:g})"] = ("do", {"epsilon": epsilon, "blocks": 100})
    data_params = {} if samples is None else {"samples": samples}
    out = []
    for position in (0.0995, 0.5):
        for count in COUNTS:
            request = {"kind": "random", "count": count, "position": position, "blocks": 100}
            request_label = f"random:{count}@{position:g}/100"
            for seed in SEEDS:
                for label, (name, params) in methods.items():
                    values = [
                        MetricValue(
                            "test_accuracy",
                            accuracy(label, count, position, seed),
                            "higher",
                            "fraction",
                        )
                    ]
                    if name == "do":
                        values.append(
                            MetricValue(
                                "block_speedup", speedup(params["epsilon"], count, seed), "none", ""
                            )
                        )
                    config = {
                        "dataset": {"name": "blobs", "params": data_params},
                        "architecture": {"name": "mlp", "params": {"widths": [16]}},
                        "method": {"name": name, "params": params},
                        "label": label,
                        "request": request,
                        "seed": seed,
                        "splits": {"target": target, "test": 0.2},
                        "train": {"epochs": 1, "lr": 0.001},
                    }
                    out.append(
                        CellRecord(
                            f"{label}/{request_label}/{seed}",
                            f"{request_label}/{seed}",
                            "blobs",
                            "mlp",
                            label,
                            request_label,
                            seed,
                            "ok",
                            config,
                            tuple(values),
                        )
                    )
    return out


def board_of(tmp_path: Path, records: list[CellRecord]) -> Any:
    with ResultStore(tmp_path / STORE_FILE) as store:
        for record in records:
            store.write(record)
        return build_leaderboard(store)


@pytest.fixture
def board(tmp_path: Path) -> Any:
    return board_of(tmp_path, sweep_records())


def test_the_frame_flattens_every_config_path(board: Any) -> None:
    frame = cell_frame(board)
    assert len(frame) == 2 * len(COUNTS) * len(SEEDS) * 4
    first = frame.iloc[0]
    assert first["method"] == "retrain" and first["request"] == "random:1@0.0995/100"
    assert first["request.count"] == 1 and first["request.position"] == 0.0995
    assert first["splits.target"] == 0.5 and first["train.lr"] == 0.001
    assert first["architecture.widths"] == "[16]"  # lists as JSON text, hashable
    assert first["seed"] == 0 and first["target_size"] == 500  # 0.5 x 1,000 samples
    do = frame[frame["method"] == "do(epsilon=0.1)"].iloc[0]
    assert do["method.epsilon"] == 0.1 and do["method.blocks"] == 100
    assert pd.isna(first["method.epsilon"]) and pd.isna(first["block_speedup"])


def test_target_size_from_a_count_a_metric_or_nowhere(tmp_path: Path) -> None:
    counted = cell_frame(board_of(tmp_path / "a", sweep_records(target=300)))
    assert set(counted["target_size"]) == {300}
    unknown = cell_frame(board_of(tmp_path / "b", sweep_records(samples=None)))
    assert "target_size" not in unknown
    size = MetricValue("target_size", 777, "none", "")
    measured = [replace(r, metrics=(*r.metrics, size)) for r in sweep_records(samples=None)]
    assert set(cell_frame(board_of(tmp_path / "c", measured))["target_size"]) == {777}


def test_where_filters_and_points_are_means_with_t_intervals(board: Any) -> None:
    spec = parse_plots([GOOD])[0]
    selection = select(cell_frame(board), spec)
    assert set(selection.rows["request.position"]) == {0.0995}
    assert selection.numeric_x and selection.x_order == [1.0, 6.0, 60.0]
    # anchors (no epsilon) first as their labels, then epsilon ascending
    assert selection.labels == ["retrain", "original", "epsilon=0.05", "epsilon=0.1"]
    assert not selection.pooled
    table = points(selection, "test_accuracy")
    assert len(table) == 4 * len(COUNTS)
    got = table[(table[LABEL] == "epsilon=0.1") & (table[X] == 6.0)].iloc[0]
    values = [accuracy("do(epsilon=0.1)", 6, 0.0995, s) for s in SEEDS]
    half = stats.t.ppf(0.975, 2) * pd.Series(values).std(ddof=1) / math.sqrt(3)
    assert got["mean"] == pytest.approx(sum(values) / 3)
    assert got["ci95"] == pytest.approx(half)
    assert got["n"] == 3
    # lists compare as their JSON text; a where on a label keeps that row only
    spec = parse_plots([plot(where={"architecture.widths": [16], "method": "retrain"})])[0]
    assert set(select(cell_frame(board), spec).rows["method"]) == {"retrain"}
    speed = points(selection, "block_speedup")
    assert set(speed[LABEL]) == {"epsilon=0.05", "epsilon=0.1"}  # retrain has none
    got = speed[(speed[LABEL] == "epsilon=0.05") & (speed[X] == 60.0)].iloc[0]
    assert got["mean"] == pytest.approx(sum(speedup(0.05, 60, s) for s in SEEDS) / 3)


def test_the_figure_has_a_panel_per_metric_and_a_line_per_series(board: Any) -> None:
    spec = parse_plots([plot(metrics=["test_accuracy", "block_speedup"])])[0]
    figure = sweep_figure(board, spec)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["test_accuracy", "block_speedup"]
    assert [len(ax.containers) for ax in axes] == [4, 2]  # one errorbar line per series
    assert axes[0].get_ylabel() == "test_accuracy (%) ↑"
    assert axes[0].get_xscale() == "log" and axes[0].get_xlabel() == "request.count (log)"
    labels = [text.get_text() for text in figure.legends[0].texts]
    assert labels == ["retrain", "original", "epsilon=0.05", "epsilon=0.1"]
    assert figure.get_suptitle() == "DeepObliviate, Fig. 6 shape"
    # accuracy is drawn in percent: retrain at count 1 is the mean of 90, 91, 92
    retrain = axes[0].containers[0].lines[0]
    assert list(retrain.get_xdata()) == [1.0, 6.0, 60.0]
    assert retrain.get_ydata()[0] == pytest.approx(91.0)


def test_series_method_keeps_the_labels_and_categorical_x_keeps_their_order(board: Any) -> None:
    spec = parse_plots(
        [plot(series="method", x="request", where={"request.count": 6}, log_x=True)]
    )[0]
    figure = sweep_figure(board, spec)
    ax = figure.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["random:6@0.0995/100", "random:6@0.5/100"]
    assert ax.get_xscale() == "linear"  # labels cannot go on a log axis
    labels = [text.get_text() for text in figure.legends[0].texts]
    assert labels == ["retrain", "original", "do(epsilon=0.1)", "do(epsilon=0.05)"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics": ["test_accuracy", "nope"]}, "metric(s) ['nope']"),
        ({"x": "method.epsilonn"}, "'method.epsilonn' (x); the cells have ['method.blocks'"),
        ({"series": "dataset.samples"}, "'dataset.samples' (series)"),
        ({"where": {"request.count": 7}}, "no cell matches"),
        ({"x": "target_size"}, "'samples' (its pool size)"),
    ],
)
def test_a_plot_that_cannot_be_drawn_warns_and_is_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, changes: dict[str, Any], message: str
) -> None:
    board = board_of(tmp_path, sweep_records(samples=None))
    specs = parse_plots([plot(name="broken", **changes), plot(name="fine")])
    with caplog.at_level(logging.WARNING):
        images = make_sweeps(board, specs)
    assert list(images) == ["fine"] and images["fine"].startswith(PNG_MAGIC)
    warned = [r for r in caplog.records if "'broken' is left out" in r.getMessage()]
    assert len(warned) == 1 and message in warned[0].getMessage()
    assert warned[0].exc_info is None  # a warning, no traceback


def test_pooling_different_rows_into_one_point_warns(
    board: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spec = parse_plots([plot(where={})])[0]  # both positions at every count
    with caplog.at_level(logging.WARNING):
        assert make_sweeps(board, [spec])
    assert "averages 2 leaderboard rows" in caplog.text and "add a where" in caplog.text


def test_boards_list_the_plots_with_their_titles(board: Any) -> None:
    specs = parse_plots([GOOD])
    page = render(board, "html", "T", sweeps=specs)
    assert '<figure id="plot-fig6">' in page
    assert "<figcaption>DeepObliviate, Fig. 6 shape</figcaption>" in page


# --- end to end -------------------------------------------------------------------


def test_run_writes_the_plot_and_plots_json_and_leaderboard_redraws_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = suite_toml(
        "sweep",
        requests=({"kind": "random", "count": 5}, {"kind": "random", "count": 10}),
    )
    text += (
        '\n[[plots]]\nname = "by-count"\ntitle = "Accuracy by deleted points"\n'
        'metrics = ["test_accuracy", "forget_accuracy"]\nx = "request.count"\nlog_x = true\n'
    )
    suite = tmp_path / "suite.toml"
    suite.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    png = out / "plots" / "by-count.png"
    assert png.read_bytes().startswith(PNG_MAGIC)
    saved = json.loads((out / "plots.json").read_text(encoding="utf-8"))
    assert saved[0]["name"] == "by-count" and saved[0]["log_x"] is True
    assert "![Accuracy by deleted points](plots/by-count.png)" in (
        out / "leaderboard.md"
    ).read_text(encoding="utf-8")
    assert "<figcaption>Accuracy by deleted points</figcaption>" in (
        out / "leaderboard.html"
    ).read_text(encoding="utf-8")
    png.unlink()
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 0
    assert "plots/by-count.png" in capsys.readouterr().out
    assert png.read_bytes().startswith(PNG_MAGIC)
    # a broken plots.json is a usage error naming its key
    saved[0]["metrics"] = []
    (out / "plots.json").write_text(json.dumps(saved), encoding="utf-8")
    assert main(["leaderboard", str(out)]) == 2
    assert "plots.json[0].metrics" in capsys.readouterr().err
    # a suite without plots run into the folder removes the stale file
    suite.write_text(text.split("\n[[plots]]")[0], encoding="utf-8")
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    assert not (out / "plots.json").exists()


def test_speed_panels_leave_out_the_do_nothing_anchor(tmp_path: Path) -> None:
    """The original's speed-up is the one-sample-pass floor (about a million here), not
    a speed: a speed panel without it keeps the other methods readable."""
    records = []
    for record in sweep_records():
        floor = 1e6 if record.method == "original" else 2.0
        speed = MetricValue("work_speedup", floor, "higher", "x", {"role": "speed"})
        records.append(dataclasses.replace(record, metrics=(*record.metrics, speed)))
    board = board_of(tmp_path, records)
    spec = parse_plots([plot(series="method", metrics=["test_accuracy", "work_speedup"])])[0]
    accuracy_panel, speed_panel = [ax for ax in sweep_figure(board, spec).axes if ax.get_visible()]

    def labels(ax: Any) -> list[str]:
        return [c.get_label() for c in ax.containers]

    assert "original" in labels(accuracy_panel)
    assert "original" not in labels(speed_panel) and "retrain" in labels(speed_panel)
