"""The CLI never mixes, never writes when it should not, and its workers exit quietly.

- ``run --check`` writes nothing at all (no folder, no store, no cache);
- resuming a CPU run with another torch thread count is refused (results
  depend on it), unless ``--allow-mixed-threads``; so is resuming cells of another
  device type, unless ``--allow-mixed-devices``;
- a processes-executor worker whose parent is gone exits without a traceback;
- a damaged artifact is reported once.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
import torch

from tests.suites import suite_toml
from unlearnbench.cli import EXIT_OK, EXIT_USAGE, main
from unlearnbench.execution.cache import ArtifactCache, content_key
from unlearnbench.execution.executors import WorkerConfig
from unlearnbench.execution.executors.processes import _worker_main
from unlearnbench.execution.plan import build_plan
from unlearnbench.execution.store import ResultStore
from unlearnbench.execution.suite import parse_suite
from unlearnbench.host.manager import RegistryFactory


def suite_text(seeds: list[int]) -> str:
    return suite_toml(
        "again",
        seeds=seeds,
        splits={"target": 120, "nonmember": 30, "test": 60, "shadow_in": 0, "shadow_out": 0},
        train={"epochs": 1, "batch_size": 32},
        architectures=[{"name": "mlp", "params": {"widths": [8]}}],
        requests=[{"kind": "random", "count": 5}],
    )


@pytest.fixture(autouse=True)
def one_thread():
    """The local executor sets this process's torch threads; restore the tests' one."""
    yield
    torch.set_num_threads(1)


def tree(root: Path) -> dict[str, int]:
    """Every path under ``root`` with its size (a changed file shows)."""
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def write_suite(path: Path, seeds: list[int]) -> Path:
    path.write_text(suite_text(seeds), encoding="utf-8")
    return path


def run(*args: str) -> int:
    return main(["run", *args, "--no-progress", "--device", "cpu"])


# --------------------------------------------------------------------------- --check


@pytest.mark.parametrize("with_out", [False, True])
def test_check_writes_nothing(tmp_path, capsys, monkeypatch, with_out) -> None:
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path / "suite.toml", [0])
    before = tree(tmp_path)
    out = ["--out", str(tmp_path / "out")] if with_out else []
    assert run(str(suite), "--check", *out) == EXIT_OK
    assert "2 cells" in capsys.readouterr().err
    assert tree(tmp_path) == before


def test_check_reads_an_existing_store_without_changing_it(tmp_path, capsys) -> None:
    suite = write_suite(tmp_path / "suite.toml", [0])
    out = tmp_path / "out"
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    write_suite(suite, [0, 1])
    before = tree(tmp_path)
    assert run(str(suite), "--out", str(out), "--check") == EXIT_OK
    assert tree(tmp_path) == before


# --------------------------------------------------------------------------- thread counts


def record_threads(store: Path, threads: int) -> None:
    """Make the store say its cells were computed with ``threads`` torch threads."""
    with closing(sqlite3.connect(store)) as conn, conn:
        for cell_id, raw in conn.execute("SELECT cell_id, provenance FROM cells").fetchall():
            prov = {**json.loads(raw), "torch_threads": threads}
            conn.execute(
                "UPDATE cells SET provenance = ? WHERE cell_id = ?", (json.dumps(prov), cell_id)
            )


@pytest.fixture
def half_done(tmp_path: Path) -> tuple[Path, Path]:
    """Seed 0 finished with 7 torch threads; the suite now asks for seeds 0 and 1."""
    suite = write_suite(tmp_path / "suite.toml", [0])
    out = tmp_path / "out"
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    record_threads(out / "results.sqlite", 7)
    write_suite(suite, [0, 1])
    return suite, out


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--check"],
        ["--threads-per-worker", "1"],
        ["--executor", "processes", "--workers", "1", "--threads-per-worker", "1", "--check"],
    ],
)
def test_resuming_with_another_thread_count_is_refused(half_done, capsys, options) -> None:
    suite, out = half_done
    before = tree(out)
    assert run(str(suite), "--out", str(out), *options) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "2 with 7 threads" in err and "this run would use 1" in err
    assert "--threads-per-worker 7" in err and "--allow-mixed-threads" in err
    assert tree(out) == before, "something was written"


def test_mixing_thread_counts_when_asked(half_done, capsys) -> None:
    suite, out = half_done
    assert run(str(suite), "--out", str(out), "--allow-mixed-threads") == EXIT_OK
    with ResultStore(out / "results.sqlite") as store:
        threads = sorted(json.loads(c["provenance"])["torch_threads"] for c in store.cells())
    assert threads == [1, 1, 7, 7]


def test_nothing_pending_is_not_a_mix(half_done, capsys) -> None:
    """A rerun of the finished part only rewrites the leaderboard: nothing to refuse."""
    suite, out = half_done
    write_suite(suite, [0])
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    assert "0 cells done, 2 already done" in capsys.readouterr().err


def test_the_same_thread_count_resumes(half_done, capsys) -> None:
    suite, out = half_done
    record_threads(out / "results.sqlite", torch.get_num_threads())
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    assert "2 cells done, 2 already done" in capsys.readouterr().err


def record_device(store: Path, device: str) -> None:
    """Make the store say its cells ran on ``device``."""
    with closing(sqlite3.connect(store)) as conn, conn:
        for cell_id, raw in conn.execute("SELECT cell_id, provenance FROM cells").fetchall():
            prov = {**json.loads(raw), "device": device}
            conn.execute(
                "UPDATE cells SET provenance = ? WHERE cell_id = ?", (json.dumps(prov), cell_id)
            )


@pytest.mark.parametrize("options", [[], ["--check"]])
def test_resuming_cells_of_another_device_type_is_refused(half_done, capsys, options) -> None:
    """Cells recorded on cuda:0 resumed with --device cpu mixed silently on one board
    (the cell id has no device; the old check counted CPU cells only)."""
    suite, out = half_done
    record_device(out / "results.sqlite", "cuda:0")
    before = tree(out)
    assert run(str(suite), "--out", str(out), *options) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "another device type (2 on cuda); this run would use cpu" in err
    assert "--device cuda" in err and "--allow-mixed-devices" in err
    assert tree(out) == before, "something was written"


def test_mixing_device_types_when_asked(half_done, capsys) -> None:
    suite, out = half_done
    record_device(out / "results.sqlite", "cuda:0")
    assert run(str(suite), "--out", str(out), "--allow-mixed-devices") == EXIT_OK


# --------------------------------------------------------------------------- workers


def one_unit() -> tuple[object, list[object]]:
    """A task and its cells, as the processes executor sends them to a worker."""
    from unlearnbench.host.manager import load_registry

    registry, _ = load_registry(load_entry_points=False)
    data = parse_suite(
        {
            "datasets": ["digits"],
            "architectures": [{"name": "mlp", "params": {"widths": [8]}}],
            "methods": ["retrain", "original"],
            "evaluators": ["accuracy"],
            "splits": {"target": 120, "nonmember": 30, "test": 60, "shadow_in": 0, "shadow_out": 0},
            "train": {"epochs": 1},
            "requests": [{"kind": "random", "count": 5}],
        }
    )
    plan = build_plan(data, registry)
    [(task, cells)] = [(t, list(t.cells)) for t in plan.tasks]
    return task, cells


def start_worker(tmp_path: Path) -> tuple[threading.Thread, list[BaseException], object]:
    """``_worker_main`` in a thread (its parent, this process, stays alive)."""
    parent, child = multiprocessing.Pipe()
    config = WorkerConfig(
        registry_factory=RegistryFactory(load_entry_points=False),
        cache_root=str(tmp_path / "cache"),
        device="cpu",
        threads=1,
        cell_timeout=None,
        executor="processes",
    )
    errors: list[BaseException] = []

    def target() -> None:
        try:
            _worker_main(child, config, os.getppid())
        except BaseException as exc:  # what would be printed as a traceback
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    return thread, errors, parent


def test_a_worker_whose_parent_is_gone_mid_unit_exits_quietly(tmp_path) -> None:
    thread, errors, parent = start_worker(tmp_path)
    thread.start()
    assert parent.recv() == ("ready", None)
    parent.send(one_unit())
    kind, _ = parent.recv()
    assert kind == "start"
    parent.close()  # the parent is gone while the worker runs a cell
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []


def test_a_worker_whose_parent_is_gone_before_it_is_ready_exits_quietly(tmp_path) -> None:
    thread, errors, parent = start_worker(tmp_path)
    parent.close()
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []


# --------------------------------------------------------------------------- warnings


def test_a_damaged_artifact_is_reported_once(tmp_path, caplog) -> None:
    cache = ArtifactCache(tmp_path)
    parts = {"artifact": "weights"}
    cache.save(content_key(parts), {"w": torch.ones(3)}, parts)
    path = cache.path(content_key(parts))
    path.write_bytes(path.read_bytes()[:-4] + b"XXXX")
    fresh = ArtifactCache(tmp_path)  # no in-memory copy
    with caplog.at_level(logging.WARNING, logger="unlearnbench.execution.cache"):
        value = fresh.get_or_build(parts, lambda: {"w": torch.zeros(3)})
    assert torch.equal(value["w"], torch.zeros(3))
    warnings = [r.getMessage() for r in caplog.records if "checksum" in r.getMessage()]
    assert warnings == [f"artifact {path} failed its checksum; rebuilding it"]
