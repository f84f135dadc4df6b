"""Content-addressed artifacts: trained models and other expensive shared parts.

An artifact is a dict of tensors and plain values, saved with ``torch.save``
and loaded with ``torch.load(weights_only=True)``: nothing in a results folder
can run code. Writes are atomic (temporary file, fsync, rename) and each file
has a SHA-256 sidecar written after it; a missing or mismatching checksum means
the artifact is rebuilt, so a crash or a damaged file never poisons a run.

Several processes may share one cache folder (the processes executor's
workers, two runs pointed at one output folder, Ray workers on a shared file
system). A build takes an exclusive ``flock`` on ``<key>.lock`` and looks
again once it holds it, so an artifact is built once and the others wait and
load it; the kernel drops the lock when its holder dies, even by ``kill -9``.
(Where ``fcntl`` is missing, as on Windows, two processes may both build an
artifact: wasted work, never a corrupt file, thanks to the atomic writes.)
On a cluster, point ``--out`` at a shared folder (NFSv4 supports these locks)
or let the Ray executor hand the original model to its tasks by value.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


def content_key(parts: Mapping[str, Any]) -> str:
    """A stable hex key for a JSON-serialisable description of an artifact."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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


class ArtifactCache:
    """Artifacts under ``root``, keyed by content, with a small in-memory layer."""

    def __init__(self, root: Path | str, memory_items: int = 8) -> None:
        self.root = Path(root)
        self._memory: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._memory_items = memory_items
        self.hits = 0
        self.builds = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def get_or_build(
        self, parts: Mapping[str, Any], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        key = content_key(parts)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
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
                else:
                    self.hits += 1
        else:
            self.hits += 1
        self._remember(key, value)
        return value

    @contextmanager
    def _build_lock(self, key: str) -> Iterator[None]:
        """Hold an exclusive lock on ``key`` across processes while building it."""
        if fcntl is None:
            yield
            return
        path = self.path(key).with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

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
        data = self.read_verified(key, warn=warn)
        if data is None:
            return None
        path = self.path(key)
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file: rebuild rather than fail
            if warn:
                log.warning("artifact %s could not be loaded (%s); rebuilding it", path, exc)
            return None

    def save(self, key: str, value: dict[str, Any], parts: Mapping[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(_to_cpu(value), buffer)
        self._write(key, buffer.getvalue(), parts)

    def _write(self, key: str, data: bytes, parts: Mapping[str, Any]) -> None:
        # data, then description, then checksum: a crash in between leaves a
        # missing or stale checksum, which reads as "absent" and is rebuilt
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
