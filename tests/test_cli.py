"""The CLI's read-only commands."""

from __future__ import annotations

import subprocess
import sys

from unlearnbench.cli import main


def test_list_everything(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "digits",
        "mnist1d",
        "mlp",
        "lenet5",
        "cnn1d",
        "retrain",
        "original",
        "accuracy",
        "consistency",
        "time",
    ):
        assert f"  {name} " in out


def test_list_one_kind(capsys) -> None:
    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("methods:") and "digits" not in out


def test_plugins_lists_distribution_and_version(capsys) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "retrain" in out and "unlearnbench 0.1.0" in out


def test_show_prints_parameters_and_metrics(capsys) -> None:
    assert main(["show", "mnist1d"]) == 0
    out = capsys.readouterr().out
    assert "samples (int, default 4000)" in out
    assert main(["show", "accuracy"]) == 0
    assert "test_accuracy (higher is better" in capsys.readouterr().out


def test_show_unknown_suggests(capsys) -> None:
    assert main(["show", "retrian"]) == 2
    assert "Did you mean 'retrain'" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "unlearnbench.cli", "list", "datasets"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "digits" in out.stdout


def test_the_console_command_runs_atexit_handlers_and_keeps_the_exit_code(tmp_path) -> None:
    """``console_main`` skips the interpreter's teardown, not the ``atexit`` handlers,
    its output or its exit status (2 for a missing suite file)."""
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('handler ran', flush=True))\n"
        "from unlearnbench.cli import console_main\n"
        "sys.argv = ['unlearnbench', 'run', sys.argv[1]]\n"
        "console_main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "handler ran" in done.stdout
    assert "missing.toml" in done.stderr
