"""Built-in plugins are named after their modules (``builtin_plugin_name``): no
module of theirs takes a standard-library name (``evaluators/time.py`` did)."""

from __future__ import annotations

import sys
from pathlib import Path

import unlearnbench.builtin

BUILTIN = Path(unlearnbench.builtin.__file__).parent


def test_no_builtin_module_shadows_the_standard_library() -> None:
    names = {p.stem for p in BUILTIN.rglob("*.py") if p.stem != "__init__"}
    names |= {p.parent.name for p in BUILTIN.rglob("__init__.py")}
    assert names, BUILTIN
    assert sorted(names & sys.stdlib_module_names) == []


def test_no_unlearnbench_module_shadows_the_standard_library() -> None:
    """Anywhere in the package (``reports/html.py`` did): a bare ``import html`` in a
    script run from inside the package folder would pick ours up."""
    root = Path(unlearnbench.builtin.__file__).parents[1]
    names = {p.stem for p in root.rglob("*.py") if p.stem not in ("__init__", "__main__")}
    assert sorted(names & sys.stdlib_module_names) == []
