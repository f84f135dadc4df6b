"""Suite files: every mistake is an error naming its key, before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write
from unlearnbench.cli import default_suite_path, main
from unlearnbench.execution.plan import build_plan
from unlearnbench.execution.suite import SuiteError, load_suite, parse_suite

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


@pytest.mark.slow
def test_the_default_suites_original_learns(tmp_path) -> None:
    """The first run a newcomer sees shows a model that learns: the default suite's data,
    model and recipe give an original with >= 80% test accuracy (MNIST-1D with the
    previous MLP gave 47.9%). Kept fast: one seed, retrain and original only, the
    accuracy evaluator only (the full suite's three seeds gave 91.0%)."""
    import tomllib

    from unlearnbench.execution import run_suite
    from unlearnbench.execution.store import ResultStore
    from unlearnbench.testing import registry

    data = tomllib.loads(default_suite_path().read_text(encoding="utf-8"))
    data.update(
        seeds=[0],
        evaluators=["accuracy"],
        methods=[{"name": "original"}],
        requests=[{"kind": "random", "count": 20}],
    )
    result = run_suite(parse_suite(data), tmp_path / "out", registry(), executor="local")
    assert result.summary.failed == 0
    with ResultStore(result.store_path, read_only=True) as store:
        acc = [
            r["value"]
            for r in store.metric_rows()
            if r["method"] == "original" and r["name"] == "test_accuracy"
        ]
    assert len(acc) == 1 and acc[0] >= 0.8, acc


@pytest.mark.parametrize(
    ("changes", "key", "text"),
    [
        ({"seedz": [1]}, "seedz", "unknown key"),
        ({"seeds": "three"}, "seeds", "list of integers"),
        ({"seeds": [1, 1]}, "seeds", "repeat"),
        ({"train": {"epochs": "ten"}}, "train.epochs", "expected int, got str"),
        ({"train": {"optimiser": "adam"}}, "train.optimiser", "unknown key"),
        ({"train": {"optimizer": "lbfgs"}}, "train.optimizer", "'adam' or 'sgd'"),
        ({"train": {"lr": float("nan")}}, "train.lr", "finite number > 0, got nan"),
        ({"train": {"lr": float("inf")}}, "train.lr", "finite number > 0, got inf"),
        ({"train": {"lr": 0.0}}, "train.lr", "> 0"),
        ({"train": {"weight_decay": -0.1}}, "train.weight_decay", ">= 0, got -0.1"),
        ({"train": {"momentum": float("nan")}}, "train.momentum", "[0, 1), got nan"),
        ({"train": {"optimizer_impl": "fast"}}, "train.optimizer_impl", "auto, foreach"),
        ({"train": {"momentum": 1.0}}, "train.momentum", "[0, 1)"),
        ({"train": {"batch_size": 0}}, "train.batch_size", "integer >= 1"),
        ({"splits": {"nonmember": float("nan")}}, "splits.nonmember", "got nan"),
        ({"splits": {"test": float("inf")}}, "splits.test", "got inf"),
        ({"splits": {"test": -3}}, "splits.test", ">= 0, got -3"),
        ({"splits": {"target": 1.5}}, "splits.target", "fraction must be < 1"),
        (
            {"datasets": [{"name": "digits", "train": {"lr": float("nan")}}]},
            "datasets[0].train.lr",
            "got nan",
        ),
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
        ({"methods": ["retrain", "retrain"]}, "methods[1]", "listed twice (also methods[0])"),
        (
            {"architectures": ["mlp", {"name": "mlp", "params": {"widths": [8]}}]},
            "architectures[1]",
            "listed twice",
        ),
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


def test_optimizer_impl_enters_the_keys_only_when_not_auto(fixture_registry) -> None:
    """``optimizer_impl = "auto"`` (the default) keeps the cell ids and training keys a
    recipe had before the field existed; ``fused`` trains other models: other keys."""
    plain = plan_of(fixture_registry)
    auto = plan_of(fixture_registry, train={"optimizer_impl": "auto"})
    fused = plan_of(fixture_registry, train={"optimizer_impl": "fused"})
    ids = [[c.cell_id for _, c in p.cells()] for p in (plain, auto, fused)]
    assert ids[0] == ids[1]
    assert not set(ids[0]) & set(ids[2])
    assert [t.train_key for t in plain.tasks] == [t.train_key for t in auto.tasks]
    assert not {t.train_key for t in plain.tasks} & {t.train_key for t in fused.tasks}


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


def test_dataset_variants_are_labelled_apart(fixture_registry) -> None:
    """Two entries of one data set with their own recipe, splits or params are two
    leaderboard rows, labelled by what differs (as a grid point is)."""
    plan = plan_of(
        fixture_registry,
        train={"lr": 0.001},
        datasets=[
            "digits",
            {"name": "digits", "train": {"lr": 0.003}},
            {"name": "digits", "splits": {"target": 300}, "train": {"lr": 0.001}},
            {"name": "mnist1d", "grid": {"samples": [500, 800]}},
            {"name": "mnist1d", "grid": {"samples": [500]}, "train": {"epochs": 3}},
        ],
    )
    labels = {t.dataset.label: t for t in plan.tasks}
    assert set(labels) == {
        "digits(train.lr=0.001,splits.target=0.3)",
        "digits(train.lr=0.003,splits.target=0.3)",
        "digits(train.lr=0.001,splits.target=300)",
        "mnist1d(samples=500,train.epochs=30)",
        "mnist1d(samples=800)",
        "mnist1d(samples=500,train.epochs=3)",
    }
    assert labels["digits(train.lr=0.003,splits.target=0.3)"].recipe.lr == 0.003
    assert labels["mnist1d(samples=500,train.epochs=3)"].recipe.epochs == 3
    assert len({t.train_key for t in plan.tasks}) == 6
    plain = plan_of(fixture_registry, datasets=["digits", "mnist1d"])
    assert {t.dataset.label for t in plain.tasks} == {"digits", "mnist1d"}


def test_a_repeated_dataset_entry_is_refused(fixture_registry) -> None:
    with pytest.raises(SuiteError, match="repeats datasets\\[0\\]") as err:
        plan_of(fixture_registry, datasets=["digits", {"name": "digits", "params": {}}])
    assert err.value.key == "datasets[1]"


def test_architectures_sharing_a_label_are_refused(fixture_registry) -> None:
    archs = [
        {"name": "mlp", "grid": {"widths": [[8], [16]]}},
        {"name": "mlp", "label": "mlp(widths=[8])"},
    ]
    with pytest.raises(SuiteError, match="shares the label 'mlp\\(widths=\\[8\\]\\)'") as err:
        plan_of(fixture_registry, architectures=archs)
    assert err.value.key == "architectures[1]"
    labels = [{"name": "mlp", "label": "a"}, {"name": "mlp", "label": "b"}]
    assert len(plan_of(fixture_registry, architectures=labels).tasks) == 2


def test_method_size_checks_run_against_the_real_split_sizes(fixture_registry) -> None:
    """MethodSpec.check gets the resolved params and every split's count."""
    from unlearnbench.execution.plan import check_feasible
    from unlearnbench.testing import registry

    seen = []
    suite = parse_suite(
        {
            **BASE,
            "methods": ["retrain", {"name": "sisa", "params": {"shards": 3}}],
            "splits": {"target": 300, "nonmember": 50, "test": 100, "shadow_in": 0},
            "requests": [{"kind": "random", "count": 7}],
        }
    )
    plan = build_plan(suite, registry())
    plan.size_checks["sisa"] = lambda params, sizes: seen.append((params, sizes))
    check_feasible(plan, lambda c: registry().get("dataset", c.name).load(c.params), suite)
    [(params, sizes)] = seen
    assert params["shards"] == 3 and params["slices"] == 5
    assert sizes == {
        "target": 300,
        "nonmember": 50,
        "test": 100,
        "shadow_in": 0,
        "shadow_out": int(0.1 * 1797),
        "auxiliary": int(0.05 * 1797),
        "forget": 7,
        "retain": 293,
    }


def test_the_budget_warning_sees_each_dataset_variant(tmp_path, caplog) -> None:
    text = SMALL.replace('datasets = ["digits"]', "").replace("epochs = 2", "epochs = 2\n") + (
        '[[datasets]]\nname = "digits"\n\n'
        '[[datasets]]\nname = "digits"\ntrain = { epochs = 1000000 }\n'
    )
    assert _run(tmp_path, text, "--check") == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "digits(train.epochs=1000000)" in warnings[0], warnings
    assert not (tmp_path / "out").exists(), "--check writes nothing"


def test_the_test_suite_builder_writes_what_it_is_given() -> None:
    """tests/suites.py: the TOML it writes reads back as the values it was given."""
    import tomllib

    from tests.suites import suite_toml

    text = suite_toml(
        "built",
        seeds=[0, 3],
        reference=None,
        train={"epochs": 2, "batch_size": 8, "lr": 0.5, "amp": False},
        methods=["original", {"name": "sisa", "params": {"shards": 2, "aggregation": "mean"}}],
        requests=[{"kind": "class", "label": 1, "fraction": 0.5}],
    )
    data = tomllib.loads(text)
    assert "reference" not in data and data["seeds"] == [0, 3]
    assert data["train"] == {"epochs": 2, "batch_size": 8, "lr": 0.5, "amp": False}
    assert data["methods"][1] == {"name": "sisa", "params": {"shards": 2, "aggregation": "mean"}}
    suite = parse_suite(data)
    assert suite.name == "built" and suite.requests[0].fraction == 0.5
