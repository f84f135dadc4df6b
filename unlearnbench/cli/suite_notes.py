"""What ``unlearnbench run`` adds to, or says about, a suite before it runs.

A board reads every row against two anchors: the reference (``retrain``: exact
unlearning) and ``original`` (doing nothing). Without their rows a board is hollow
(rows with "seeds 0", an all-dash gap table, no Avg. Gap, no flags), so a suite
that does not list them gets them added, and the command says so. Fewer than three
seeds give 95% intervals too wide to compare methods (Student's t at one degree of
freedom is 12.7 standard errors): the command warns.
"""

from __future__ import annotations

import dataclasses
from typing import Any

MIN_SEEDS = 3
ORIGINAL = "original"
"""The do-nothing method's name, as the reports' default ``--original`` label."""


def with_anchors(suite: Any, registry: Any) -> tuple[Any, list[str]]:
    """``suite`` with a ``[[methods]]`` entry for the reference and for ``original``
    where it lists none of that name (and the registry has the method), and one note
    per method added."""
    listed = {entry.name for entry in suite.methods}
    added = []
    reference = suite.reference
    wanted = [(reference, "the reference every row is compared with")]
    if ORIGINAL in registry.tables["method"]:
        original = dataclasses.replace(reference, name=ORIGINAL, params={}, grid={}, label="")
        wanted.append((original, "doing nothing, the floor every method must beat"))
    for entry, role in wanted:
        if entry.name in listed:
            continue
        listed.add(entry.name)
        added.append((dataclasses.replace(entry, key=f"methods (added: {entry.name})"), role))
    if not added:
        return suite, []
    methods = (*(entry for entry, _ in added), *suite.methods)
    notes = [
        f"note: the suite lists no [[methods]] entry {entry.name!r} ({role}); added it, "
        "since a board without it has no gaps, Avg. Gap or flags. List it in the suite "
        "to set its parameters."
        for entry, role in added
    ]
    return dataclasses.replace(suite, methods=methods), notes


def seed_warning(suite: Any) -> str | None:
    """A warning when the suite runs fewer than :data:`MIN_SEEDS` seeds."""
    count = len(suite.seeds)
    if count >= MIN_SEEDS:
        return None
    if count == 1:
        why = "one seed gives no 95% interval, and no value is marked best"
    else:
        why = (
            f"{count} seeds give 95% intervals too wide to tell methods apart (Student's t "
            f"at {count - 1} degree{'s' if count > 2 else ''} of freedom)"
        )
    return (
        f"warning: {why}; give seeds = {MIN_SEEDS} or more (seeds = [0, 1, 2]) to compare methods"
    )
