"""asv benchmarks of unlearnbench (``asv.conf.json`` points ``benchmark_dir`` here).

Kept apart from the plain scripts in ``benchmarks/``, which asv must not import.
Every benchmark runs in a fresh process that imports torch (about 2 s), so the
suite is small: the tiny real-data task of ``unlearnbench.testing``, CPU, two
threads.

History of older commits: asv's ``existing`` environment benchmarks whatever
``unlearnbench`` the interpreter imports. ``benchmarks/asv/history.sh`` exports
each commit's source tree with ``git archive`` and sets
``UNLEARNBENCH_SOURCE`` to it; the finder below then imports ``unlearnbench``
from there, ahead of the editable install (whose own finder would otherwise
win over ``PYTHONPATH``). The installed environment is never modified.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

_SOURCE = os.environ.get("UNLEARNBENCH_SOURCE")


class _SourceFinder:
    """Find the top-level ``unlearnbench`` package in ``UNLEARNBENCH_SOURCE`` only."""

    @classmethod
    def find_spec(
        cls, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "unlearnbench" or not _SOURCE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, [_SOURCE])
        if spec is None:
            raise ImportError(f"UNLEARNBENCH_SOURCE={_SOURCE!r} holds no unlearnbench package")
        return spec


if _SOURCE and "unlearnbench" not in sys.modules:
    sys.meta_path.insert(0, _SourceFinder)
