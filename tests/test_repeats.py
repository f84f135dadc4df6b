"""Repeated single deletions (``repeats = N``): N deletions from one original model."""

from __future__ import annotations

import json
import math
import sqlite3
import tomllib
from pathlib import Path

import pytest
import torch

from tests.conftest import write
from tests.suites import suite_toml
from unlearnbench.execution.plan import build_plan
from unlearnbench.execution.run import RunResult
from unlearnbench.execution.store import CellRecord, MetricValue, ResultStore
from unlearnbench.execution.suite import SuiteError, parse_suite
from unlearnbench.task import ForgetRequest, TaskError, select_forget


def _target(n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    target = torch.arange(1000, 1000 + n)
    y = torch.arange(2000) % 4
    return target, y


def test_repeats_draw_disjoint_forget_sets_and_repeat_0_is_the_plain_request() -> None:
    target, y = _target()
    for plain in (
        ForgetRequest("random", count=3),
        ForgetRequest("random", count=2, position=0.5, blocks=10),
        ForgetRequest("class", label=1, fraction=0.1),
        ForgetRequest("random", fraction=0.02),
    ):
        repeated = ForgetRequest(**{**plain.as_dict(), "repeats": 5})
        sets = [select_forget(target, y, repeated, seed=7, repeat=r) for r in range(5)]
        assert torch.equal(sets[0], select_forget(target, y, plain, seed=7))
        points = torch.cat(sets)
        assert points.unique().numel() == points.numel()  # no two repeats share a point
        assert all(s.numel() == sets[0].numel() for s in sets)
        assert bool(torch.isin(points, target).all())
        if plain.position >= 0:  # every repeat draws from the same block
            first = select_forget(target, y, ForgetRequest("block", position=0.5, blocks=10), 7)
            assert bool(torch.isin(points, first).all())
        if plain.kind == "class":
            assert bool((y[points] == 1).all())
    again = ForgetRequest("random", fraction=0.02, repeats=5)
    assert torch.equal(select_forget(target, y, again, seed=7, repeat=4), sets[4])  # seeded
    assert not torch.equal(select_forget(target, y, again, seed=8, repeat=4), sets[4])


def test_a_plain_request_keeps_its_configuration_and_keys() -> None:
    assert "repeats" not in ForgetRequest("random", count=1).as_dict()
    assert ForgetRequest("random", count=1, repeats=50).as_dict()["repeats"] == 50
    assert ForgetRequest("random", count=1, repeats=50).label_text == "random:1 ×50"
    assert ForgetRequest("random", count=1).label_text == "random:1"
    from unlearnbench.testing import registry

    def cell_ids(request: dict[str, object]) -> list[str]:
        text = suite_toml(requests=(request,))
        plan = build_plan(parse_suite(tomllib.loads(text)), registry())
        return [c.cell_id for _, c in plan.cells()]

    plain = cell_ids({"kind": "random", "count": 1})
    assert cell_ids({"kind": "random", "count": 1, "repeats": 1}) == plain
    assert not set(cell_ids({"kind": "random", "count": 1, "repeats": 2})) & set(plain)


@pytest.mark.parametrize(
    ("request_keys", "words"),
    [
        ({"kind": "block", "position": 0.5, "blocks": 10}, "deletes the whole block"),
        ({"kind": "class", "label": 1}, "every target point of the class"),
        ({"kind": "backdoor", "count": 5}, "poisoned points the original model"),
        ({"kind": "random", "count": 1, "repeats": 0}, "integer >= 1"),
        ({"kind": "random", "count": 1, "repeats": True}, "expected int"),
        ({"kind": "random", "count": 1, "repeats": 2.0}, "expected int"),
    ],
)
def test_repeats_that_make_no_sense_are_refused_naming_the_key(request_keys, words) -> None:
    keys = {"repeats": 3, **request_keys}
    data = {
        "datasets": ["digits"],
        "architectures": ["mlp"],
        "methods": ["retrain"],
        "requests": [keys],
    }
    with pytest.raises(SuiteError, match=r"requests\[0\]\.repeats") as info:
        parse_suite(data)
    assert words in str(info.value)


def test_repeats_the_data_cannot_fill_are_refused() -> None:
    target, y = _target(20)
    with pytest.raises(TaskError, match="needs 21 distinct points"):
        select_forget(target, y, ForgetRequest("random", count=3, repeats=7), 0)
    # without repeats a count larger than its block fills the next blocks; with them, refused
    filled = select_forget(target, y, ForgetRequest("random", count=5, position=0, blocks=10), 0)
    assert filled.numel() == 5
    with pytest.raises(TaskError, match="consecutive"):
        select_forget(
            target, y, ForgetRequest("random", count=5, position=0, blocks=10, repeats=2), 0
        )
    with pytest.raises(TaskError, match="not one of the request's 2 repeats"):
        select_forget(target, y, ForgetRequest("random", count=1, repeats=2), 0, repeat=2)


def test_check_refuses_more_repeats_than_the_target_holds(tmp_path: Path) -> None:
    """``run --check`` (``prepare_run``) refuses it against the real data, naming the key."""
    from unlearnbench.execution.run import prepare_run
    from unlearnbench.testing import registry

    text = suite_toml(requests=({"kind": "random", "count": 100, "repeats": 4},))
    suite = write(tmp_path / "suite.toml", text)
    with pytest.raises(SuiteError, match=r"requests\[0\]: .*needs 400 distinct points"):
        prepare_run(suite, tmp_path / "out", registry(), device="cpu")


def test_the_plan_has_a_task_per_repeat_sharing_one_training(tmp_path: Path) -> None:
    from unlearnbench.testing import registry

    text = suite_toml(
        seeds=(0, 1),
        requests=({"kind": "random", "count": 1, "repeats": 4}, {"kind": "random", "count": 1}),
    )
    plan = build_plan(parse_suite(tomllib.loads(text)), registry())
    repeated = [t for t in plan.tasks if t.request.repeats == 4]
    plain = [t for t in plan.tasks if t.request.repeats == 1]
    assert len(repeated) == 8 and len(plain) == 2
    for seed in (0, 1):
        mine = [t for t in repeated if t.seed == seed]
        assert [t.repeat for t in mine] == [0, 1, 2, 3]
        assert [t.config()["repeat"] for t in mine] == [0, 1, 2, 3]
        other = next(t for t in plain if t.seed == seed)
        assert {t.train_key for t in mine} == {other.train_key}  # one original model
        assert len({t.key for t in mine}) == 4
        assert "repeat" not in other.config()
    assert len({c.cell_id for t in plan.tasks for c in t.cells}) == plan.size == 20


RUN_SUITE = suite_toml(
    "rep",
    evaluators=("accuracy", "time"),
    methods=(
        "retrain",
        "original",
        {"name": "sisa", "params": {"shards": 2, "slices": 1}},
        {"name": "deepobliviate", "params": {"blocks": 10}},
    ),
    requests=({"kind": "random", "count": 1, "repeats": 3},),
)


def _run(tmp_path: Path) -> tuple[RunResult, Path]:
    from unlearnbench.execution import run_suite
    from unlearnbench.testing import registry

    suite = write(tmp_path / "suite.toml", RUN_SUITE)
    result = run_suite(suite, tmp_path / "out", registry(), device="cpu")
    return result, tmp_path / "out"


def test_a_repeated_request_runs_distinct_deletions_of_one_original(tmp_path: Path) -> None:
    from unlearnbench.execution.cache import ArtifactCache
    from unlearnbench.execution.task_runner import Runner
    from unlearnbench.testing import registry

    result, out = _run(tmp_path)
    assert (result.summary.ok, result.summary.failed) == (12, 0)
    runner = Runner(registry(), ArtifactCache(out / "cache"), torch.device("cpu"))
    tasks = [runner.build_task(plan) for plan in result.plan.tasks]
    forgets = [tuple(t.splits.forget.tolist()) for t in tasks]
    assert len(set(forgets)) == 3  # three distinct single points
    originals = []
    from unlearnbench.execution.context import TaskContext

    for task in tasks:
        model = TaskContext(task, runner.cache).original()
        originals.append(torch.cat([p.flatten() for p in model.state_dict().values()]))
    assert all(torch.equal(originals[0], o) for o in originals[1:])  # the same original
    kinds = [p.read_text() for p in (out / "cache").rglob("*.json")]
    assert sum('"artifact": "original"' in k for k in kinds) == 1  # trained once
    # SISA's and DeepObliviate's own trained states are built once too, and each
    # repeat unlearns from them
    assert sum('"artifact": "sisa"' in k for k in kinds) == 1
    assert sum('"artifact": "deepobliviate-stored-training"' in k for k in kinds) == 1
    with ResultStore(out / "results.sqlite", read_only=True) as store:
        cells = store.cells()
        assert len(cells) == 12
        repeats = sorted(json.loads(c["config"])["repeat"] for c in cells)
        assert repeats == [0] * 4 + [1] * 4 + [2] * 4
        assert {c["request"] for c in cells} == {"random:1 ×3"}
        rows = store.metric_rows()
    from unlearnbench.reports.board import build_leaderboard

    with ResultStore(out / "results.sqlite", read_only=True) as store:
        board = build_leaderboard(store)
    assert set(board.table["request"]) == {"random:1 ×3"}
    assert set(board.table["seeds"]) == {1}
    per = {(r["method"], r["name"]): r for r in rows}
    assert len(per) == len(rows)  # one row per method and metric (one seed)
    raw = sqlite3.connect(out / "results.sqlite").execute(
        "SELECT c.method, m.name, m.value FROM metrics m JOIN cells c USING (cell_id)"
    )
    values: dict[tuple[str, str], list[float]] = {}
    for method, name, value in raw:
        values.setdefault((method, name), []).append(value)
    retrain = board.table[board.table["method"] == "retrain"].iloc[0]
    assert retrain["test_accuracy"] == pytest.approx(per["retrain", "test_accuracy"]["value"])
    for key, row in per.items():
        assert row["repeats"] == 3
        if key[1].endswith("speedup"):
            expected = math.exp(sum(map(math.log, values[key])) / 3)
        else:
            expected = sum(values[key]) / 3
        assert row["value"] == pytest.approx(expected)
    from unlearnbench.reports.html_page import to_html
    from unlearnbench.reports.text import to_markdown

    page, markdown = to_html(board, "t", {}), to_markdown(board, "t")
    said = "is the mean over 3 deletions of that kind and size"
    assert said in markdown and said in page  # the board says what a value averages
    assert "3 unlearning runs and 3 reference retrainings" in markdown


def test_a_resumed_run_keeps_the_repeats_already_done(tmp_path: Path) -> None:
    _, out = _run(tmp_path)
    db = out / "results.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys=ON")  # a cell's metrics go with it, as the store's do
    before = dict(con.execute("SELECT cell_id, finished_at FROM cells").fetchall())
    lost = [  # a crash before these cells were written: repeat 2 of every method
        cid
        for cid, config in con.execute("SELECT cell_id, config FROM cells")
        if json.loads(config)["repeat"] == 2
    ]
    con.executemany("DELETE FROM cells WHERE cell_id = ?", [(c,) for c in lost])
    con.commit()
    con.close()
    again, _ = _run(tmp_path)
    assert (again.summary.ok, again.summary.skipped) == (4, 8)
    after = dict(sqlite3.connect(db).execute("SELECT cell_id, finished_at FROM cells").fetchall())
    assert set(after) == set(before)
    assert all(after[c] == before[c] for c in before if c not in lost)


def test_repeat_0_measures_what_the_plain_request_measures(tmp_path: Path) -> None:
    """The same forget set, original, reference and method run: the same metrics."""
    from unlearnbench.execution import run_suite
    from unlearnbench.testing import registry

    text = suite_toml(
        requests=(
            {"kind": "random", "count": 2},
            {"kind": "random", "count": 2, "repeats": 2},
        ),
    )
    suite = write(tmp_path / "s.toml", text)
    result = run_suite(suite, tmp_path / "out", registry(), device="cpu")
    assert result.summary.ok == 6
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    found: dict[tuple[str, object], dict[str, float]] = {}
    for method, config, name, value in con.execute(
        "SELECT c.method, c.config, m.name, m.value FROM metrics m JOIN cells c USING (cell_id)"
    ):
        repeat = json.loads(config).get("repeat", "plain")
        found.setdefault((method, repeat), {})[name] = value
    for method in ("retrain", "original"):
        assert found[method, "plain"] == found[method, 0]
    # repeat 1 unlearns from the same original, but retrains without other points
    assert found["original", 1]["test_accuracy"] == found["original", 0]["test_accuracy"]
    assert found["retrain", 1]["retain_accuracy"] != found["retrain", 0]["retain_accuracy"]


def _record(cell: str, method: str, repeat: int | None, values: dict[str, float]) -> CellRecord:
    config: dict[str, object] = {"method": {"name": method}, "seed": 0}
    if repeat is not None:
        config["repeat"] = repeat
    roles = {"speedup": "speed"}
    return CellRecord(
        cell_id=cell,
        task_key="t",
        dataset="d",
        architecture="a",
        method=method,
        request="random:1 ×3" if repeat is not None else "random:1",
        seed=0,
        status="ok",
        config=config,
        metrics=tuple(
            MetricValue(name, value, "higher", "", {"role": roles.get(name, "")})
            for name, value in values.items()
        ),
        series={"curve": [float(repeat or 0)]},
    )


def test_the_store_aggregates_a_cells_repeats_per_seed(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "results.sqlite") as store:
        store.write(_record("p", "m", None, {"acc": 0.5, "speedup": 3.0}))
        for repeat, (acc, speed) in enumerate([(0.2, 1.0), (0.4, 2.0), (0.9, 4.0)]):
            store.write(_record(f"r{repeat}", "m", 2 - repeat, {"acc": acc, "speedup": speed}))
        store.write(_record("n", "m", 3, {"acc": float("nan"), "speedup": 8.0}))
        rows = store.metric_rows()
        series = store.series_rows()
    plain = [r for r in rows if r["request"] == "random:1"]
    assert [(r["name"], r["value"], r["repeats"]) for r in plain] == [
        ("acc", 0.5, 1),
        ("speedup", 3.0, 1),
    ]
    repeated = {r["name"]: r for r in rows if r["request"] == "random:1 ×3"}
    assert set(repeated) == {"acc", "speedup"} and len(rows) == 4
    assert repeated["acc"]["value"] == pytest.approx(0.5)  # the NaN is left out
    assert repeated["acc"]["repeats"] == 3
    assert repeated["speedup"]["value"] == pytest.approx(2.0**1.5)  # geometric: 1, 2, 4, 8
    assert repeated["speedup"]["repeats"] == 4
    assert repeated["acc"]["cell_id"] == "r2"  # the lowest repeat's
    assert [s["cell_id"] for s in series] == ["p", "r2"]
    assert "config" not in rows[0] and "config" not in series[0]


def test_a_tuned_suite_tunes_each_repeat_under_its_own_name() -> None:
    """Each repeat's validation forget set is drawn beside its own forget set: one study
    per repeat, named apart."""
    from unlearnbench.execution.tuning import plan_studies
    from unlearnbench.testing import registry

    text = suite_toml(
        methods=("retrain", "finetune"),
        requests=({"kind": "random", "count": 1, "repeats": 2},),
    )
    text += "\n[tuning]\ntrials = 2\nmax_sample_passes = 1000\n"
    reg = registry()
    studies = plan_studies(build_plan(parse_suite(tomllib.loads(text)), reg), reg)
    assert [s.task.repeat for s in studies] == [0, 1]
    assert "random:1 ×2/seed 0/repeat 1 |" in studies[1].name
    assert len({s.name for s in studies}) == 2
