"""A catalogue of bad inputs: each gives a clear error and exit code 2, before any training.

Every case goes through ``unlearnbench.cli.main([...])`` as a user would, and
checks the message names what is wrong and that nothing was trained (no
artifact in the cache, no cell in the store).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.plugins.executor_plugins import ExecutorTestPlugin
from unlearnbench.cli import EXIT_USAGE, main

BASE = """
name = "bad"
seeds = [0]
reference = "retrain"
evaluators = ["accuracy"]

[splits]
target = 300
nonmember = 50
test = 200
shadow_in = 0
shadow_out = 0

[train]
epochs = 1
batch_size = 32
lr = 0.001

[[datasets]]
name = "digits"

[[architectures]]
name = "mlp"
params = { widths = [16] }

[[methods]]
name = "original"

[[requests]]
kind = "random"
count = 10
"""


@pytest.fixture
def with_test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registry the CLI builds also holds the executor fixture plugin."""
    import unlearnbench.plugins as plugins

    original = plugins.make_plugin_manager

    def patched(**kwargs):
        kwargs["extra_plugins"] = [*kwargs.get("extra_plugins", ()), ExecutorTestPlugin()]
        return original(**kwargs)

    monkeypatch.setattr(plugins, "make_plugin_manager", patched)


def run_bad(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, *extra: str
) -> str:
    """Run the CLI on a suite text; assert exit code 2 and nothing trained; return stderr."""
    out = tmp_path / "out"
    args = ["run", "--out", str(out), "--no-progress", "--device", "cpu", *extra]
    if text is not None:
        suite = tmp_path / "suite.toml"
        suite.write_text(text, encoding="utf-8")
        args.insert(1, str(suite))
    code = main(args)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "unlearnbench: error:" in err
    cache = out / "cache"
    assert not cache.exists() or not any(cache.rglob("*.pt")), "something was trained"
    store = out / "results.sqlite"
    if store.exists():
        with sqlite3.connect(store) as conn:
            assert conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 0
    return err


def test_malformed_toml(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE + "\n[[methods]\nname = 'x'\n")
    assert "suite.toml" in err and "TOML" in err.upper()


def test_missing_suite_file(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "nope.toml"), "--out", str(out), "--no-progress"])
    assert code == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err


def test_unknown_method_suggests_the_closest(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace('name = "original"', 'name = "orignal"'))
    assert "methods[0].name" in err and "Did you mean 'original'" in err


def test_unknown_dataset_suggests_the_closest(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace('name = "digits"', 'name = "digit"'))
    assert "datasets[0].name" in err and "digits" in err


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("seeds = [0]", 'seeds = "zero"', "seeds"),
        ("epochs = 1", 'epochs = "one"', "epochs"),
        ("lr = 0.001", "lr = -1.0", "lr"),
        ("widths = [16]", 'widths = "16"', "widths"),
        ("count = 10", "count = 2.5", "count"),
        ('kind = "random"', 'kind = "randomly"', "kind"),
    ],
)
def test_wrong_types_and_values_name_the_key(tmp_path, capsys, old, new, key) -> None:
    assert old in BASE
    err = run_bad(tmp_path, capsys, BASE.replace(old, new))
    assert key in err


def test_unknown_top_level_key(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, "sedes = [1]\n" + BASE)
    assert "sedes" in err


def test_impossible_splits(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace("target = 300", "target = 5000"))
    assert "splits" in err and "1797" in err


def test_forget_count_larger_than_target(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace("count = 10", "count = 301"))
    assert "requests[0]" in err


def test_forget_everything_is_refused(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace("count = 10", "count = 300"))
    assert "requests[0]" in err


def test_forget_label_not_a_class(tmp_path, capsys) -> None:
    text = BASE.replace('kind = "random"\ncount = 10', 'kind = "class"\nlabel = 42')
    err = run_bad(tmp_path, capsys, text)
    assert "requests[0]" in err and "42" in err


def test_more_blocks_than_target_points(tmp_path, capsys) -> None:
    text = BASE.replace(
        'kind = "random"\ncount = 10', 'kind = "block"\nblocks = 1000\nposition = 0.0'
    )
    err = run_bad(tmp_path, capsys, text)
    assert "requests[0]" in err and "block" in err


def test_more_steps_than_forget_points(tmp_path, capsys) -> None:
    err = run_bad(tmp_path, capsys, BASE.replace("count = 10", "count = 10\nsteps = 11"))
    assert "requests[0].steps" in err


def test_missing_data_root(tmp_path, capsys, with_test_plugin) -> None:
    text = BASE.replace('name = "digits"', 'name = "missing_root"\nparams = { root = "/no/data" }')
    err = run_bad(tmp_path, capsys, text)
    assert "missing_root" in err and "/no/data" in err and "could not be loaded" in err


def test_plugin_that_raises_at_import(tmp_path, capsys, monkeypatch) -> None:
    """A fake installed distribution whose entry point imports a broken module."""
    dist = tmp_path / "site" / "broken_dist-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[unlearnbench]\nbroken = tests.plugins.broken_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    err = run_bad(tmp_path, capsys, BASE)
    assert "'broken'" in err and "failed to import" in err and "ZeroDivisionError" in err
    assert "UNLEARNBENCH_BLOCK_PLUGINS=broken" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--workers", "-1", "--executor", "processes"], "--workers"),
        (["--cell-timeout", "0"], "--cell-timeout"),
        (["--cell-timeout", "-3"], "--cell-timeout"),
        (["--address", "ray://x:1"], "--executor ray"),
        (["--workers", "2"], "--executor processes"),
        (["--executor", "processes", "--threads-per-worker", "-2"], "--threads-per-worker"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_run_options(tmp_path, capsys, options, message) -> None:
    err = run_bad(tmp_path, capsys, BASE, *options)
    assert message in err


def test_unknown_executor_is_an_argparse_error(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--executor", "dask"])
    assert exc.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


KNOWABLE = [
    ("nonmember = 50", "nonmember = nan", "splits.nonmember"),
    ("lr = 0.001", "lr = nan", "train.lr"),
    ("lr = 0.001", "lr = inf", "train.lr"),
    ("lr = 0.001", "lr = 0.001\nweight_decay = -0.5", "train.weight_decay"),
    ("lr = 0.001", "lr = 0.001\noptimizer = 'sgd'\nmomentum = nan", "train.momentum"),
    ("widths = [16]", "widths = [-4]", "architectures[0].params: widths"),
    ('name = "original"', 'name = "gan"\nparams = { alpha = nan }', "methods[0].params: alpha"),
    # method parameters against the data: SISA's size check (MethodSpec.check)
    ('name = "original"', 'name = "sisa"\nparams = { shards = 301 }', "methods[0].params: shards"),
    ('name = "original"', 'name = "sisa"\ngrid = { shards = [3, 400] }', "methods[0].grid: shards"),
    ('name = "original"', 'name = "sisa"\nparams = { shards = 100, slices = 4 }', "slices"),
    ('evaluators = ["accuracy"]', 'evaluators = [{ name = "mia", params = { holdout = 1.0 } }]',
     "evaluators[0].params: holdout"),
    ('[[datasets]]\nname = "digits"\n', '[[datasets]]\nname = "digits"\n' * 2, "datasets[1]"),
    ('name = "digits"', 'name = "mnist"\nparams = { root = "/no/such/dir" }', "/no/such/dir"),
]


@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
@pytest.mark.parametrize(("old", "new", "key"), KNOWABLE)
def test_knowable_from_the_suite_fails_before_anything_runs(
    tmp_path, capsys, check, old, new, key
) -> None:
    """Each fails with exit 2 naming its key, at --check as at run, leaving no output folder."""
    assert old in BASE
    err = run_bad(tmp_path, capsys, BASE.replace(old, new), *(["--check"] if check else []))
    assert key in err
    assert not (tmp_path / "out").exists(), "a refused suite must leave no results folder"


def test_a_model_trained_to_chance_fails_its_cells_as_diverged(tmp_path, capsys) -> None:
    """Adam at lr=1e6 keeps a finite loss but predicts at chance: not a valid original model."""
    suite = tmp_path / "suite.toml"
    suite.write_text(BASE.replace("lr = 0.001", "lr = 1e6"), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"])
    assert code == 1
    assert "diverged" in capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT status, error FROM cells").fetchall()
    assert rows and all(s == "failed" and "its own training data" in e for s, e in rows)
    assert all("train.lr=1e+06" in e for _, e in rows)
    assert not any((out / "cache").rglob("*.pt")), "a diverged model must not be cached"


def test_an_absurd_training_budget_is_a_warning(tmp_path, capsys, caplog) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(BASE.replace("epochs = 1", "epochs = 1000000"), encoding="utf-8")
    code = main(["run", str(suite), "--check", "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("train.epochs=1000000" in w and "sample-passes" in w for w in warnings), warnings


def test_an_undertrained_model_at_chance_is_not_called_diverged(tmp_path) -> None:
    """The rule's other half: at chance, but its loss did not rise (one epoch at lr=1e-4)."""
    from unlearnbench.task import SplitSizes, TrainRecipe
    from unlearnbench.testing import make_task
    from unlearnbench.training import accuracy, check_learned

    task, ctx = make_task(
        tmp_path,
        recipe=TrainRecipe(epochs=1, batch_size=32, lr=1e-4),
        splits=SplitSizes(target=300, nonmember=50, test=200, shadow_in=0, shadow_out=0),
        architecture_params={"widths": [16]},
        seed=1,
    )
    model = task.new_model("init")
    ctx.train(model, task.splits.target)
    target = task.splits.target
    majority = float(task.y[target].bincount().max()) / target.numel()
    assert accuracy(model, task.x[target], task.y[target]) <= majority  # at chance
    check_learned(model, task)  # but not diverged: no error
