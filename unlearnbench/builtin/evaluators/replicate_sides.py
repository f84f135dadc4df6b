"""The two samples of models that replicate-based evaluators (``u_lira``,
``unlearning_score``) compare, drawn so that no model is compared with itself.

- The standard comparison: the method's unlearned replicates against retrained
  ones, both of label ``"replicate"``, replicate ``i`` of each side sharing its
  original's seed. When the cell's method *is* the reference (retrain), the two
  sides would be the same models and the comparison trivially perfect (score 1,
  AUC 0.5 whatever the number of models). Its retrained side is then taken from
  replicates of another label, ``"replicate-independent"``: other training
  randomisations of retrain, so the reference's row shows what a method exactly
  as good as retraining reaches with this many models (the ceiling at N).
- The naive comparison, for a method that defines ``naive`` (exact retraining
  under its own procedure: SISA's shards, DeepObliviate's stored blocks): its
  unlearned replicates against the naive models of ``"replicate-independent"``
  replicates. Independent for the same reason: SISA's unlearning gives its
  naive retraining bit for bit from the same ``fit``, so replicates of one label
  would compare a model with itself.

The independent replicates are shared: retrain's are built once per task for
the reference's row and reused by every method's naive comparison (their
originals and retrainings are cached by label and index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from unlearnbench.specs import Replicate, ReplicateSource

LABEL = "replicate"  # shared with every evaluator that asks for the same replicates
INDEPENDENT = "replicate-independent"  # the other side where one label would self-compare


@dataclass
class Sides:
    """Two samples of models to tell apart, and the replicates they came from."""

    unlearned: list[nn.Module]
    other: list[nn.Module]  # retrained (standard) or naive models
    spare: list[nn.Module]  # further models of the ``other`` kind, in neither sample
    replicates: list[Replicate]  # every replicate used, for their work


def distinct(*groups: Sequence[Replicate]) -> list[Replicate]:
    """Each replicate once, for summing their work."""
    seen: dict[int, Replicate] = {}
    for group in groups:
        for r in group:
            seen.setdefault(id(r), r)
    return list(seen.values())


def standard(make: ReplicateSource, mine: list[Replicate], spare: int = 0) -> Sides:
    """The method's unlearned replicates ``mine`` (label :data:`LABEL`) against as
    many retrained ones: theirs, or those of independent replicates when the
    method is the reference, then with ``spare`` further retrained models."""
    n = len(mine)
    if not mine[0].of_reference:
        return Sides([r.unlearned for r in mine], [r.retrained for r in mine], [], mine)
    others = make(n + spare, INDEPENDENT)
    return Sides(
        [r.unlearned for r in mine],
        [r.retrained for r in others[:n]],
        [r.retrained for r in others[n:]],
        distinct(mine, others),
    )


def naive(make: ReplicateSource, mine: list[Replicate], spare: int = 0) -> Sides | None:
    """The method's unlearned replicates ``mine`` against the naive models of as
    many independent replicates (plus ``spare`` more); ``None`` for a method
    without ``naive``."""
    n = len(mine)
    others = make(n + spare, INDEPENDENT, naive=True)
    models = [r.naive for r in others]
    kept = [m for m in models if m is not None]
    if len(kept) < len(models):
        return None
    return Sides([r.unlearned for r in mine], kept[:n], kept[n:], distinct(mine, others))
