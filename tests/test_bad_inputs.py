"""A catalogue of bad inputs: each gives a clear error and exit code 2, before any training.

Every case goes through ``unlearnbench.cli.main([...])`` as a user would, and
checks the message names what is wrong and that nothing was trained (no
artifact in the cache, no cell in the store).
"""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.suites import suite_toml
from unlearnbench.cli import EXIT_USAGE, main

BASE = suite_toml("bad", methods=["original"])


@pytest.fixture
def with_test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every registry the CLI builds also holds the executor fixture plugin."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "tests.plugins.executor_plugins:ExecutorTestPlugin")


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
        (["--workers", "2", "--executor", "local"], "--executor processes"),
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


PLOT = '\n[[plots]]\nname = "p"\nx = "seed"\n'
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
    (
        'evaluators = ["accuracy"]',
        'evaluators = [{ name = "mia", params = { holdout = 1.0 } }]',
        "evaluators[0].params: holdout",
    ),
    ('[[datasets]]\nname = "digits"\n', '[[datasets]]\nname = "digits"\n' * 2, "datasets[1]"),
    ('name = "digits"', 'name = "mnist"\nparams = { root = "/no/such/dir" }', "/no/such/dir"),
    # [[plots]] tables (suite-declared figures), checked when the suite is read
    ("count = 10", f"count = 10\n{PLOT}metrics = []\n", "plots[0].metrics"),
    ("count = 10", f"count = 10\n{PLOT}metrics = ['a']\nlog_x = 'yes'\n", "plots[0].log_x"),
    ("count = 10", f"count = 10\n{PLOT}metrics = ['a']\nwhere = 3\n", "plots[0].where"),
    ("count = 10", f"count = 10\n{PLOT}metrics = ['a']\ncolour = 1\n", "plots[0].colour"),
    ("count = 10", "count = 10\n" + f"{PLOT}metrics = ['a']\n" * 2, "plots[1].name"),
    ("count = 10", f"count = 10\n{PLOT.replace('seed', 'sed')}metrics = ['a']\n", "plots[0].x"),
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
    from unlearnbench.task_values import SplitSizes, TrainRecipe
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


# --------------------------------------------------------------------------- output and store


def store_with_cells(path: Path, cells: int = 60) -> None:
    """A real results store with ``cells`` cells, several pages long."""
    from unlearnbench.execution.store import CellRecord, MetricValue, ResultStore

    with ResultStore(path) as store:
        for i in range(cells):
            store.write(
                CellRecord(
                    cell_id=f"cell{i:04d}",
                    task_key="task",
                    dataset="digits",
                    architecture="mlp",
                    method=("retrain", "original")[i % 2],
                    request="random 10",
                    seed=i // 2,
                    status="ok",
                    config={"padding": "x" * 300, "i": i},
                    metrics=tuple(
                        MetricValue(f"metric{j}", float(i + j), "higher", "") for j in range(8)
                    ),
                    provenance={"device": "cpu", "torch_threads": 1},
                )
            )


def damage(path: Path, how: str) -> None:
    """Damage a store file: garbage, a text file, truncated, or one page in the middle."""
    data = bytearray(path.read_bytes())
    noise = random.Random(0)
    if how == "garbage":
        path.write_bytes(noise.randbytes(8192))
    elif how == "text":
        path.write_text("my notes about the results\n", encoding="utf-8")
    elif how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:  # one page in the middle overwritten
        page = 4096
        middle = len(data) // page // 2
        assert middle >= 2, "the store should span several pages"
        data[middle * page : (middle + 1) * page] = noise.randbytes(page)
        path.write_bytes(bytes(data))


DAMAGE = ["garbage", "text", "truncated", "middle"]


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("command", ["run", "leaderboard"])
def test_a_damaged_store_is_reported_and_kept_as_it_is(tmp_path, capsys, how, command) -> None:
    """Exit 2 before anything trains, saying how to move the file aside; the file is unchanged."""
    out = tmp_path / "out"
    out.mkdir()
    store = out / "results.sqlite"
    store_with_cells(store)
    damage(store, how)
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    if command == "run":
        suite = tmp_path / "suite.toml"
        suite.write_text(BASE, encoding="utf-8")
        code = main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"])
    else:
        code = main(["leaderboard", str(out), "--no-plots"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err
    assert f"{store} is damaged" in err and f"mv {store}*" in err and ".recover" in err
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before, "the damaged file changed"
    assert sorted(p.name for p in out.iterdir()) == ["results.sqlite"], "something was written"


def test_a_foreign_sqlite_file_is_not_taken_for_a_store(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER, path TEXT)")
    suite = tmp_path / "suite.toml"
    suite.write_text(BASE, encoding="utf-8")
    code = main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "not an unlearnbench results store" in err and "photos" in err
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("photos",)], "the foreign file was changed"


def test_a_folder_as_the_suite_file(tmp_path, capsys) -> None:
    (tmp_path / "suites").mkdir()
    out = tmp_path / "out"
    code = main(["run", str(tmp_path / "suites"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "is a folder; give the suite file" in err
    assert not out.exists()


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_out_that_cannot_be_a_folder(tmp_path, capsys, where) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me", encoding="utf-8")
    out = blocker if where == "file" else blocker / "results"
    suite = tmp_path / "suite.toml"
    suite.write_text(BASE, encoding="utf-8")
    code = main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "--out" in err and ("is a file" in err)
    assert blocker.read_text(encoding="utf-8") == "keep me"


# --------------------------------------------------------------------------- leaderboard


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    store_with_cells(out / "results.sqlite", cells=4)
    return out


@pytest.mark.parametrize(
    ("option", "value", "suggestion"),
    [
        ("--reference", "nosuchmethod", None),
        ("--reference", "retrian", "retrain"),
        ("--original", "orignal", "original"),
    ],
)
def test_leaderboard_of_a_method_that_never_ran(results, capsys, option, value, suggestion) -> None:
    code = main(["leaderboard", str(results), "--no-plots", option, value])
    captured = capsys.readouterr()
    assert code == EXIT_USAGE, captured.err
    assert f"{option}: unknown method {value!r}" in captured.err
    assert "Known methods: original, retrain" in captured.err
    if suggestion:
        assert f"Did you mean {suggestion!r}" in captured.err
    assert captured.out == "", "a leaderboard was printed"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("empty", "holds no results.sqlite, so there are no results to show"),
        ("missing", "does not exist"),
        ("store_file", "is a file, not a results folder; give its folder"),
    ],
)
def test_leaderboard_without_results(tmp_path, results, capsys, make, message) -> None:
    target = {
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing",
        "store_file": results / "results.sqlite",
    }[make]
    if make == "empty":
        target.mkdir()
    code = main(["leaderboard", str(target), "--no-plots"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert message in err


# --------------------------------------------------------------------------- suite names


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", ["../escaped", "ABSOLUTE", "", ".hidden", "a b", "x" * 101, "a/b"])
@pytest.mark.parametrize("check", [False, True])
def test_a_suite_name_that_is_a_path(tmp_path, capsys, monkeypatch, name, check) -> None:
    """Names are labels: with the default output folder, nothing may escape or be created."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    name = str(tmp_path / "anywhere") if name == "ABSOLUTE" else name
    suite = work / "suite.toml"
    suite.write_text(BASE.replace('name = "bad"', f"name = {name!r}"), encoding="utf-8")
    before = tree(tmp_path)
    code = main(["run", str(suite), "--no-progress", "--device", "cpu", *(["--check"] * check)])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "suite.toml: name:" in err and "letters, digits" in err
    assert tree(tmp_path) == before


def test_a_file_name_that_is_no_valid_default_name(tmp_path, capsys) -> None:
    suite = tmp_path / "my suite.toml"
    suite.write_text(BASE.replace('name = "bad"\n', ""), encoding="utf-8")
    code = main(["run", str(suite), "--check", "--device", "cpu", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert "name: not set" in err and 'name = "my-suite"' in err


# --- hostile labels: every output escapes what a label can carry (issue 26) -----------------

HOSTILE_LABELS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "a|b",
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd",
    "@SUM(A1)",
    "\x1b[31mred\x1b[0m",
    "[x](javascript:alert(1))",
    "**loud** `code` _it_",
]


def hostile_board(tmp_path: Path) -> Any:
    from tests.test_leaderboard import make_store, record
    from unlearnbench.reports.board import build_leaderboard

    records = []
    for seed in (0, 1):
        for i, label in enumerate(["retrain", "original", *HOSTILE_LABELS]):
            values = {"test_accuracy": 0.5 + 0.01 * i + 0.001 * seed, "<b>x|y</b>": -0.5}
            records.append(record(label, seed, values, request="<i>r|q</i>"))
    with make_store(tmp_path, records) as store:
        return build_leaderboard(store)


def test_markdown_escapes_every_label_and_metric_name(tmp_path) -> None:
    """Before: a renderer with HTML on ran the <script> and <img onerror> of labels, and
    a | in a label shifted the row's values under the wrong headers."""
    markdown_it = pytest.importorskip("markdown_it")
    from unlearnbench.reports.write import render

    text = render(hostile_board(tmp_path), "md")
    html = markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    for bad in ("<script", "<img", "<a ", "<b>", "<i>", "<strong>loud", "<code>", "\x1b"):
        assert bad not in html, bad
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text
    for table in re.findall(r"<table>.*?</table>", html, flags=re.S):
        headers = len(re.findall(r"<th[ >]", table))
        for row in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]:
            assert len(re.findall(r"<td[ >]", row)) == headers, row
    assert "test_accuracy" in text and "ft[tuned]" not in text  # no needless escapes


def test_csv_neutralises_formulas_but_not_numbers(tmp_path) -> None:
    import csv
    import io

    from unlearnbench.reports.write import render

    rows = list(csv.reader(io.StringIO(render(hostile_board(tmp_path), "csv"))))
    cells = [cell for row in rows for cell in row]
    for cell in cells:
        if cell.startswith(("=", "+", "-", "@")):
            float(cell)  # only numbers may start so (-0.5 stays a number)
    assert "-0.5" in cells
    assert '\'=HYPERLINK("http://evil.example","click")' in cells
    assert "'@SUM(A1)" in cells and "'+1+cmd" in cells


def test_the_terminal_summary_carries_no_control_characters(tmp_path) -> None:
    from unlearnbench.reports.summary import terminal_summary

    text = terminal_summary(hostile_board(tmp_path))
    assert "\x1b" not in text and "[31mred" in text
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)


# --- bad data from a plugin, caught at --check and named (issue 26) ------------------------

HOSTILE_PLUGIN = "tests.plugins.hostile_plugins:HostilePlugin"


@pytest.mark.parametrize("check", [True, False], ids=["check", "run"])
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{ nan = true }", "data set 'bad_digits' has non-finite features (NaN or infinity) in 1"),
        (
            "{ label = 10 }",
            "labels outside [0, num_classes=10) in 1 examples (the first: example 11, label 10)",
        ),
        ("{ label = -1 }", "label -1)"),
    ],
)
def test_bad_values_in_a_data_set_are_refused_naming_it(
    tmp_path, capsys, monkeypatch, check, params, message
) -> None:
    """Before: NaN features ended in "training diverged ... lower the learning rate"
    with a traceback, a label equal to num_classes in an IndexError per cell."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", HOSTILE_PLUGIN)
    text = BASE.replace('name = "digits"', f'name = "bad_digits"\nparams = {params}')
    err = run_bad(tmp_path, capsys, text, *(["--check"] if check else []))
    assert message in err
    assert "Traceback" not in err


def test_a_non_finite_metric_is_recorded_and_footnoted(tmp_path, capsys, monkeypatch) -> None:
    """Before: stored as NULL and shown as "–" with no word."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", HOSTILE_PLUGIN)
    suite = tmp_path / "suite.toml"
    suite.write_text(
        BASE.replace('evaluators = ["accuracy"]', 'evaluators = ["accuracy", "not_finite"]'),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    with sqlite3.connect(out / "results.sqlite") as conn:
        value, meta = conn.execute(
            "SELECT value, meta FROM metrics WHERE name = 'broken_metric'"
        ).fetchone()
    assert value is None and '"not_finite": "nan"' in meta
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "## Values that were not finite" in board
    assert "digits/mlp/original/random:10 seed 0: broken_metric was nan" in board
    assert "broken_metric was nan" in capsys.readouterr().out  # the terminal summary
    assert "broken_metric was nan" in (out / "leaderboard.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        (f"{HOSTILE_PLUGIN},{HOSTILE_PLUGIN}", "is named 'hostile', like a plugin listed before"),
        ("tests.plugins.entry_point_plugin,tests.plugins.entry_point_plugin", "list it once"),
        ("gan", "is named 'gan', like the unlearnbench plugin 'gan'"),
        (":", "is not a module or module:object name"),
        ("tests.plugins.hostile_plugins:", "is not a module or module:object name"),
        ("os:path", "implements no unlearnbench hook"),
    ],
)
def test_bad_local_plugin_lists_are_one_clear_line(
    tmp_path, capsys, monkeypatch, plugins, message
) -> None:
    """Before: a raw pluggy ValueError with a dump of every plugin, "Empty module name"
    with a traceback, or (os:path) nothing registered without a word."""
    (tmp_path / "gan.py").write_text("x = 1\n", encoding="utf-8")  # a local module named gan
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", plugins)
    try:
        err = run_bad(tmp_path, capsys, BASE, "--check")
    finally:
        sys.modules.pop("gan", None)
    assert message in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("unlearnbench: error: "), err


def test_leaderboard_rank_blocks_is_one_of_two_names(results, capsys) -> None:
    assert main(["leaderboard", str(results), "--no-plots", "--rank-blocks", "groups"]) == 0
    assert "each group is one block" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["leaderboard", str(results), "--no-plots", "--rank-blocks", "seed"])
    assert exited.value.code == EXIT_USAGE
    assert "invalid choice: 'seed'" in capsys.readouterr().err
