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
