"""The results store: one SQLite file, one row per cell and per cell x metric.

Each finished cell is written in a single transaction (its status, metrics and
series together), so a crash leaves every cell either fully recorded or absent.
WAL mode and a busy timeout let two runs share a folder without corrupting it.
Re-running a suite skips cells whose status is ``ok``, and a cell recorded
``ok`` is never overwritten (not by a failure, not by a duplicate).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(metrics)")}
        if "meta" not in columns:  # a store written before metrics carried their role
            self._conn.execute("ALTER TABLE metrics ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished(self) -> set[str]:
        rows = self._conn.execute("SELECT cell_id FROM cells WHERE status = 'ok'")
        return {row[0] for row in rows}

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
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True

    def cells(self) -> list[dict[str, Any]]:
        cursor = self._conn.execute("SELECT * FROM cells ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def metric_rows(self) -> list[dict[str, Any]]:
        cursor = self._conn.execute(
            "SELECT c.cell_id, c.dataset, c.architecture, c.method, c.request, c.seed, "
            "m.name, m.value, m.direction, m.unit, m.position, m.meta "
            "FROM metrics m JOIN cells c USING (cell_id) WHERE c.status = 'ok' "
            "ORDER BY c.rowid, m.position"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def series_rows(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        cursor = self._conn.execute(
            "SELECT c.cell_id, c.dataset, c.architecture, c.method, c.request, c.seed, "
            "s.name, s.points FROM series s JOIN cells c USING (cell_id) "
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
                    }
                )
        return rows


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
