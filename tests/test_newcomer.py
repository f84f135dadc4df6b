"""A newcomer's first hour (issue 30): every board names its answer, every mistake is
said, every doc is true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.suites import suite_toml
from tests.test_leaderboard import make_store, record
from unlearnbench.cli import main
from unlearnbench.execution.store import ResultStore
from unlearnbench.reports.board import best_cells, build_leaderboard, declarations
from unlearnbench.reports.flags import WORSE
from unlearnbench.reports.headline import headline_groups
from unlearnbench.reports.summary import WIDTH, terminal_summary
from unlearnbench.reports.text import to_markdown
from unlearnbench.reports.verdict import group_verdict

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BOARD = ROOT / "leaderboards" / "default"


def board_of(tmp_path: Path, accuracies: dict[str, list[float]]):
    """A board of one group: each method's per-seed test accuracy (its Avg. Gap is the
    distance to retrain's)."""
    records = [
        record(method, seed, {"test_accuracy": value})
        for method, values in accuracies.items()
        for seed, value in enumerate(values)
    ]
    with make_store(tmp_path, records) as store:
        return build_leaderboard(store)


def index_of(board, method: str) -> int:
    return int(board.table.index[board.table["method"] == method][0])


def test_a_method_worse_than_doing_nothing_is_flagged_listed_last_and_never_best(
    tmp_path: Path,
) -> None:
    board = board_of(
        tmp_path,
        {
            "retrain": [0.90, 0.90, 0.90],
            "original": [0.80, 0.80, 0.80],  # Avg. Gap 0.10
            "bad": [0.65, 0.66, 0.67],  # 0.24: worse than doing nothing (not collapsed)
            "good": [0.85, 0.851, 0.852],  # 0.049
            "fine": [0.82, 0.821, 0.822],  # 0.079
        },
    )
    flags = dict(zip(board.table["method"], board.table["flags"], strict=True))
    assert flags == {"retrain": "", "original": "", "bad": WORSE, "good": "", "fine": ""}
    ((_, rows, _),) = list(headline_groups(board))
    assert list(rows["method"]) == ["retrain", "original", "good", "fine", "bad"]
    assert not any(index == index_of(board, "bad") for index, _ in best_cells(board))
    # within the margin (0.5 points) of the original's Avg. Gap: not flagged
    close = board_of(
        tmp_path / "close",
        {"retrain": [0.5] * 3, "original": [0.4] * 3, "near": [0.603] * 3},  # 0.103, 0.1
    )
    assert set(close.table["flags"]) == {""}


def test_a_column_the_original_wins_marks_no_method(tmp_path: Path) -> None:
    accuracies = {"retrain": [0.9] * 3, "a": [0.85, 0.851, 0.852], "b": [0.80, 0.801, 0.802]}
    above = board_of(tmp_path / "above", {**accuracies, "original": [0.95] * 3})
    below = board_of(tmp_path / "below", {**accuracies, "original": [0.70] * 3})
    assert (index_of(below, "a"), "test_accuracy") in best_cells(below)
    assert (index_of(above, "a"), "test_accuracy") not in best_cells(above)


def test_values_tied_up_to_float_dust_mark_nothing(tmp_path: Path) -> None:
    dust = 1e-17
    board = board_of(
        tmp_path,
        {
            "retrain": [0.9] * 3,
            "original": [0.5] * 3,
            "a": [0.7 + dust] * 3,
            "b": [0.7] * 3,
        },
    )
    assert not any(column == "test_accuracy" for _, column in best_cells(board))


def test_one_ranked_method_is_named_with_its_standing_on_every_board(tmp_path: Path) -> None:
    board = board_of(
        tmp_path,
        {"retrain": [0.9] * 3, "original": [0.7] * 3, "only": [0.85, 0.851, 0.852]},
    )
    ((_, rows, _),) = list(headline_groups(board))
    verdict = group_verdict(board, rows)
    assert verdict.startswith("Verdict: best by Avg. Gap %: only 4.9 ± ")
    assert "(original 20.0 ± 0, retrain 0): closer to retrain than doing nothing" in verdict
    assert "(paired t-test over seeds, 95%); the only ranked method." in verdict
    assert verdict in to_markdown(board)
    assert verdict in " ".join(terminal_summary(board).split())  # wrapped there
    worse = board_of(
        tmp_path / "worse",
        {"retrain": [0.9] * 3, "original": [0.85] * 3, "bad": [0.72, 0.73, 0.74]},
    )
    ((_, rows, _),) = list(headline_groups(worse))
    assert group_verdict(worse, rows) == (
        "Verdict: no method is ranked: every one is flagged (bad (worse than original))."
    )


@pytest.fixture(scope="module")
def default_board():
    """The committed default board (317 columns wide before issue 30), read only."""
    from unlearnbench.host.manager import load_registry

    evaluators = load_registry()[0].entries("evaluator")
    declared = declarations(entry.spec for entry in evaluators)
    with ResultStore(DEFAULT_BOARD / "results.sqlite", read_only=True) as store:
        return build_leaderboard(store, declared=lambda: declared)


def test_the_terminal_summary_fits_120_columns_and_keys_the_flags(default_board) -> None:
    text = terminal_summary(default_board)
    assert max(len(line) for line in text.splitlines()) <= WIDTH == 120
    assert "Avg. Gap % ↓" in text and "test accuracy % ↑" in text
    assert text.count("Verdict: best by Avg. Gap %") == 3  # every group answers
    key = " ".join(text.split("flags: collapsed", 1)[1].split())
    assert "worse than original = Avg. Gap more than 0.5 points above original's" in key
    assert "no effect = every forgetting measure within 1 point of original's" in key
    assert "--wide" in text
    wide = terminal_summary(default_board, wide=True)
    assert max(len(line) for line in wide.splitlines()) > WIDTH
    assert "mia fnr gap" in wide and "mia fnr gap" not in text


def test_the_terminal_summary_strips_control_characters(tmp_path: Path) -> None:
    board = board_of(
        tmp_path,
        {"retrain": [0.9] * 2, "original": [0.7] * 2, "evil\x1b[2J\x07": [0.85, 0.86]},
    )
    text = terminal_summary(board)
    assert "\x1b" not in text and "\x07" not in text and "evil[2J" in text


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_suite_without_its_anchors_gets_them_added_and_says_so(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "bare.toml"
    suite.write_text(suite_toml("bare", seeds=(0, 1, 2), methods=("original",)))
    code, _, err = run_cli(["run", str(suite), "--check", "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    assert "no [[methods]] entry 'retrain' (the reference every row is compared with)" in err
    assert "'original'" not in err.split("note:")[-1]  # listed: not added
    assert "3 tasks, 6 cells" in err  # retrain added beside original, 3 seeds
    suite.write_text(suite_toml("bare", seeds=(0, 1, 2), methods=("retrain",)))
    code, _, err = run_cli(["run", str(suite), "--check", "--out", str(tmp_path / "o")], capsys)
    assert code == 0 and "no [[methods]] entry 'original' (doing nothing" in err
    assert "warning" not in err


@pytest.mark.slow
def test_the_added_anchors_fill_the_board(tmp_path: Path, capsys) -> None:
    suite = tmp_path / "bare.toml"
    suite.write_text(suite_toml("bare", seeds=(0, 1, 2), methods=("sisa",)))
    code, out, _ = run_cli(
        ["run", str(suite), "--out", str(tmp_path / "o"), "--executor", "local", "--no-progress"],
        capsys,
    )
    assert code == 0, out
    rows = json.loads((tmp_path / "o" / "leaderboard.json").read_text())["rows"]
    assert {r["method"]: r["seeds"] for r in rows} == {"retrain": 3, "original": 3, "sisa": 3}
    assert "Verdict:" in out


@pytest.mark.parametrize(
    ("seeds", "said"),
    [
        ((0,), "one seed gives no 95% interval"),
        ((0, 1), "2 seeds give 95% intervals too wide"),
        ((0, 1, 2), None),
    ],
)
def test_fewer_than_three_seeds_are_warned_about(tmp_path: Path, capsys, seeds, said) -> None:
    suite = tmp_path / "few.toml"
    suite.write_text(suite_toml("few", seeds=seeds))
    code, _, err = run_cli(["run", str(suite), "--check", "--out", str(tmp_path / "o")], capsys)
    assert code == 0
    if said is None:
        assert "warning" not in err
    else:
        assert f"unlearnbench: warning: {said}" in err and "seeds = 3 or more" in err


LOCAL_PLUGIN = '''
"""A local plugin under development."""
from unlearnbench import MethodSpec, Unlearned, hookimpl


class Noop:
    def fit(self, task, ctx):
        return ctx.original()

    def unlearn(self, model, forget, task, ctx):
        return Unlearned(model=model, state=model, costs={})


class MyPlugin:
    @hookimpl
    def unlearnbench_methods(self):
        return [MethodSpec("my-noop", lambda p: Noop(), description="Does nothing, locally.")]
'''


def test_a_local_plugin_that_is_not_importable_says_it_must_be(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    (tmp_path / "nc_local_plugin.py").write_text(LOCAL_PLUGIN)
    monkeypatch.chdir(tmp_path)  # the file is here, but the command imports nothing from here
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "nc_local_plugin:MyPlugin")
    code, out, err = run_cli(["show", "my-noop"], capsys)
    assert code == 2 and out == ""
    assert "no module named 'nc_local_plugin' on this Python's path" in err
    assert "a local plugin must be importable" in err
    assert "nc_local_plugin.py is in the current folder" in err and "PYTHONPATH=$PWD" in err
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli(["show", "my-noop"], capsys)
    assert code == 2 and "Put the folder that holds it on PYTHONPATH" in err
    # a module that is found but fails inside is not called missing
    (tmp_path / "nc_broken_plugin.py").write_text("import nc_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "nc_broken_plugin")
    code, _, err = run_cli(["list"], capsys)
    assert code == 2 and "No module named 'nc_no_such_dependency'" in err
    assert "on this Python's path" not in err


def test_show_names_a_local_plugin_readably(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "nc_local_plugin.py").write_text(LOCAL_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "nc_local_plugin:MyPlugin")
    code, out, _ = run_cli(["show", "my-noop"], capsys)
    assert code == 0
    first = out.splitlines()[0]
    assert first == (
        "my-noop (method, from plugin 'nc_local_plugin:MyPlugin' (local, UNLEARNBENCH_PLUGINS))"
    )
    assert "in-process" not in out
    code, out, _ = run_cli(["plugins"], capsys)
    assert "nc_local_plugin:MyPlugin local, UNLEARNBENCH_PLUGINS" in out
    monkeypatch.delenv("UNLEARNBENCH_PLUGINS")
    code, out, _ = run_cli(["show", "my-noop", "--plugin", "nc_local_plugin:MyPlugin"], capsys)
    assert "(local, --plugin)" in out.splitlines()[0]


def test_list_keeps_et_al_in_a_description(capsys) -> None:
    from unlearnbench.cli.plugins import summary

    assert summary("SISA (Bourtoule et al. 2021): shards. More.") == (
        "SISA (Bourtoule et al. 2021): shards"
    )
    assert summary("Purchase-100 of Shokri et al. (600 features). Then.") == (
        "Purchase-100 of Shokri et al. (600 features)"
    )
    assert summary("One sentence, e.g. this one. Two.") == "One sentence, e.g. this one"
    code, out, _ = run_cli(["list", "methods"], capsys)
    assert code == 0
    (sisa,) = [line for line in out.splitlines() if line.startswith("  sisa ")]
    assert "SISA (Bourtoule et al. 2021)" in sisa


def test_the_tuning_table_heads_each_column_once_in_the_boards_percent() -> None:
    from unlearnbench.execution.suite import TuningOptions
    from unlearnbench.execution.tuning.studies import StudyResult
    from unlearnbench.execution.tuning.tuned import summary_markdown

    result = StudyResult(
        "s",
        "gan",
        "mnist1d/mlp/random:40/seed 0",
        20,
        1,
        0.0507,
        {"alpha": 0.1072},
        {"alpha": 0.5},
        0.1161,
    )
    text = summary_markdown([result], TuningOptions(max_sample_passes=5e4))
    header, _, row = [line for line in text.splitlines() if line.startswith("|")]
    headers = [h.strip() for h in header.strip("|").split("|")]
    assert len(headers) == len(set(headers)), headers  # no column headed twice
    assert "Avg. Gap % (best)" in headers and "Avg. Gap % (defaults)" in headers
    cells = dict(zip(headers, (c.strip() for c in row.strip("|").split("|")), strict=True))
    assert cells["Avg. Gap % (best)"] == "5.07" and cells["Avg. Gap % (defaults)"] == "11.61"
    assert cells["best params"] == "alpha=0.1072" and cells["default params"] == "alpha=0.5"


def test_leaderboard_screenshot_alone_prints_no_board_and_keeps_plots(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from tests.test_leaderboard import demo_records
    from unlearnbench.reports import screenshot as shot

    taken = []

    def fake(page: Path, target: Path, **_: object) -> Path:
        taken.append(Path(page).read_text(encoding="utf-8"))
        Path(target).write_bytes(b"\x89PNG\r\n\x1a\n")
        return Path(target)

    monkeypatch.setattr(shot, "screenshot", fake)  # no browser needed for what is printed
    with make_store(tmp_path, demo_records()):
        pass
    target = tmp_path / "board.png"
    code, out, err = run_cli(["leaderboard", str(tmp_path), "--screenshot", str(target)], capsys)
    assert code == 0 and out == "" and f"screenshot: {target}" in err
    assert not (tmp_path / "plots").exists() and target.exists()
    assert "<html" in taken[0] and "Verdict:" in taken[0]
    code, out, _ = run_cli(
        ["leaderboard", str(tmp_path), "--screenshot", str(target), "--format", "csv"], capsys
    )
    assert code == 0 and out.startswith("dataset,architecture,method")
    assert not (tmp_path / "plots").exists()


@pytest.mark.slow  # two pytest subprocesses: about a minute on a loaded CPU
def test_the_browser_tests_fail_instead_of_skipping_where_ci_requires_them(tmp_path: Path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "UNLEARNBENCH_REQUIRE_BROWSER": "1", "PATH": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            str(
                ROOT
                / "tests"
                / "test_leaderboard_html.py::test_page_shows_rows_sorts_and_renders_plots"
            ),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:]  # no chromium on this PATH: failed
    assert "UNLEARNBENCH_REQUIRE_BROWSER=1, but this test needs" in done.stdout
    assert "apt-get install -y chromium chromium-driver" in done.stdout
    del env["UNLEARNBENCH_REQUIRE_BROWSER"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
            str(ROOT / "tests" / "test_leaderboard_html.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0 and "4 skipped" in done.stdout, done.stdout[-2000:]
    assert "apt-get install -y chromium chromium-driver" in done.stdout


def readme_method_module():
    """The README's method example, as a module (the way the guide's pages are tested:
    the code block as shown, registered as a plugin)."""
    import re
    import types

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    (source,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "@hookimpl" in b]
    module = types.ModuleType("readme_finetune")
    exec(compile(source, "README.md (method example)", "exec"), module.__dict__)
    return source, module


def test_the_readme_method_example_keeps_to_the_public_api_and_declares_ranges() -> None:
    import ast

    from tests.test_plugin_tutorials import public_modules

    source, module = readme_method_module()
    public = public_modules()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("unlearnbench"):
            assert node.module in public, node.module
    (spec,) = module.unlearnbench_methods()
    assert all(p.minimum is not None for p in spec.params)


def test_the_readme_method_example_forgets_each_deletion_of_a_stream_in_turn(
    make_tiny_task,
) -> None:
    import torch

    from unlearnbench import ForgetRequest
    from unlearnbench.host.manager import load_registry
    from unlearnbench.testing import check_method_contract

    _, module = readme_method_module()
    registry, _ = load_registry(load_entry_points=False, extra_plugins=[module])
    check_method_contract("my-finetune", make_tiny_task, reg=registry)  # a 2-deletion stream

    task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
    trained_on: list[set[int]] = []
    train = ctx.train

    def recording(model, indices, *, exclude=None, **kwargs):
        dropped = set() if exclude is None else set(exclude.tolist())
        trained_on.append(set(indices.tolist()) - dropped)
        return train(model, indices, exclude=exclude, **kwargs)

    ctx.train = recording  # type: ignore[method-assign]
    spec = registry.get("method", "my-finetune")
    method = spec.create({"epochs": 1})
    state = method.fit(task, ctx)
    trained_on.clear()  # the original's training, if it was not cached yet
    first, second = task.forget_steps
    for forget in task.forget_steps:
        state = method.unlearn(state, forget, task, ctx).state
    target = set(task.splits.target.tolist())
    # step 1 trains without the first deletion only: the second is still data
    assert trained_on == [
        target - set(first.tolist()),
        target - set(first.tolist()) - set(second.tolist()),
    ]
    assert torch.equal(torch.sort(state["removed"]).values, torch.sort(task.splits.forget).values)
