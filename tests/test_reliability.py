"""Never lose a result: kill -9, concurrent runs, poisoned caches, divergence, time limits.

The kill and concurrency tests run the real CLI in subprocesses on a tiny
suite; they are marked slow.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.plugins.executor_plugins import ExecutorTestPlugin
from tests.suites import suite_toml, toml_value
from unlearnbench.cli import EXIT_FAILED_CELLS, main
from unlearnbench.execution.cache import ArtifactCache, content_key

ROOT = Path(__file__).resolve().parents[1]

SUITE = suite_toml(
    "rel",
    seeds=[0, 1],
    evaluators=["accuracy", "consistency"],
    splits={"target": 240, "nonmember": 40, "test": 160, "shadow_in": 0, "shadow_out": 0},
    train={"epochs": 4, "batch_size": 32, "lr": 0.002},
    architectures=[{"name": "mlp", "params": {"widths": [24]}}],
    requests=[{"kind": "random", "count": 12}, {"kind": "class", "label": 5}],
)
CELLS = 2 * 2 * 2  # seeds x requests x methods


@pytest.fixture
def with_test_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "tests.plugins.executor_plugins:ExecutorTestPlugin")


def cli(suite: Path, out: Path, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "unlearnbench.cli",
        "run",
        str(suite),
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        *options,
    ]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def store_rows(out: Path) -> tuple[list[tuple], str, list[tuple]]:
    with sqlite3.connect(out / "results.sqlite") as conn:
        cells = conn.execute("SELECT cell_id, status, finished_at FROM cells").fetchall()
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        metrics = conn.execute("SELECT cell_id, name FROM metrics").fetchall()
    return cells, check, metrics


def assert_cache_sound(root: Path) -> None:
    """Every artifact with a checksum matches it and loads without pickled code."""
    for path in root.rglob("*.pt"):
        sidecar = path.with_suffix(".sha256")
        if not sidecar.exists():
            continue  # a crash between the data and its checksum: treated as absent
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == sidecar.read_text().strip(), path
        assert ArtifactCache(root).load(path.stem) is not None, path


def assert_complete(out: Path) -> list[tuple]:
    cells, check, metrics = store_rows(out)
    assert check == "ok"
    assert len(cells) == CELLS and len({c[0] for c in cells}) == CELLS
    assert {c[1] for c in cells} == {"ok"}
    assert len(metrics) == len(set(metrics))
    names_per_cell = {}
    for cell_id, name in metrics:
        names_per_cell.setdefault(cell_id, set()).add(name)
    assert len({frozenset(v) for v in names_per_cell.values()}) == 1  # same metrics everywhere
    assert_cache_sound(out / "cache")
    return cells


def ok_cells(out: Path) -> int:
    try:
        with sqlite3.connect(out / "results.sqlite", timeout=30) as conn:
            return conn.execute("SELECT COUNT(*) FROM cells WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


@pytest.mark.slow
@pytest.mark.parametrize(("executor", "kills"), [("local", 3), ("processes", 1)])
def test_kill_9_at_random_points_loses_no_finished_cell(tmp_path, executor, kills) -> None:
    """Kill the CLI at seeded random points, check, and finally run to completion.

    Each kill lands a random 0-2.5 s after the run has started work (its store
    exists); the last kill waits for a new finished cell first, so that keeping
    finished cells is always put to the test.
    """
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    rng = random.Random(1234)
    kept: dict[str, float] = {}
    options = ["--executor", executor] + (["--workers", "2"] if executor == "processes" else [])
    for round_ in range(kills):
        proc = subprocess.Popen(
            cli(suite, out, *options),
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            started = (out / "results.sqlite").exists()
            if started and (round_ != kills - 1 or ok_cells(out) > len(kept)):
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 2.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cells, check, _ = store_rows(out)
        assert check == "ok"
        assert_cache_sound(out / "cache")
        for cell_id, status, finished_at in cells:
            if cell_id in kept:  # a finished cell is never redone
                assert finished_at == kept[cell_id]
            if status == "ok":
                kept[cell_id] = finished_at
    assert kept, "no kill landed after a finished cell"
    done = subprocess.run(cli(suite, out, *options), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = {cell_id: at for cell_id, _, at in assert_complete(out)}
    assert all(final[c] == at for c, at in kept.items())
    assert f"{len(kept)} already done" in done.stderr


@pytest.mark.slow
def test_two_runs_on_one_folder_at_once(tmp_path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(cli(suite, out), env=env(), stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert_complete(out)
    assert not list((out / "cache").rglob("*.tmp"))  # no half-written artifact left behind
    assert not list(out.rglob("*.lock"))
    # the runs shared the work: each cell was computed by one of them, the other skipped it
    done = [re.search(r"(\d+) cells done, (\d+) already done", e) for e in errors]
    assert all(done), errors
    assert sum(int(m.group(1)) for m in done if m) == CELLS
    assert all(int(m.group(1)) + int(m.group(2)) == CELLS for m in done if m)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + str(Path(os.environ["EVIL_MARKER"])),))


def test_a_malicious_pickle_in_the_cache_is_never_run(tmp_path, monkeypatch) -> None:
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    cache = ArtifactCache(tmp_path / "cache")
    parts = {"artifact": "original", "train_key": "k"}
    key = content_key(parts)
    path = cache.path(key)
    path.parent.mkdir(parents=True)
    data = pickle.dumps({"state_dict": Evil()}, protocol=2)
    path.write_bytes(data)  # with a *valid* checksum: only weights_only stops it
    path.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest())
    built = []

    def build():
        built.append(1)
        return {"state_dict": {"w": torch.ones(2)}}

    value = cache.get_or_build(parts, build)
    assert not marker.exists()
    assert built == [1] and torch.equal(value["state_dict"]["w"], torch.ones(2))
    assert ArtifactCache(tmp_path / "cache").load(key) is not None  # rebuilt and replaced


def test_a_damaged_or_half_written_artifact_is_rebuilt(tmp_path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    parts = {"artifact": "x"}
    key = content_key(parts)
    cache.get_or_build(parts, lambda: {"v": torch.arange(3)})
    path = cache.path(key)
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    fresh = ArtifactCache(tmp_path / "cache")
    assert fresh.get_or_build(parts, lambda: {"v": torch.arange(4)})["v"].numel() == 4
    path.with_suffix(".sha256").unlink()  # a crash between data and checksum
    again = ArtifactCache(tmp_path / "cache")
    assert again.get_or_build(parts, lambda: {"v": torch.arange(5)})["v"].numel() == 5
    assert again.builds == 1


def test_concurrent_builders_build_an_artifact_once(tmp_path) -> None:
    parts = {"artifact": "slow"}
    calls = []

    def build():
        calls.append(1)
        time.sleep(0.3)
        return {"v": torch.ones(1)}

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(ArtifactCache(tmp_path).get_or_build(parts, build))
        )
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(results) == 3


def suite_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text, encoding="utf-8")
    return path


def one_seed(text: str) -> str:
    return text.replace("seeds = [0, 1]", "seeds = [0]").replace(
        '[[requests]]\nkind = "class"\nlabel = 5\n', ""
    )


def test_diverging_training_fails_its_cells_saying_so(tmp_path, capsys) -> None:
    text = one_seed(SUITE).replace("lr = 0.002", "lr = 1e30")
    out = tmp_path / "out"
    code = main(["run", str(suite_file(tmp_path, text)), "--out", str(out), "--no-progress"])
    assert code == EXIT_FAILED_CELLS
    assert "diverged" in capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT status, error FROM cells").fetchall()
    assert len(rows) == 2
    assert all(s == "failed" and "training diverged" in e and "train.lr" in e for s, e in rows)


def test_a_cell_past_its_time_limit_is_stopped(tmp_path, capsys, with_test_plugin) -> None:
    text = one_seed(SUITE).replace(
        '[[methods]]\nname = "original"',
        '[[methods]]\nname = "sleepy"\nparams = { seconds = 60.0 }\n\n'
        '[[methods]]\nname = "original"',
    )
    out = tmp_path / "out"
    start = time.monotonic()
    code = main(
        [
            "run",
            str(suite_file(tmp_path, text)),
            "--out",
            str(out),
            "--no-progress",
            "--cell-timeout",
            "1.5",
        ]
    )
    assert time.monotonic() - start < 50
    assert code == EXIT_FAILED_CELLS
    assert "1 timed out" in capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = dict(conn.execute("SELECT method, status FROM cells").fetchall())
        error = conn.execute("SELECT error FROM cells WHERE method = 'sleepy'").fetchone()[0]
    assert rows == {"retrain": "ok", "sleepy": "timeout", "original": "ok"}
    assert "time limit of 1.5 s" in error


def test_results_carry_full_provenance(tmp_path) -> None:
    out = tmp_path / "out"
    text = one_seed(SUITE)
    assert main(["run", str(suite_file(tmp_path, text)), "--out", str(out), "--no-progress"]) == 0
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT method, seed, config, provenance FROM cells").fetchall()
    assert len(rows) == 2
    for method, seed, config_text, provenance_text in rows:
        prov, config = json.loads(provenance_text), json.loads(config_text)
        assert prov["torch_version"] == torch.__version__
        assert prov["libraries"]["numpy"] == np.__version__  # the data's generator
        assert prov["libraries"]["scipy"] and prov["libraries"]["nolds"]
        assert prov["device"] == "cpu" and prov["executor"] == "local"
        assert prov["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # e.g. AVX2
        assert (
            prov["git_commit"]
            == subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip()
        )
        assert prov["seed"] == seed == config["seed"] == 0
        plugins = prov["plugins"]
        for key in (
            "dataset:digits",
            "architecture:mlp",
            f"method:{method}",
            "method:retrain",
            "evaluator:accuracy",
            "evaluator:consistency",
        ):
            assert plugins[key]["distribution"] == "unlearnbench" and plugins[key]["version"]
        # the full resolved configuration, defaults filled in
        assert config["method"]["name"] == method
        assert config["train"]["epochs"] == 4 and "momentum" in config["train"]
        assert config["architecture"]["params"]["widths"] == [24]
        assert config["request"]["count"] == 12 and config["splits"]["target"] == 240


def test_a_finished_cell_is_never_overwritten(tmp_path) -> None:
    from unlearnbench.execution.store import CellRecord, MetricValue, ResultStore

    def record(status: str, value: float) -> CellRecord:
        return CellRecord(
            cell_id="c1",
            task_key="t",
            dataset="d",
            architecture="a",
            method="m",
            request="r",
            seed=0,
            status=status,
            config={},
            metrics=(MetricValue("test_accuracy", value, "higher", "fraction"),),
            error=None if status == "ok" else "boom",
        )

    with ResultStore(tmp_path / "results.sqlite") as store:
        assert store.write(record("failed", 0.0))
        assert store.write(record("ok", 0.5))  # a failed attempt is replaced
        assert not store.write(record("timeout", 0.0))  # an ok one is not
        assert not store.write(record("ok", 0.9))  # nor counted twice
        assert [(c["status"]) for c in store.cells()] == ["ok"]
        assert [r["value"] for r in store.metric_rows()] == [0.5]


def test_atomic_writes_get_the_usual_file_mode(tmp_path) -> None:
    import os
    import stat

    from unlearnbench._files import atomic_write_bytes

    target = tmp_path / "board.md"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


# ------------------------------------------------ artifacts that are not what they say

TIMING = ("seconds", "speedup", "speed_up", "time")


def quality_metrics(out: Path) -> dict[tuple[str, str], float | None]:
    """(cell, metric) -> value for every metric that is not a timing."""
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT cell_id, name, value FROM metrics").fetchall()
    return {(c, n): v for c, n, v in rows if not any(t in n for t in TIMING)}


def run_again_from_scratch(suite: Path, out: Path) -> None:
    """Drop the results (not the cache) and run the suite again; it must succeed."""
    for path in out.glob("results.sqlite*"):
        path.unlink()
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0


def artifacts(out: Path, name: str) -> list[Path]:
    """The cached artifacts of one kind (``original``, ``reference``), by their descriptions."""
    found = []
    for description in sorted((out / "cache").rglob("*.json")):
        if json.loads(description.read_text())["artifact"] == name:
            found.append(description.with_suffix(".pt"))
    return found


def plant(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` with a checksum rewritten to match."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    target.with_suffix(".sha256").write_text(hashlib.sha256(data).hexdigest())


def test_another_seeds_model_in_an_artifacts_place_is_rebuilt(tmp_path, caplog) -> None:
    text = one_seed(SUITE).replace("seeds = [0]", "seeds = [0, 1]")
    suite, out = suite_file(tmp_path, text), tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    clean = quality_metrics(out)
    first, second = artifacts(out, "original")  # one per seed
    first_bytes = first.read_bytes()
    plant(second, first)  # each seed's original now holds the other seed's model
    second.write_bytes(first_bytes)
    second.with_suffix(".sha256").write_text(hashlib.sha256(first_bytes).hexdigest())
    run_again_from_scratch(suite, out)
    assert quality_metrics(out) == clean
    assert "is not what its name says" in caplog.text


def test_a_different_artifact_in_the_originals_place_is_rebuilt(tmp_path) -> None:
    """Another kind of artifact (a SISA ensemble, say) copied over the original: rebuilt,
    not a KeyError."""
    suite, out = suite_file(tmp_path, one_seed(SUITE)), tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    clean = quality_metrics(out)
    [original] = artifacts(out, "original")
    other = ArtifactCache(tmp_path / "elsewhere")
    parts = {"artifact": "sisa", "params": {"shards": 2}}
    other.get_or_build(parts, lambda: {"shards": torch.zeros(2)})
    plant(other.path(content_key(parts)), original)
    run_again_from_scratch(suite, out)
    assert quality_metrics(out) == clean


def test_a_stale_artifact_lacking_a_key_is_rebuilt_not_a_lasting_failure(tmp_path) -> None:
    """Code that now reads a key an older build did not store: rebuilt within the run."""
    suite, out = suite_file(tmp_path, one_seed(SUITE)), tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    clean = quality_metrics(out)
    [original] = artifacts(out, "original")
    parts = json.loads(original.with_suffix(".json").read_text())
    ArtifactCache(out / "cache").save(original.stem, {"seconds": 1.0}, parts)  # no state_dict
    run_again_from_scratch(suite, out)
    assert quality_metrics(out) == clean


def test_the_cache_checks_each_artifacts_description(tmp_path) -> None:
    from unlearnbench.execution.cache import StaleArtifactError

    cache = ArtifactCache(tmp_path)
    asked, other = {"artifact": "original", "seed": 0}, {"artifact": "sisa", "seed": 0}
    cache.get_or_build(other, lambda: {"shards": torch.zeros(2)})
    plant(cache.path(content_key(other)), cache.path(content_key(asked)))
    fresh = ArtifactCache(tmp_path)
    assert fresh.load(content_key(asked)) is None  # checksum fine, description wrong
    value = fresh.get_or_build(asked, lambda: {"state_dict": torch.ones(1)})
    assert fresh.builds == 1 and torch.equal(value["state_dict"], torch.ones(1))
    # a value whose description is right but which lacks a key the caller reads
    stale = {"artifact": "original", "seed": 1}
    cache.save(content_key(stale), {"seconds": 0.0}, stale)
    loaded = ArtifactCache(tmp_path).get_or_build(stale, lambda: {"state_dict": torch.ones(1)})
    with pytest.raises(StaleArtifactError):
        loaded["state_dict"]
    again = ArtifactCache(tmp_path)
    assert "state_dict" in again.get_or_build(stale, lambda: {"state_dict": torch.ones(1)})
    assert again.builds == 1


# ------------------------------------------------ the task's shared set-up is timed


def test_the_set_up_limit_is_twice_the_cell_limit_and_at_least_a_minute() -> None:
    from unlearnbench.execution.limits import setup_limit
    from unlearnbench.execution.task_runner import Runner

    assert setup_limit(None) is None
    assert setup_limit(1.0) == 60.0 and setup_limit(100.0) == 200.0
    runner = Runner(None, None, torch.device("cpu"), cell_timeout=100.0)  # type: ignore[arg-type]
    assert runner.setup_timeout == 200.0


def test_a_set_up_past_its_limit_times_out_the_tasks_cells(tmp_path, capsys, monkeypatch) -> None:
    """``epochs = 1000000000`` passes the suite check; its set-up must still end."""
    import unlearnbench.execution.limits

    monkeypatch.setattr(unlearnbench.execution.limits, "SETUP_LIMIT_MIN_S", 0.0)  # 2 x 0.5 s
    text = one_seed(SUITE).replace("epochs = 4", "epochs = 1000000000")
    out = tmp_path / "out"
    start = time.monotonic()
    suite = suite_file(tmp_path, text)
    code = main(["run", str(suite), "--out", str(out), "--no-progress", "--cell-timeout", "0.5"])
    assert time.monotonic() - start < 30
    assert code == EXIT_FAILED_CELLS
    assert "2 timed out" in capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute("SELECT status, error FROM cells").fetchall()
    assert len(rows) == 2
    for status, error in rows:
        assert status == "timeout"
        assert "shared set-up" in error and "time limit of 1 s" in error


@pytest.mark.slow
def test_a_stuck_set_up_loses_its_worker_on_the_processes_executor(tmp_path) -> None:
    """A reference run stuck in C (deaf to SIGALRM): only killing the worker stops it."""
    from unlearnbench.execution.context import TaskContext
    from unlearnbench.execution.executors import ProcessExecutor, run_plan
    from unlearnbench.execution.plan import build_plan
    from unlearnbench.execution.store import ResultStore
    from unlearnbench.execution.suite import load_suite
    from unlearnbench.execution.task_runner import Runner
    from unlearnbench.host.manager import RegistryFactory, load_registry

    text = one_seed(SUITE).replace(
        'reference = "retrain"',
        'reference = { name = "sleepy", params = { seconds = 120.0, deaf = true } }',
    )
    registry, _ = load_registry(load_entry_points=False, extra_plugins=[ExecutorTestPlugin()])
    plan = build_plan(load_suite(suite_file(tmp_path, text)), registry)
    factory = RegistryFactory(
        load_entry_points=False,
        extra_plugins=("tests.plugins.executor_plugins:ExecutorTestPlugin",),
    )
    cache = ArtifactCache(tmp_path / "cache")
    runner = Runner(registry, cache, torch.device("cpu"), cell_timeout=1.0, setup_timeout=2.0)
    # the original is trained here, so that the worker's set-up is stuck at once
    # (training it there could itself run past the limit, and be stopped in-process)
    TaskContext(runner.build_task(plan.tasks[0]), cache).original()
    executor = ProcessExecutor(runner, factory, str(cache.root), workers=1)
    executor.kill_grace = 0.5
    start = time.monotonic()
    with ResultStore(tmp_path / "results.sqlite") as store:
        summary = run_plan(executor, plan, store, progress=False)
        rows = [(c["status"], c["error"]) for c in store.cells()]
    assert time.monotonic() - start < 60
    assert summary.timeout == 2 and summary.ok == 0 and len(rows) == 2
    for status, error in rows:
        assert status == "timeout" and "shared set-up" in error and "killed" in error


# ------------------------------------------------ locks, temporaries, shared folders


def test_a_file_lock_stays_exclusive_while_its_file_is_removed(tmp_path) -> None:
    """Holders remove the lock file on release; waiters must never both hold it."""
    from unlearnbench.execution.cache import FileLock

    counter = tmp_path / "counter"
    counter.write_text("0")
    inside = []

    def work() -> None:
        for _ in range(40):
            with FileLock(tmp_path / "x.lock"):
                inside.append(1)
                assert len(inside) == 1, "two holders at once"
                value = int(counter.read_text())
                time.sleep(0.0005)
                counter.write_text(str(value + 1))
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "160"
    assert not (tmp_path / "x.lock").exists()
    held = FileLock(tmp_path / "y.lock")
    assert held.acquire(blocking=False)
    assert not FileLock(tmp_path / "y.lock").acquire(blocking=False)
    held.release()


def test_opening_a_cache_removes_stale_temporaries_and_unheld_locks(tmp_path) -> None:
    from unlearnbench.execution.cache import FileLock

    cache = ArtifactCache(tmp_path)
    cache.get_or_build({"artifact": "a"}, lambda: {"v": torch.ones(1)})
    folder = cache.path(content_key({"artifact": "a"})).parent
    assert not list(tmp_path.rglob("*.lock")) and not list(tmp_path.rglob("*.tmp"))
    stale, fresh = folder / ".k.pt.abc.tmp", folder / ".k.pt.def.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    dead = folder / "dead.lock"  # left by a process killed while building
    dead.touch()
    live = FileLock(folder / "live.lock")
    assert live.acquire()
    ArtifactCache(tmp_path)
    assert not stale.exists() and fresh.exists()  # a live writer's file is kept
    assert not dead.exists() and live.path.exists()  # so is a held lock
    live.release()


def test_two_runs_on_one_folder_compute_each_cell_once(tmp_path, with_test_plugin) -> None:
    from tests.plugins import executor_plugins

    text = (
        one_seed(SUITE).replace(
            '[[methods]]\nname = "original"',
            '[[methods]]\nname = "counting"\nparams = { seconds = 1.0 }',
        )
        + '\n[[requests]]\nkind = "class"\nlabel = 5\n'
    )
    suite, out = suite_file(tmp_path, text), tmp_path / "out"
    executor_plugins.COUNTED.clear()
    codes: list[int] = []
    argv = ["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]
    threads = [threading.Thread(target=lambda: codes.append(main(argv))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [0, 0]
    assert sorted(executor_plugins.COUNTED) == ["class:5", "random:12"]  # once per task
    with sqlite3.connect(out / "results.sqlite") as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM cells")]
    assert statuses == ["ok"] * 6  # 2 tasks x retrain, counting and original (added by run)
    assert not list(out.rglob("*.lock")) and not list(out.rglob("*.tmp"))
    assert not (out / ".locks").exists()


def _open_store_at_once(path: Path, barrier: Any, results: Any) -> None:
    from unlearnbench.execution.store import ResultStore, StoreError

    barrier.wait()
    try:
        with ResultStore(path) as store:
            store.finished()
        results.put("ok")
    except StoreError as exc:
        results.put(str(exc))


def test_runs_creating_one_store_at_once_all_open_it(tmp_path) -> None:
    """Two runs started together on a new folder race to switch its store to WAL
    mode; SQLite answers the loser "database is locked" at once. Measured before the
    retry: 9-15 of 180 simultaneous opens failed (one CI run of
    test_two_runs_on_one_folder_at_once too)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    failures = []
    for trial in range(10):
        path = tmp_path / f"t{trial}" / "results.sqlite"
        barrier, results = ctx.Barrier(6), ctx.Queue()
        procs = [
            ctx.Process(target=_open_store_at_once, args=(path, barrier, results)) for _ in range(6)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        failures += [r for r in (results.get(timeout=5) for _ in procs) if r != "ok"]
    assert failures == []


# --- isolation: a buggy plugin cannot change anyone else's numbers (issue 26) -------------

HOSTILE = "tests.plugins.hostile_plugins:HostilePlugin"
ISOLATION = suite_toml(
    "iso",
    seeds=[0, 1],
    splits={"target": 240, "nonmember": 40, "test": 160, "shadow_in": 0, "shadow_out": 0},
    train={"epochs": 3, "batch_size": 32, "lr": 0.003},
    architectures=[{"name": "mlp", "params": {"widths": [24]}}],
    methods=["retrain", "original"],
    requests=[{"kind": "random", "count": 12}],
)


def _test_accuracies(out: Path) -> dict[tuple[str, int], float]:
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT c.method, c.seed, m.value FROM metrics m JOIN cells c USING (cell_id) "
            "WHERE m.name = 'test_accuracy' AND c.status = 'ok'"
        ).fetchall()
    return {(method, seed): value for method, seed, value in rows}


def _run_iso(tmp_path: Path, name: str, text: str, out: Path | None = None) -> int:
    suite = tmp_path / f"{name}.toml"
    suite.write_text(text, encoding="utf-8")
    out = out or tmp_path / name
    args = ["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu"]
    return main([*args, "--executor", "local", "--threads-per-worker", "1"])


@pytest.mark.parametrize(
    "params", [{"where": "unlearn"}, {"where": "fit"}, {"where": "fit", "cache": True}]
)
def test_a_method_writing_into_the_task_fails_alone(tmp_path, capsys, monkeypatch, params) -> None:
    """A method that writes into task.x / task.y fails its cell, naming itself; the
    later cells (the next seed's reference and original) score what a clean run
    scores, and a clean run into the same folder reads no poisoned artifact. Before:
    its cell was ok and a later original scored 8% (clean: 42.5%)."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", HOSTILE)
    assert _run_iso(tmp_path, "clean", ISOLATION) == 0
    clean = _test_accuracies(tmp_path / "clean")
    hostile = ISOLATION.replace(
        '[[methods]]\nname = "original"',
        f'[[methods]]\nname = "poison_data"\nparams = {toml_value(params)}\n\n'
        '[[methods]]\nname = "original"',
    )
    assert _run_iso(tmp_path, "hostile", hostile) == EXIT_FAILED_CELLS
    err = capsys.readouterr().err
    assert "method 'poison_data' changed the task's shared data in place" in err
    assert "plugin 'hostile'" in err
    with sqlite3.connect(tmp_path / "hostile" / "results.sqlite") as conn:
        status = dict(conn.execute("SELECT method || seed, status FROM cells").fetchall())
    assert status == {
        f"{m}{s}": "failed" if m == "poison_data" else "ok"
        for m in ("retrain", "poison_data", "original")
        for s in (0, 1)
    }
    assert _test_accuracies(tmp_path / "hostile") == clean
    # the same folder, without the hostile method: nothing poisoned was cached
    assert _run_iso(tmp_path, "again", ISOLATION, out=tmp_path / "hostile") == 0
    assert _test_accuracies(tmp_path / "hostile") == clean


def test_an_evaluator_cannot_change_the_models_the_next_one_sees(tmp_path, monkeypatch) -> None:
    """An evaluator zeroing its models ran before ``accuracy``, which then saw zeroed
    models (7.5% for 42.5%), and the next cell's original was the zeroed one."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", HOSTILE)
    assert _run_iso(tmp_path, "clean", ISOLATION) == 0
    zeroing = ISOLATION.replace(
        'evaluators = ["accuracy"]', 'evaluators = ["zero_models", "accuracy"]'
    )
    assert _run_iso(tmp_path, "zeroing", zeroing) == 0
    assert _test_accuracies(tmp_path / "zeroing") == _test_accuracies(tmp_path / "clean")


def test_an_artifact_built_from_changed_data_is_never_cached(tmp_path) -> None:
    """The guard checks the task before an artifact built in a cell is saved, so a
    method that writes into the data and then trains a cached model leaves no file
    (before: the poisoned model was saved, and read by later runs)."""
    from unlearnbench.execution.isolation import TaskDataChanged
    from unlearnbench.testing.contracts import make_task

    task, ctx = make_task(tmp_path / "cache")

    def build() -> dict[str, Any]:
        task.x.add_(1.0)
        return {"value": torch.zeros(1)}

    changed = pytest.raises(TaskDataChanged, match=r"method 'bad'.*cached artifact 'poisoned'")
    with changed, ctx.guard.call("method", "bad"):
        ctx.cached("poisoned", {}, build)
    assert not any((tmp_path / "cache").rglob("*.pt"))


def test_the_guard_sees_every_shared_tensor_of_a_task(tmp_path) -> None:
    from unlearnbench.execution.isolation import TaskDataChanged, TaskGuard
    from unlearnbench.testing.contracts import make_task

    task, _ = make_task(tmp_path / "cache")
    for change in (
        lambda: task.y.__setitem__(0, task.y[0] + 1),
        lambda: task.splits.test.__setitem__(0, task.splits.test[1]),
        lambda: task.forget_steps[0].__setitem__(0, task.splits.test[0]),
        lambda: task.x.numpy().__setitem__((0, 0), 99.0),  # past torch's version counter
    ):
        guard = TaskGuard(task)
        change()
        with pytest.raises(TaskDataChanged, match="evaluator 'e'"):
            guard.check("evaluator", "e")


def test_a_cell_that_keeps_the_alarm_out_is_not_recorded_ok(tmp_path, capsys, monkeypatch):
    """On the local executor a plugin catching BaseException ran past --cell-timeout and
    was recorded ok; now the cell is a timeout, naming the executor that enforces it."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", HOSTILE)
    text = one_seed(SUITE).replace(
        '[[methods]]\nname = "original"',
        '[[methods]]\nname = "stubborn"\nparams = { seconds = 2.5 }\n\n'
        '[[methods]]\nname = "original"',
    )
    out = tmp_path / "out"
    args = ["run", str(suite_file(tmp_path, text)), "--out", str(out), "--no-progress"]
    assert main([*args, "--executor", "local", "--cell-timeout", "1"]) == EXIT_FAILED_CELLS
    assert "1 timed out" in capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = dict(conn.execute("SELECT method, status FROM cells").fetchall())
        error = conn.execute("SELECT error FROM cells WHERE method = 'stubborn'").fetchone()[0]
    assert rows == {"retrain": "ok", "stubborn": "timeout", "original": "ok"}
    assert "past its time limit of 1 s" in error and "--executor processes" in error


def test_the_on_device_checksum_sees_changed_and_moved_values(monkeypatch) -> None:
    """The GPU fingerprint (run here on the CPU, in small chunks)."""
    from unlearnbench.execution import isolation

    monkeypatch.setattr(isolation, "CHUNK", 7)
    x = torch.arange(40, dtype=torch.float32)

    def digest(t: torch.Tensor) -> str:
        return isolation.device_checksum(t.reshape(-1).view(torch.uint8))

    base = digest(x)
    assert digest(x.clone()) == base
    changed, moved = x.clone(), x.clone()
    changed[13] += 1
    moved[[3, 30]] = moved[[30, 3]]
    assert digest(changed) != base and digest(moved) != base
    assert isolation.device_checksum(torch.tensor([1, 2, 3], dtype=torch.uint8)) != (
        isolation.device_checksum(torch.tensor([1, 3, 2], dtype=torch.uint8))
    )
