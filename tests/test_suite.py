"""Suite files: every mistake is an error naming its key, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write
from unlearnbench.cli import default_suite_path, main
from unlearnbench.plan import build_plan
from unlearnbench.suite import SuiteError, load_suite, parse_suite

BASE = {
    "datasets": ["digits"],
    "architectures": [{"name": "mlp", "params": {"widths": [16]}}],
    "methods": ["retrain", "original"],
}


def plan_of(fixture_registry, **changes):
    return build_plan(parse_suite({**BASE, **changes}), fixture_registry)


def test_default_suite_is_valid(fixture_registry) -> None:
    suite = load_suite(default_suite_path())
    plan = build_plan(suite, fixture_registry)
    assert plan.size == len(suite.seeds) * len(suite.requests) * len(suite.methods)
    assert {m.name for m in suite.methods} >= {"retrain", "original"}


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [
        ({"seedz": [1]}, "seedz", "unknown key"),
        ({"seeds": "three"}, "seeds", "list of integers"),
        ({"seeds": [1, 1]}, "seeds", "repeat"),
        ({"train": {"epochs": "ten"}}, "train.epochs", "expected int, got str"),
        ({"train": {"optimiser": "adam"}}, "train.optimiser", "unknown key"),
        ({"train": {"optimizer": "lbfgs"}}, "train", "'adam' or 'sgd'"),
        ({"splits": {"target": "half"}}, "splits.target", "expected float"),
        ({"requests": [{"kind": "everything"}]}, "requests[0]", "kind must be one of"),
        (
            {"requests": [{"kind": "random", "count": 5, "fraction": 0.1}]},
            "requests[0]",
            "exactly one of count or fraction",
        ),
        (
            {"requests": [{"kind": "random", "count": 5, "colour": 1}]},
            "requests[0].colour",
            "unknown key",
        ),
        ({"methods": [{"name": "retrain", "parms": {}}]}, "methods[0].parms", "unknown key"),
        ({"methods": [{"params": {}}]}, "methods[0].name", "required"),
        ({"methods": []}, "methods", "non-empty"),
        ({"methods": ["retrain", "retrain"]}, "methods", "listed twice"),
        ({"methods": [{"name": "retrain", "grid": {"x": 3}}]}, "methods[0].grid.x", "list"),
        (
            {"requests": [{"kind": "random", "count": 5}, {"kind": "random", "count": 5}]},
            "requests[1]",
            "repeats an earlier request",
        ),
    ],
)
def test_shape_errors_name_the_key(changes, key, text) -> None:
    with pytest.raises(SuiteError) as err:
        parse_suite({**BASE, **changes})
    assert err.value.key == key
    assert text in str(err.value)


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [
        ({"methods": ["retrian"]}, "methods[0].name", "Did you mean 'retrain'"),
        ({"datasets": ["digitz"]}, "datasets[0].name", "Did you mean 'digits'"),
        ({"evaluators": ["acuracy"]}, "evaluators[0].name", "Did you mean 'accuracy'"),
        (
            {"architectures": [{"name": "mlp", "params": {"width": [3]}}]},
            "architectures[0].params",
            "did you mean 'widths'",
        ),
        (
            {"architectures": [{"name": "mlp", "params": {"widths": 3}}]},
            "architectures[0].params",
            "widths: expected list, got int",
        ),
        (
            {"datasets": [{"name": "mnist1d", "grid": {"samples": ["many"]}}]},
            "datasets[0].grid",
            "samples: expected int",
        ),
    ],
)
def test_registry_errors_name_the_key(fixture_registry, changes, key, text) -> None:
    with pytest.raises(SuiteError) as err:
        plan_of(fixture_registry, **changes)
    assert err.value.key == key
    assert text in str(err.value)


def test_grids_expand_with_labels(fixture_registry) -> None:
    plan = plan_of(
        fixture_registry,
        seeds=[0, 1],
        datasets=[{"name": "mnist1d", "grid": {"samples": [500, 800]}}],
    )
    assert len(plan.tasks) == 4
    assert {t.dataset.label for t in plan.tasks} == {"mnist1d(samples=500)", "mnist1d(samples=800)"}
    assert len({c.cell_id for _, c in plan.cells()}) == plan.size == 8


def test_dataset_architecture_pairing(fixture_registry) -> None:
    plan = plan_of(
        fixture_registry,
        datasets=[{"name": "digits", "architectures": ["lenet5"]}, "mnist1d"],
        architectures=["lenet5", "cnn1d"],
    )
    pairs = {(t.dataset.name, t.architecture.name) for t in plan.tasks}
    assert pairs == {("digits", "lenet5"), ("mnist1d", "lenet5"), ("mnist1d", "cnn1d")}


def test_cell_ids_are_stable_across_plans(fixture_registry) -> None:
    a = [c.cell_id for _, c in plan_of(fixture_registry).cells()]
    b = [c.cell_id for _, c in plan_of(fixture_registry).cells()]
    assert a == b


def _run(tmp_path: Path, text: str, *extra: str) -> int:
    suite = write(tmp_path / "s.toml", text)
    return main(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress", *extra])


SMALL = """
seeds = [0]
datasets = ["digits"]
architectures = [{ name = "mlp", params = { widths = [16] } }]
methods = ["retrain", "original"]
[train]
epochs = 2
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeds = [0\n", "not valid TOML"),
        (
            SMALL + "[[requests]]\nkind = 'random'\ncount = 5000\n",
            "requests[0]: digits: request asks to forget 5000 points but the target set "
            "has only 539",
        ),
        (SMALL + "[splits]\ntarget = 1500\ntest = 500\n", "splits: digits: splits need"),
        (SMALL + "[[requests]]\nkind = 'class'\nlabel = 10\n", "not a class"),
        (SMALL.replace('"retrain", ', '"retrain", "nope", '), "unknown method 'nope'"),
    ],
)
def test_cli_exits_2_before_training(tmp_path, capsys, text, message) -> None:
    assert _run(tmp_path, text) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "out" / "cache").exists(), "nothing may be trained"


def test_missing_suite_file_exits_2(tmp_path, capsys) -> None:
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_check_validates_without_training(tmp_path, capsys) -> None:
    assert _run(tmp_path, SMALL, "--check") == 0
    assert "1 tasks, 2 cells" in capsys.readouterr().err
    assert not (tmp_path / "out" / "cache").exists()


def test_an_evaluator_listed_twice_is_refused(fixture_registry) -> None:
    evaluators = ["accuracy", {"name": "accuracy", "label": "again"}]
    with pytest.raises(SuiteError, match="metric names would collide") as err:
        plan_of(fixture_registry, evaluators=evaluators)
    assert err.value.key == "evaluators"
