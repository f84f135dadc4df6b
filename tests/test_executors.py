"""Executors: same metrics everywhere, workers x threads within the cores, hard limits."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
import torch

from tests.plugins.executor_plugins import ExecutorTestPlugin
from tests.suites import suite_toml
from unlearnbench.cli import main
from unlearnbench.execution import devices as device_module
from unlearnbench.execution.cache import ArtifactCache
from unlearnbench.execution.devices import plan_workers
from unlearnbench.execution.executors import ProcessExecutor, run_plan
from unlearnbench.execution.executors.processes import _tell_to_stop
from unlearnbench.execution.plan import build_plan
from unlearnbench.execution.run import prepare_run
from unlearnbench.execution.store import ResultStore
from unlearnbench.execution.suite import load_suite
from unlearnbench.execution.task_runner import Runner
from unlearnbench.host.manager import RegistryFactory, load_registry

# two tasks (random and class requests) that share one trained original
SUITE = suite_toml(
    "exec",
    evaluators=["accuracy", "consistency"],
    splits={"target": 240, "nonmember": 40, "test": 160, "shadow_in": 0, "shadow_out": 0},
    train={"epochs": 3, "batch_size": 32, "lr": 0.002},
    architectures=[{"name": "mlp", "params": {"widths": [24]}}],
    requests=[{"kind": "random", "count": 12}, {"kind": "class", "label": 5}],
)


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """`run --threads-per-worker` sets this process's torch threads: put them back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


TIMING = ("seconds", "speedup", "speed_up", "time")


def quality_metrics(out: Path) -> dict[tuple[str, str], float | None]:
    """(cell, metric) -> value for every metric that is not a timing."""
    with sqlite3.connect(out / "results.sqlite") as conn:
        rows = conn.execute(
            "SELECT c.cell_id, m.name, m.value FROM metrics m JOIN cells c USING (cell_id)"
        ).fetchall()
    return {(c, n): v for c, n, v in rows if not any(t in n for t in TIMING)}


def cells(out: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(out / "results.sqlite") as conn:
        return conn.execute("SELECT cell_id, status, provenance FROM cells").fetchall()


def run_cli(tmp_path: Path, name: str, *options: str) -> Path:
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    out = tmp_path / name
    code = main(
        ["run", str(suite), "--out", str(out), "--no-progress", "--device", "cpu", *options]
    )
    assert code == 0
    return out


@pytest.mark.parametrize(
    ("cores", "workers", "threads", "expected"),
    [
        (8, 0, 0, (8, 1)),
        (8, 2, 0, (2, 4)),
        (8, 2, 8, (2, 4)),  # 2 x 8 would oversubscribe: clamped
        (8, 3, 0, (3, 2)),
        (2, 16, 0, (2, 1)),  # more workers than cores: clamped
        (2, 2, 1, (2, 1)),
    ],
)
def test_workers_times_threads_never_exceed_the_cores(
    monkeypatch, cores, workers, threads, expected
) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: cores)
    got_workers, got_threads, devices = plan_workers(torch.device("cpu"), workers, threads)
    assert (got_workers, got_threads) == expected
    assert got_workers * got_threads <= cores
    assert devices == ["cpu"] * got_workers


def test_one_worker_per_gpu(monkeypatch) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: 16)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    workers, threads, devices = plan_workers(torch.device("cuda"), 0, 0)
    assert workers == 4 and threads == 4
    assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    workers, _, devices = plan_workers(torch.device("cuda"), 6, 0)
    assert devices == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]


@pytest.mark.slow
def test_processes_executor_gives_the_local_metrics(tmp_path) -> None:
    # torch's CPU kernels sum in an order that depends on the thread count, so
    # executors agree exactly at equal threads per cell (here 1)
    local = run_cli(tmp_path, "local", "--threads-per-worker", "1")
    procs = run_cli(
        tmp_path, "procs", "--executor", "processes", "--workers", "2", "--threads-per-worker", "1"
    )
    expected = quality_metrics(local)
    assert expected and any(n == "test_accuracy" for _, n in expected)
    assert quality_metrics(procs) == expected
    rows = cells(procs)
    assert len(rows) == 4 and {s for _, s, _ in rows} == {"ok"}
    provenance = [json.loads(p) for _, _, p in rows]
    assert {p["executor"] for p in provenance} == {"processes"}
    assert all(p["torch_threads"] == 1 for p in provenance)


@pytest.mark.slow
def test_ray_executor_gives_the_local_metrics(tmp_path) -> None:
    pytest.importorskip("ray")
    local = run_cli(tmp_path, "local", "--threads-per-worker", "1")
    on_ray = run_cli(tmp_path, "ray", "--executor", "ray", "--threads-per-worker", "1")
    assert quality_metrics(on_ray) == quality_metrics(local)
    provenance = [json.loads(p) for _, _, p in cells(on_ray)]
    assert len(provenance) == 4 and {p["executor"] for p in provenance} == {"ray"}
    assert all(p["torch_threads"] == 1 for p in provenance)


def stuck_cell_run(tmp_path: Path, make_executor, extra: str = "") -> dict:
    """Run retrain, a sleeper deaf to SIGALRM (stuck in C), ``extra`` and original; 1 s limit."""
    suite_path = tmp_path / "suite.toml"
    text = SUITE.replace(
        '[[methods]]\nname = "original"',
        '[[methods]]\nname = "sleepy"\nparams = { seconds = 120.0, deaf = true }\n\n'
        + extra
        + '[[methods]]\nname = "original"',
    ).replace('[[requests]]\nkind = "class"\nlabel = 5\n', "")
    suite_path.write_text(text, encoding="utf-8")
    registry, _ = load_registry(load_entry_points=False, extra_plugins=[ExecutorTestPlugin()])
    plan = build_plan(load_suite(suite_path), registry)
    factory = RegistryFactory(
        load_entry_points=False,
        extra_plugins=("tests.plugins.executor_plugins:ExecutorTestPlugin",),
    )
    with ResultStore(tmp_path / "results.sqlite") as store:
        cache = ArtifactCache(tmp_path / "cache")
        runner = Runner(registry, cache, torch.device("cpu"), cell_timeout=1.0)
        executor = make_executor(runner, factory, str(cache.root.resolve()))
        executor.kill_grace = 0.5
        summary = run_plan(executor, plan, store, progress=False)
        status = {c["method"]: (c["status"], c["error"]) for c in store.cells()}
    assert summary.timeout == 1 and summary.ok == 2
    assert status["original"][0] == "ok" and status["retrain"][0] == "ok"
    assert status["sleepy"][0] == "timeout"
    return status


@pytest.mark.slow
def test_stuck_and_crashing_cells_lose_their_worker_and_the_rest_goes_on(tmp_path) -> None:
    status = stuck_cell_run(
        tmp_path,
        lambda runner, factory, root: ProcessExecutor(runner, factory, root, workers=1),
        extra='[[methods]]\nname = "crashing"\n\n',
    )
    assert "killed and replaced" in status["sleepy"][1]
    assert status["crashing"] == (
        "failed",
        "the worker process running this cell died (exit code 9)",
    )


@pytest.mark.slow
def test_a_stuck_cell_on_ray_is_cancelled_and_the_rest_goes_on(tmp_path) -> None:
    pytest.importorskip("ray")
    from unlearnbench.execution.executors import RayExecutor

    status = stuck_cell_run(
        tmp_path, lambda runner, factory, root: RayExecutor(runner, factory, root, num_cpus=1)
    )
    assert "Ray worker was killed" in status["sleepy"][1]


FOUR_TASKS = SUITE + (
    '\n[[requests]]\nkind = "random"\ncount = 6\n\n[[requests]]\nkind = "class"\nlabel = 3\n'
)


def auto_choice(tmp_path: Path, capsys, suite: str, *options: str) -> str:
    """The ``executor: ...`` line of ``run --check`` with the default executor (auto)."""
    path = tmp_path / "suite.toml"
    path.write_text(suite, encoding="utf-8")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--device", "cpu", "--check", *options]) == 0
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("executor:")]
    return line


@pytest.mark.parametrize(
    ("cores", "suite", "expected"),
    [
        (8, "four", "executor: processes (4 tasks pending on 8 cores; 1 torch thread"),
        (8, "two", "executor: local (2 tasks pending on 8 cores: worker processes would not"),
        (1, "four", "executor: local (4 tasks pending on 1 cores: worker processes would not"),
    ],
)
def test_auto_executor_picks_processes_only_when_they_pay(
    tmp_path, capsys, monkeypatch, cores, suite, expected
) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: cores)
    text = FOUR_TASKS if suite == "four" else SUITE
    assert auto_choice(tmp_path, capsys, text).startswith(expected)


def test_auto_executor_with_workers_means_processes(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(device_module, "available_cores", lambda: 1)
    line = auto_choice(tmp_path, capsys, SUITE, "--workers", "1", "--threads-per-worker", "1")
    assert line == "executor: processes (--workers given)"


@pytest.mark.slow
def test_auto_executor_gives_the_local_metrics_and_resumes(tmp_path, capsys) -> None:
    # auto runs one torch thread per cell whichever executor it picks: the same
    # numbers as local at one thread, and a rerun with auto passes the thread check
    local = run_cli(tmp_path, "local", "--executor", "local", "--threads-per-worker", "1")
    auto = run_cli(tmp_path, "auto")
    assert quality_metrics(auto) == quality_metrics(local)
    assert all(json.loads(p)["torch_threads"] == 1 for _, _, p in cells(auto))
    capsys.readouterr()
    assert run_cli(tmp_path, "auto") == auto  # resumed: nothing pending, nothing refused
    assert "executor: local (0 tasks pending" in capsys.readouterr().err


def _exit_worker(runner: Runner, code: int) -> None:
    """A job whose worker process dies (a segfault, an OOM kill)."""
    os._exit(code)


def _double(runner: Runner, value: int) -> int:
    return 2 * value


def _raise(runner: Runner, message: str) -> None:
    raise ValueError(message)


def finished_jobs(pool, count: int) -> list:
    done: list = []
    while len(done) < count:
        done += pool.wait(timeout=0.5)
    return done


def test_a_job_pool_worker_that_dies_fails_its_job_and_is_replaced(tmp_path) -> None:
    """tune's trials run as single jobs: a job that raises or whose worker dies
    comes back with an error; the pool replaces the worker and goes on."""
    registry, _ = load_registry(load_entry_points=False)
    runner = Runner(registry, ArtifactCache(tmp_path / "cache"), torch.device("cpu"))
    factory = RegistryFactory(load_entry_points=False)
    executor = ProcessExecutor(runner, factory, str(tmp_path / "cache"), workers=1, threads=1)
    with executor.jobs(parallel=4) as pool:  # no more workers than the executor has
        assert pool.free == 1 and pool.threads == 1
        pool.submit("dies", _exit_worker, 7)
        assert pool.free == 0
        (died,) = finished_jobs(pool, 1)
        assert died.key == "dies" and "died (exit code 7)" in (died.error or "")
        pool.submit("raises", _raise, "diverged")
        (raised,) = finished_jobs(pool, 1)
        assert "ValueError: diverged" in (raised.error or "")
        pool.submit("doubles", _double, 21)
        (doubled,) = finished_jobs(pool, 1)
        assert (doubled.key, doubled.value, doubled.error) == ("doubles", 42, None)


def test_the_last_unit_is_split_once_between_two_workers() -> None:
    """``take_unit`` hands units out in order; the last one (4+ cells, 2+ workers) goes
    out as its first half, its second half queued for the next free worker, and
    is never split again."""
    from collections import deque
    from types import SimpleNamespace

    from unlearnbench.execution.executors.processes import take_unit

    a, b = SimpleNamespace(key="a"), SimpleNamespace(key="b")
    queue = deque([(a, [1, 2, 3, 4, 5]), (b, [6, 7, 8, 9, 10])])
    split: set[str] = set()
    assert take_unit(queue, 2, split) == (a, [1, 2, 3, 4, 5])
    assert take_unit(queue, 2, split) == (b, [6, 7, 8])
    assert list(queue) == [(b, [9, 10])]
    assert take_unit(queue, 2, split) == (b, [9, 10])
    assert not queue
    queue = deque([(b, [1, 2, 3, 4, 5, 6, 7, 8])])
    assert take_unit(queue, 2, split) == (b, [1, 2, 3, 4, 5, 6, 7, 8])  # b was split once
    for workers, cells in ((1, [1, 2, 3, 4]), (2, [1, 2, 3])):
        queue = deque([(a, cells)])
        assert take_unit(queue, workers, set()) == (a, cells)


def test_stopped_workers_exit_with_status_0(tmp_path) -> None:
    """A worker told to stop skips the interpreter's teardown
    (``exit_without_teardown``) and still exits with status 0, both for cell units
    and for single jobs (a job worker after running a job). How much sooner it
    exits is a timing, measured in docs/benchmarks.md, not asserted here."""
    registry, _ = load_registry(load_entry_points=False)
    runner = Runner(registry, ArtifactCache(tmp_path / "cache"), torch.device("cpu"))
    factory = RegistryFactory(load_entry_points=False)
    executor = ProcessExecutor(runner, factory, str(tmp_path / "cache"), workers=1, threads=1)
    worker = executor._start(0)
    assert worker.conn.recv() == ("ready", None)
    _tell_to_stop([worker.conn])
    executor._stop(worker)
    assert worker.process.exitcode == 0
    with executor.jobs(parallel=1) as pool:
        pool.submit("doubles", _double, 2)
        (doubled,) = finished_jobs(pool, 1)
        assert doubled.value == 4
        processes = [w.process for w in pool._workers]
    assert [p.exitcode for p in processes] == [0]


def test_the_local_executor_sets_its_threads_before_any_data_is_loaded(
    tmp_path, monkeypatch
) -> None:
    """A data set's normalisation (a torch mean) depends on the thread count; a
    worker loads its data at its own count, so must this process, or local and
    processes results differ (they did on MNIST-1D)."""
    if device_module.available_cores() < 2:
        pytest.skip("needs two cores to tell the thread counts apart")
    seen = []
    load = Runner.load_dataset

    def spy(self, component):
        seen.append(torch.get_num_threads())
        return load(self, component)

    monkeypatch.setattr(Runner, "load_dataset", spy)
    torch.set_num_threads(2)
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE, encoding="utf-8")
    registry, _ = load_registry(load_entry_points=False)
    prepare_run(suite, tmp_path / "out", registry, executor="local", threads=1, device="cpu")
    assert seen and set(seen) == {1}
