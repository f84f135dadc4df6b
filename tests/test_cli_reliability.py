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
from unlearnbench.execution.executors import WorkerSetup
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


def record_provenance(store: Path, **fields: str) -> None:
    """Make the store say its cells ran with ``fields`` (``device``, ``cpu_capability``)."""
    with closing(sqlite3.connect(store)) as conn, conn:
        for cell_id, raw in conn.execute("SELECT cell_id, provenance FROM cells").fetchall():
            prov = {**json.loads(raw), **fields}
            conn.execute(
                "UPDATE cells SET provenance = ? WHERE cell_id = ?", (json.dumps(prov), cell_id)
            )


def record_device(store: Path, device: str) -> None:
    """Make the store say its cells ran on ``device``."""
    record_provenance(store, device=device)


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
    board = (out / "leaderboard.md").read_text(encoding="utf-8")  # each row's device shown
    assert "## digits / mlp on cuda" in board and "## digits / mlp on cpu" in board
    assert main(["leaderboard", str(out), "--format", "csv"]) == EXIT_OK
    table = capsys.readouterr().out
    assert "mlp on cuda" in table and "mlp on cpu" in table


@pytest.mark.parametrize("options", [[], ["--check"]])
def test_resuming_cells_of_other_cpu_kernels_is_refused(half_done, capsys, options) -> None:
    """The mnist5k board resumed on an AVX512 host from AVX2 cells: its new cells were
    measured against a retrained original that differs from the old cells' (test
    accuracy 0.952 against 0.956), silently, on one board."""
    suite, out = half_done
    record_threads(out / "results.sqlite", torch.get_num_threads())
    record_provenance(out / "results.sqlite", cpu_capability="AVX9")
    before = tree(out)
    assert run(str(suite), "--out", str(out), *options) == EXIT_USAGE
    err = capsys.readouterr().err
    here = torch.backends.cpu.get_cpu_capability()
    assert f"other kernels (2 with AVX9); this host uses {here}" in err
    assert "Run into another --out" in " ".join(err.split()) and "--allow-mixed-cpus" in err
    assert tree(out) == before, "something was written"
    assert run(str(suite), "--out", str(out), "--allow-mixed-cpus") == EXIT_OK
    assert "2 cells done, 2 already done" in capsys.readouterr().err


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
    config = WorkerSetup(
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


# --------------------------------------------------------------------------- disks


class FullDisk:
    """A store connection whose COMMITs fail as SQLite's do on a full disk (the
    transaction rolled back, "database or disk is full") after ``ok`` of them."""

    def __init__(self, conn: sqlite3.Connection, ok: int) -> None:
        self._conn, self._ok = conn, ok

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql == "COMMIT":
            if self._ok <= 0:
                self._conn.execute("ROLLBACK")
                raise sqlite3.OperationalError("database or disk is full")
            self._ok -= 1
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


@pytest.mark.parametrize(
    "executor", [["--executor", "local"], ["--executor", "processes", "--workers", "1"]]
)
def test_a_full_disk_says_so_keeps_the_store_and_resumes(
    tmp_path, capsys, monkeypatch, executor
) -> None:
    """Before: "cannot rollback - no transaction is active" and a traceback on the
    processes executor, hiding "No space left on device"."""
    real = ResultStore._connect

    def connect(self, target, *, uri=False):
        return FullDisk(real(self, target, uri=uri), ok=1)

    suite = write_suite(tmp_path / "suite.toml", [0])
    out = tmp_path / "out"
    monkeypatch.setattr(ResultStore, "_connect", connect)
    assert run(str(suite), "--out", str(out), *executor) == 1
    err = capsys.readouterr().err
    assert "cannot rollback" not in err and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("unlearnbench: error: No space left on device"), err
    assert "run the same command again" in last
    monkeypatch.setattr(ResultStore, "_connect", real)  # space is back
    with closing(sqlite3.connect(out / "results.sqlite")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 1
    assert run(str(suite), "--out", str(out), *executor) == EXIT_OK
    assert "1 cells done, 1 already done" in capsys.readouterr().err


def test_a_full_disk_under_the_artifact_cache_names_the_cause(tmp_path, capsys, monkeypatch):
    import errno

    from unlearnbench.execution import cache

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "atomic_write_bytes", full)
    suite = write_suite(tmp_path / "suite.toml", [0])
    assert run(str(suite), "--out", str(tmp_path / "out"), "--executor", "local") == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err.strip().splitlines()[-1]
    assert "run the same command again" in err.strip().splitlines()[-1]


def _journal_mode_byte(path: Path) -> int:
    """Byte 18 of an SQLite file: 1 rollback journal, 2 WAL."""
    return path.read_bytes()[18]


def test_leaderboard_reads_the_store_without_changing_it(tmp_path, capsys) -> None:
    """Before: ``leaderboard DIR`` opened the store read-write, which fails on read-only
    media and switched a rollback-journal store to WAL (a reader then leaves -wal/-shm)."""
    suite = write_suite(tmp_path / "suite.toml", [0])
    out = tmp_path / "out"
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    store = out / "results.sqlite"
    with closing(sqlite3.connect(store)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    before = store.read_bytes()
    assert main(["leaderboard", str(out), "--format", "csv"]) == EXIT_OK
    assert "retrain" in capsys.readouterr().out
    assert store.read_bytes() == before
    assert not list(out.glob("results.sqlite-*"))


def test_a_store_is_published_in_rollback_journal_mode(tmp_path) -> None:
    suite = write_suite(tmp_path / "suite.toml", [0])
    out = tmp_path / "out"
    assert run(str(suite), "--out", str(out)) == EXIT_OK
    store = out / "results.sqlite"
    assert _journal_mode_byte(store) == 2  # runs write in WAL mode (two runs may share it)
    from unlearnbench.execution.store import to_rollback_journal

    to_rollback_journal(store)
    assert _journal_mode_byte(store) == 1
    assert not list(out.glob("results.sqlite-*"))
    with ResultStore(store, read_only=True) as opened:
        assert len(opened.finished()) == 2
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    assert "*.sqlite-wal" in ignored and "*.sqlite-shm" in ignored
