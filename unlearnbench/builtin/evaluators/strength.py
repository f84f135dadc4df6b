"""An attack's strength on the original model: can it tell members from non-members at all?

An attack that cannot tell the *original* model's training points from
held-out points of the same distribution measures nothing when it is pointed
at an unlearned model: its "forgetting" numbers are noise. Every built-in
attack evaluator therefore reports, beside its results, the ROC AUC of its own
membership score on the original model, members (``splits.target``, what the
original trained on) against non-members (``splits.nonmember``). Below
``INFORMATIVE_AUC`` the leaderboard marks that attack's metrics as
uninformative for the group (no bold, a footnote, greyed in HTML) and
``unlearnbench run`` warns. The strength depends only on the task (the
original model and the splits), so it is computed once per task and cached.

Why the standard original and not ``inputs.trained`` (the model a method
unlearns from): these attacks compare the unlearned model with retrain (their
``_gap`` metrics), not with a "before", and the strength asks whether the
attack can tell members at all on this task, one answer per group that the
board reads for every row. A check that *does* compare with a before, the
backdoor's, measures that before on ``inputs.trained``
(``backdoor_success_before``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from unlearnbench import Metric
from unlearnbench.specs import MethodContext
from unlearnbench.task import Task

INFORMATIVE_AUC = 0.6
"""Documented threshold: an attack whose AUC on the original's members against
non-members is below 0.6 is reported as uninformative (0.5 is chance)."""


def membership_auc(members: torch.Tensor, nonmembers: torch.Tensor) -> float:
    """ROC AUC of "higher score = member" for the two score sets (nan if one is empty)."""
    if members.numel() == 0 or nonmembers.numel() == 0:
        return float("nan")
    scores = torch.cat([members, nonmembers]).double().cpu().numpy()
    labels = np.concatenate([np.ones(members.numel()), np.zeros(nonmembers.numel())])
    from sklearn.metrics import roc_auc_score  # lazy: sklearn takes ~0.9 s to import

    return float(roc_auc_score(labels, scores))


def strength_metric(name: str, attack: str) -> Metric:
    """The declaration of an attack's strength metric."""
    return Metric(
        name,
        "higher",
        "AUC",
        f"ROC AUC of the {attack} on the original model's members (target) against "
        f"non-members; below {INFORMATIVE_AUC} the attack's metrics measure nothing",
        role="attack_strength",
        informative_above=INFORMATIVE_AUC,
    )


def cached_strength(
    task: Task,
    ctx: MethodContext,
    name: str,
    params: Mapping[str, Any],
    compute: Callable[[], float],
) -> float:
    """``compute()`` once per task (original model, splits, request) and attack parameters."""
    key = {"request": task.request.as_dict(), **params}
    return float(ctx.cached(name, key, lambda: {"auc": float(compute())})["auc"])
