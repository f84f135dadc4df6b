"""Atomic file writes, shared by the execution core and the reports.

A reader of a file written here sees the old file or the whole new one, never a
torn write: the data goes to a temporary beside the target, is synced and
renamed over it. A process that dies mid-write leaves only its temporary,
which :func:`remove_stale_temporaries` removes later. Standard library only, so
any layer may use it.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

STALE_TMP_SECONDS = 3600.0  # a temporary file this old belongs to a writer that died


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: Path, max_age: float = STALE_TMP_SECONDS) -> int:
    """Delete :func:`atomic_write_bytes` temporaries in ``folder`` older than ``max_age`` s.

    A live writer renames its temporary within moments; one this old was left
    by a process that died mid-write. Returns how many were removed.
    """
    removed = 0
    cutoff = time.time() - max_age
    for path in folder.glob(".*.tmp"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:  # gone meanwhile, or not ours to delete
            continue
    return removed
