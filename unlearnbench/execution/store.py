"""The results store: one SQLite file, one row per cell and per cell x metric.

Each finished cell is written in a single transaction (its status, metrics and
series together), so a crash leaves every cell either fully recorded or absent.
WAL mode and a busy timeout let two runs share a folder without corrupting it.
Re-running a suite skips cells whose status is ``ok``, and a cell recorded
``ok`` is never overwritten (not by a failure, not by a duplicate).

A store is checked when it is opened (SQLite's ``quick_check`` and the
tables' columns), before anything is written to it: a damaged file or a file
that is not a results store raises :class:`StoreError`, and the file is left
exactly as it was, so no readable row is lost.

Each repeat of a request with ``repeats`` > 1 is its own cell row (its index in
its configuration); the read paths the boards use (:meth:`ResultStore.metric_rows`,
:meth:`ResultStore.series_rows`) give one row per cell over its repeats
(:mod:`unlearnbench.execution.repeats`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from unlearnbench.execution.repeats import aggregate_metric_rows, first_repeat_series
from unlearnbench.specs import UnlearnbenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    task_key TEXT NOT NULL,
    dataset TEXT NOT NULL,
    architecture TEXT NOT NULL,
    method TEXT NOT NULL,
    request TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    config TEXT NOT NULL,
    provenance TEXT,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value REAL,
    direction TEXT NOT NULL,
    unit TEXT NOT NULL,
    position INTEGER NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (cell_id, name)
);
CREATE TABLE IF NOT EXISTS series (
    cell_id TEXT NOT NULL REFERENCES cells(cell_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    points TEXT NOT NULL,
    PRIMARY KEY (cell_id, name)
);
"""

STORE_FILE = "results.sqlite"
BUSY_TIMEOUT_S = 60.0  # how long a store waits for another run that holds its lock


def _schema_columns() -> dict[str, list[str]]:
    """Each table's columns in order, as SQLite reads them from :data:`SCHEMA`."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(SCHEMA)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


# the columns each table must have, in order (rows are inserted by position)
COLUMNS = _schema_columns()
DAMAGE_CODES = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class StoreError(UnlearnbenchError):
    """A results file that cannot be used: damaged, foreign or unreadable."""


class NoSpaceError(StoreError):
    """The disk is full: a cell cannot be recorded (the store stays intact)."""


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full."""
    import errno

    if isinstance(exc, NoSpaceError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc)
    return False


def to_rollback_journal(path: Path | str) -> None:
    """Checkpoint a store's WAL into its file and switch it to rollback-journal mode,
    so that it is one self-contained file: what to commit or publish (a reader of a
    WAL-mode file leaves ``-wal``/``-shm`` files beside it). A run switches it back
    to WAL when it next writes. Needs no other process to have it open."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise StoreError(f"{path} could not leave WAL mode (another process has it open)")
    finally:
        conn.close()


@dataclass(frozen=True)
class MetricValue:
    name: str
    value: float
    direction: str
    unit: str
    meta: Mapping[str, Any] = field(default_factory=dict)  # role, evaluator, thresholds


@dataclass(frozen=True)
class CellRecord:
    """What the runner writes for one cell."""

    cell_id: str
    task_key: str
    dataset: str
    architecture: str
    method: str
    request: str
    seed: int
    status: str  # ok | failed | timeout
    config: Mapping[str, Any]
    metrics: tuple[MetricValue, ...] = ()
    series: Mapping[str, list[float]] | None = None
    error: str | None = None
    provenance: Mapping[str, Any] | None = None


class ResultStore:
    """Results of every cell of every run pointed at one folder."""

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        """Open (or, unless ``read_only``, create) the store at ``path``.

        Raises :class:`StoreError` for a damaged or foreign file, before
        anything is written to it. ``read_only`` opens an existing file without
        creating or changing anything (``run --check``).
        """
        self.path = Path(path)
        if read_only:
            # without a -wal file every committed row is in the main file: read it as
            # immutable, so not even the -wal/-shm files are created
            wal = self.path.with_name(self.path.name + "-wal").exists()
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            uri += "" if wal else "&immutable=1"
            self._conn = self._connect(uri, uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect(str(self.path))
        try:
            tables = self._check()
            if read_only and not tables:  # a valid but empty database: nothing recorded
                self._conn.close()
                self._conn = sqlite3.connect(":memory:", isolation_level=None)
            elif not read_only:
                self._use_wal()
                self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if not read_only or not tables:
                self._conn.executescript(SCHEMA)
            if not read_only and "meta" not in self._metric_columns():
                # a store written before metrics carried their role and evaluator
                self._conn.execute("ALTER TABLE metrics ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
        except sqlite3.Error as exc:
            self._conn.close()
            raise self._error(exc) from None
        except BaseException:
            self._conn.close()
            raise

    def _use_wal(self) -> None:
        """Switch the file to WAL mode. Two runs creating one store at once race for
        that switch, and SQLite answers the loser ``SQLITE_BUSY`` at once, without
        waiting out the busy timeout: retry, with backoff, for as long as that
        timeout (measured: 9 of 180 simultaneous opens of a new store failed)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        pause = 0.01
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY"
                if not busy or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        try:
            return sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _check(self) -> set[str]:
        """Verify the file's pages and the tables' columns; return the tables found.

        Runs before the first write, so a damaged file is reported, never changed.
        """
        rows = [row[0] for row in self._conn.execute("PRAGMA quick_check")]
        if rows != ["ok"]:
            raise self._damaged("; ".join(str(r) for r in rows[:3]))
        tables = {
            row[0]
            for row in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        ours = tables & set(COLUMNS)
        if tables and not ours:
            raise StoreError(
                f"{self.path} is not an unlearnbench results store (it holds the tables "
                f"{sorted(tables)}); nothing was changed. Point --out at another folder, "
                f"or move the file aside."
            )
        for table in sorted(ours):
            columns = [row[1] for row in self._conn.execute(f"PRAGMA table_info({table})")]
            older = table == "metrics" and columns == COLUMNS[table][:-1]  # before ``meta``
            if columns != COLUMNS[table] and not older:
                raise StoreError(
                    f"{self.path} is not a results store of this unlearnbench version: table "
                    f"{table!r} has the columns {columns}, expected {COLUMNS[table]}; nothing "
                    f"was changed. Use another --out folder, or move the file aside."
                )
        return ours

    def _metric_columns(self) -> list[str]:
        return [row[1] for row in self._conn.execute("PRAGMA table_info(metrics)")]

    def _error(self, exc: sqlite3.Error) -> StoreError:
        if getattr(exc, "sqlite_errorname", "") in DAMAGE_CODES:
            return self._damaged(str(exc))
        return StoreError(f"{self.path} cannot be opened as a results store: {exc}")

    def _damaged(self, detail: str) -> StoreError:
        """The message for a damaged file: what happened and how to go on without losing rows."""
        aside = self.path.parent / "damaged"
        return StoreError(
            f"the results store {self.path} is damaged ({detail}); nothing was changed. To "
            f"start a new store in this folder, move it aside: mkdir {aside} && mv "
            f"{self.path}* {aside}/ (or run with another --out). Its readable rows can be "
            f"salvaged with: sqlite3 {aside / self.path.name} .recover"
        )

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished(self) -> set[str]:
        rows = self._conn.execute("SELECT cell_id FROM cells WHERE status = 'ok'")
        return {row[0] for row in rows}

    def _ok_provenances(self, cell_ids: Collection[str]) -> Iterator[dict[str, Any]]:
        """The provenance of each ``ok`` cell among ``cell_ids`` (unreadable ones skipped)."""
        wanted = set(cell_ids)
        rows = self._conn.execute("SELECT cell_id, provenance FROM cells WHERE status = 'ok'")
        for cell_id, raw in rows:
            if cell_id not in wanted:
                continue
            try:
                prov = json.loads(raw or "{}")
            except (TypeError, ValueError):
                continue
            if isinstance(prov, dict):
                yield prov

    @staticmethod
    def _device_type(prov: dict[str, Any]) -> str:
        return str(prov.get("device", "")).split(":")[0]

    def thread_counts(self, cell_ids: Collection[str], device_type: str) -> dict[int, int]:
        """How many ``ok`` cells among ``cell_ids`` ran on ``device_type`` with each torch
        thread count (from their provenance): a resumed run must match it."""
        counts: dict[int, int] = {}
        for prov in self._ok_provenances(cell_ids):
            try:
                threads = int(prov["torch_threads"])
            except (TypeError, ValueError, KeyError):
                continue  # a cell recorded without a thread count (older versions)
            if self._device_type(prov) == device_type:
                counts[threads] = counts.get(threads, 0) + 1
        return counts

    def device_types(self, cell_ids: Collection[str]) -> dict[str, int]:
        """How many ``ok`` cells among ``cell_ids`` ran on each device type (``cpu``,
        ``cuda``), from their provenance: results differ across device types, so a
        resumed run must match it."""
        counts: dict[str, int] = {}
        for prov in self._ok_provenances(cell_ids):
            device = self._device_type(prov)
            if device:
                counts[device] = counts.get(device, 0) + 1
        return counts

    def cpu_capabilities(self, cell_ids: Collection[str]) -> dict[str, int]:
        """How many ``ok`` CPU cells among ``cell_ids`` ran with each CPU kernel set
        (provenance ``cpu_capability``: ``AVX2``, ``AVX512``, ...): CPU results differ
        across them (a model trained on one host is not the one trained on another),
        so a resumed run must match it. Cells recorded without it are not counted."""
        counts: dict[str, int] = {}
        for prov in self._ok_provenances(cell_ids):
            capability = str(prov.get("cpu_capability") or "")
            if self._device_type(prov) == "cpu" and capability:
                counts[capability] = counts.get(capability, 0) + 1
        return counts

    def write(self, record: CellRecord) -> bool:
        """Record one cell atomically, replacing an earlier failed or timed-out attempt.

        A cell already recorded ``ok`` is kept as it is (returns ``False``): a
        second run pointed at the same folder, or a late duplicate, can neither
        count it twice nor overwrite a finished result with a failure.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT status FROM cells WHERE cell_id = ?", (record.cell_id,)
            ).fetchone()
            if row is not None and row[0] == "ok":
                conn.execute("ROLLBACK")
                return False
            conn.execute("DELETE FROM cells WHERE cell_id = ?", (record.cell_id,))
            conn.execute(
                "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.cell_id,
                    record.task_key,
                    record.dataset,
                    record.architecture,
                    record.method,
                    record.request,
                    record.seed,
                    record.status,
                    record.error,
                    json.dumps(record.config, sort_keys=True, default=str),
                    json.dumps(record.provenance or {}, sort_keys=True, default=str),
                    time.time(),
                ),
            )
            conn.executemany(
                "INSERT INTO metrics (cell_id, name, value, direction, unit, position, meta) "
                "VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        record.cell_id,
                        m.name,
                        _finite_or_none(m.value),
                        m.direction,
                        m.unit,
                        i,
                        json.dumps(dict(m.meta), sort_keys=True),
                    )
                    for i, m in enumerate(record.metrics)
                ],
            )
            conn.executemany(
                "INSERT INTO series VALUES (?,?,?)",
                [
                    (record.cell_id, name, json.dumps([float(v) for v in points]))
                    for name, points in (record.series or {}).items()
                ],
            )
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # SQLite has already rolled back after a full disk
                conn.execute("ROLLBACK")
            if no_space(exc):
                raise NoSpaceError(
                    f"No space left on device: the results store {self.path} cannot record "
                    f"the cell {record.method}/{record.request}/seed {record.seed}. Every "
                    "cell recorded before is intact: free some space (or delete the artifact "
                    f"cache, {self.path.parent / 'cache'}, which is rebuilt) and run the same "
                    "command again; it resumes where it stopped"
                ) from exc
            raise
        return True

    def cells(self) -> list[dict[str, Any]]:
        cursor = self._conn.execute("SELECT * FROM cells ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def metric_rows(self) -> list[dict[str, Any]]:
        """One row per ``ok`` cell and metric, in the cells' order. The cells of a
        request's repeats are one row per metric and seed: the aggregate over the
        repeats, with ``repeats`` their count (1 elsewhere); see
        :mod:`unlearnbench.execution.repeats`."""
        cursor = self._conn.execute(
            "SELECT c.cell_id, c.dataset, c.architecture, c.method, c.request, c.seed, "
            "m.name, m.value, m.direction, m.unit, m.position, "
            + ("m.meta, " if "meta" in self._metric_columns() else "'{}' AS meta, ")
            + "c.config FROM metrics m JOIN cells c USING (cell_id) WHERE c.status = 'ok' "
            "ORDER BY c.rowid, m.position"
        )
        names = [d[0] for d in cursor.description]
        return aggregate_metric_rows(dict(zip(names, row, strict=True)) for row in cursor)

    def series_rows(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """One row per ``ok`` cell and series (those in ``names``, if given); of a
        request's repeats, the lowest repeat's."""
        cursor = self._conn.execute(
            "SELECT c.cell_id, c.dataset, c.architecture, c.method, c.request, c.seed, "
            "s.name, s.points, c.config FROM series s JOIN cells c USING (cell_id) "
            "WHERE c.status = 'ok' ORDER BY c.rowid"
        )
        wanted = set(names) if names is not None else None
        rows = []
        for row in cursor:
            if wanted is None or row[6] in wanted:
                rows.append(
                    {
                        "cell_id": row[0],
                        "dataset": row[1],
                        "architecture": row[2],
                        "method": row[3],
                        "request": row[4],
                        "seed": row[5],
                        "name": row[6],
                        "points": json.loads(row[7]),
                        "config": row[8],
                    }
                )
        return first_repeat_series(rows)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
