"""Content-addressed artifacts: trained models and other expensive shared parts.

An artifact is a dict of tensors and plain values, saved with ``torch.save``
and loaded with ``torch.load(weights_only=True)``: nothing in a results folder
can run code. Writes are atomic (temporary file, fsync, rename) and each file
has a SHA-256 sidecar written after it; a missing or mismatching checksum means
the artifact is rebuilt, so a crash or a damaged file never poisons a run.

Each file also holds its own description, the ``parts`` its key is computed
from, and is used only if that description hashes to the key asked for: a file
copied or restored into the wrong place (another seed's model, another kind of
artifact) is rebuilt with a warning even when its checksum was rewritten to
match. A value that still lacks a key its caller reads (a stale artifact from
older code) raises :class:`StaleArtifactError` and is discarded, so it is
rebuilt on the next use instead of failing every run.

Several processes may share one cache folder (the processes executor's
workers, two runs pointed at one output folder, Ray workers on a shared file
system). A build takes an exclusive lock (:class:`FileLock`) on ``<key>.lock``
and looks again once it holds it, so an artifact is built once and the others
wait and load it; the kernel drops the lock when its holder dies, even by
``kill -9``. The lock file is removed by its holder when it is done, and lock
files and temporary files left by dead processes are removed when a cache
opens. (Where ``fcntl`` is missing, as on Windows, two processes may both build
an artifact: wasted work, never a corrupt file, thanks to the atomic writes.)
On a cluster, point ``--out`` at a shared folder (NFSv4 supports these locks)
or let the Ray executor hand the original model to its tasks by value.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from unlearnbench._files import atomic_write_bytes, remove_stale_temporaries
from unlearnbench.specs import UnlearnbenchError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def content_key(parts: Mapping[str, Any]) -> str:
    """A stable hex key for a JSON-serialisable description of an artifact."""
    return hashlib.sha256(_describe(parts).encode()).hexdigest()


def _describe(parts: Mapping[str, Any]) -> str:
    return json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))


class FileLock:
    """An exclusive ``flock`` on ``path``, whose file is removed when released.

    Removing a lock file is safe only under the lock, and a waiter may then
    hold the lock on a file that is no longer at ``path``; so after acquiring,
    the lock checks that ``path`` still names the file it locked, and starts
    over if not. Without ``fcntl`` it locks nothing.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock (waiting for it if ``blocking``); ``False`` if it is held elsewhere."""
        if fcntl is None:
            return True
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except FileNotFoundError:  # its folder was removed meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                if _same_file(self.path, fd):
                    self._fd = fd
                    return True
            except BlockingIOError:
                os.close(fd)
                return False
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the file was removed by its last holder: lock the new one

    def release(self) -> None:
        """Remove the lock file, then unlock (waiters on it then start over)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(path: Path, fd: int) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def remove_stale_locks(folder: Path) -> None:
    """Remove ``*.lock`` files in ``folder`` that nobody holds (their holder died)."""
    for path in folder.glob("*.lock"):
        lock = FileLock(path)
        if lock.acquire(blocking=False):
            lock.release()


class StaleArtifactError(UnlearnbenchError, KeyError):
    """A cached artifact lacks a key its caller reads; it was discarded (rebuilt next time)."""


class CachedArtifact(dict[str, Any]):
    """A value loaded from the cache: reading a key it lacks discards it from the cache."""

    def __init__(self, value: Mapping[str, Any], cache: ArtifactCache, key: str) -> None:
        super().__init__(value)
        self._cache = cache
        self._key = key

    def __missing__(self, name: str) -> Any:
        path = self._cache.path(self._key)
        log.warning(
            "artifact %s has no %r (stale or foreign); discarding it so that it is rebuilt",
            path,
            name,
        )
        self._cache.discard(self._key)
        raise StaleArtifactError(
            f"the cached artifact {path} has no {name!r} (made by other code, or damaged); "
            "it was discarded and is rebuilt on its next use"
        )


class ArtifactCache:
    """Artifacts under ``root``, keyed by content, with a small in-memory layer.

    Opening a cache removes what dead processes left in it: temporary files
    older than ``STALE_TMP_SECONDS`` and lock files that nobody holds.
    """

    def __init__(self, root: Path | str, memory_items: int = 8) -> None:
        self.root = Path(root)
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._memory_items = memory_items
        self.builds = 0
        self.clean()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def clean(self) -> None:
        """Remove stale temporaries and unheld lock files (left by dead processes)."""
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                remove_stale_temporaries(folder)
                remove_stale_locks(folder)

    def get_or_build(
        self, parts: Mapping[str, Any], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        key = content_key(parts)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        value = self.load(key)
        if value is None:
            with self._build_lock(key):
                # built by another process while we waited? (a damaged file was reported
                # by the first look; reporting it again would print each warning twice)
                value = self.load(key, warn=False)
                if value is None:
                    value = build()
                    self.save(key, value, parts)
                    self.builds += 1
        self._remember(key, value)
        return value

    @contextmanager
    def _build_lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive lock on ``key`` across processes while building it."""
        with FileLock(self.path(key).with_suffix(".lock")):
            yield

    def read_verified(self, key: str, *, warn: bool = True) -> bytes | None:
        """The stored bytes of ``key`` if they match their checksum (to ship elsewhere).

        ``warn=False`` for a second look at a key already reported as damaged.
        """
        path = self.path(key)
        sidecar = path.with_suffix(".sha256")
        if not path.exists() or not sidecar.exists():
            return None
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
            if warn:
                log.warning("artifact %s failed its checksum; rebuilding it", path)
            return None
        return data

    def put_verified(self, key: str, data: bytes, parts: Mapping[str, Any]) -> None:
        """Store bytes read elsewhere with :meth:`read_verified` (no-op if present)."""
        if self.read_verified(key) is not None:
            return
        with self._build_lock(key):
            if self.read_verified(key, warn=False) is None:
                self._write(key, data, parts)

    def load(self, key: str, *, warn: bool = True) -> dict[str, Any] | None:
        """The artifact stored under ``key``, or ``None`` if it is absent or not what ``key``
        names (damaged, foreign, or another artifact copied into its place). ``warn``:
        say why (off for a second look under the build lock, so it is said once)."""
        data = self.read_verified(key, warn=warn)
        if data is None:
            return None
        path = self.path(key)
        try:
            stored = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file: rebuild rather than fail
            if warn:
                log.warning("artifact %s could not be loaded (%s); rebuilding it", path, exc)
            return None
        described = stored.get("description") if isinstance(stored, dict) else None
        value = stored.get("value") if isinstance(stored, dict) else None
        if not isinstance(described, str) or not isinstance(value, dict):
            if warn:
                log.warning("artifact %s carries no description; rebuilding it", path)
            return None
        if hashlib.sha256(described.encode()).hexdigest() != key:
            if warn:
                log.warning(
                    "artifact %s is not what its name says (it describes itself as %s); "
                    "rebuilding it",
                    path,
                    described[:300],
                )
            return None
        return CachedArtifact(value, self, key)

    def discard(self, key: str) -> None:
        """Forget ``key`` here and on disk (its checksum goes, so it reads as absent)."""
        self._memory.pop(key, None)
        self.path(key).with_suffix(".sha256").unlink(missing_ok=True)

    def save(self, key: str, value: dict[str, Any], parts: Mapping[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save({"description": _describe(parts), "value": _to_cpu(value)}, buffer)
        self._write(key, buffer.getvalue(), parts)

    def _write(self, key: str, data: bytes, parts: Mapping[str, Any]) -> None:
        # data, then a readable description, then checksum: a crash in between
        # leaves a missing or stale checksum, which reads as "absent" and is rebuilt
        path = self.path(key)
        atomic_write_bytes(path, data)
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(parts, default=str).encode())
        atomic_write_bytes(path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest().encode())

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        self._memory[key] = value
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value
