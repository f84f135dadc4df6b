"""``--plugin module:object`` registers a plugin for one command, as UNLEARNBENCH_PLUGINS does."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import write
from tests.suites import NO_SHADOW_SPLITS, suite_toml
from unlearnbench.cli import EXIT_OK, EXIT_USAGE, main

FIXTURE = "tests.plugins.fixture_plugins:FixturePlugin"


@pytest.fixture(autouse=True)
def no_local_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only --plugin may bring the fixture plugin in."""
    monkeypatch.delenv("UNLEARNBENCH_PLUGINS", raising=False)


def test_a_plugin_given_with_the_option_is_listed_and_shown(capsys) -> None:
    assert main(["list", "datasets"]) == EXIT_OK
    assert "blobs" not in capsys.readouterr().out
    assert main(["list", "datasets", "--plugin", FIXTURE]) == EXIT_OK
    listed = capsys.readouterr().out
    assert "  blobs " in listed and "[fixture]" in listed
    assert main(["show", "exploding", "--plugin", FIXTURE]) == EXIT_OK
    assert capsys.readouterr().out.startswith("exploding (method, from plugin 'fixture'")


@pytest.mark.parametrize("executor", [["--executor", "local"], ["--workers", "1"]])
def test_a_plugin_given_with_the_option_runs(tmp_path: Path, capsys, executor) -> None:
    """In this process and in worker processes (which load it by name, as the parent)."""
    text = suite_toml("blobs", datasets=["blobs"], splits={**NO_SHADOW_SPLITS, "test": 50})
    suite, out = write(tmp_path / "suite.toml", text), tmp_path / "out"
    args = ["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main([*args, *executor]) == EXIT_USAGE
    assert "unknown dataset 'blobs'" in capsys.readouterr().err
    assert main([*args, *executor, "--plugin", FIXTURE]) == EXIT_OK
    with (out / "leaderboard.csv").open() as handle:
        assert {row["dataset"] for row in csv.DictReader(handle)} == {"blobs"}


@pytest.mark.parametrize(
    ("plugin", "says"),
    [
        (
            "no_such_module:Plugin",
            "local plugin 'no_such_module:Plugin' in --plugin: no module named 'no_such_module'",
        ),
        ("tests.plugins.fixture_plugins:Nothing", "cannot be loaded: AttributeError"),
        ("not a name", "local plugin 'not a name' in --plugin is not a module or module:object"),
        ("json", "local plugin 'json' (--plugin) implements no unlearnbench hook"),
    ],
)
@pytest.mark.parametrize("command", [["list"], ["show", "retrain"], ["run"], ["tune", "x.toml"]])
def test_a_bad_plugin_option_is_one_line_and_exit_2(capsys, plugin, says, command) -> None:
    assert main([*command, "--plugin", plugin]) == EXIT_USAGE
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("unlearnbench: error: ") and says in line
    assert "--plugin" in line and captured.out == ""
