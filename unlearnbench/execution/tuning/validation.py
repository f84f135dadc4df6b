"""The validation protocol a trial is scored on, never the test data: a validation
forget set ``V`` drawn from retain, a validation task that hides ``test``,
``nonmember``, ``shadow_*`` and half of ``auxiliary``, and the objective (the Avg.
Gap to the reference on the held-out half, ``V`` and a retain sample).

It is its own module so what a trial may read is stated (and tested, through
:attr:`ValidationData.touched`) in one place. See docs/tuning.md
("Validation protocol").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from unlearnbench.execution.suite import SuiteError
from unlearnbench.seeding import generator
from unlearnbench.task import Splits, Task

RETAIN_EVAL_POINTS = 1000


@dataclass
class ValidationData:
    """The validation task and the index sets the objective evaluates on."""

    task: Task
    forget: torch.Tensor  # V
    retain_eval: torch.Tensor  # E ⊂ target - V - F
    holdout: torch.Tensor  # H: the held-out half of auxiliary
    method_auxiliary: torch.Tensor  # the half of auxiliary the method may use
    touched: set[int] = field(default_factory=set)  # every index read or handed out

    def record(self, indices: torch.Tensor) -> None:
        self.touched.update(int(i) for i in indices.tolist())


def validation_forget(task: Task, seed: int) -> torch.Tensor:
    """``V``: of the request's kind and size, from ``retain`` (disjoint from ``F``)."""
    retain, request = task.splits.retain, task.request
    labels = task.clean_y
    if request.kind == "random":
        count = task.splits.forget.numel()
        if count >= retain.numel():
            raise SuiteError("tuning", "the retain set is too small for a validation forget set")
        perm = torch.randperm(retain.numel(), generator=generator(seed, "tuning-forget"))
        return retain[perm.to(retain.device)[:count]]
    if request.kind == "class":
        present = sorted({int(c) for c in labels[retain].tolist()} - {request.label})
        if not present:
            raise SuiteError("tuning", "no other class in the retain set to validate on")
        pick = torch.randint(len(present), (1,), generator=generator(seed, "tuning-class"))
        chosen = retain[labels[retain] == present[int(pick)]]
        if request.fraction:
            keep = max(1, int(request.fraction * chosen.numel()))
            perm = torch.randperm(chosen.numel(), generator=generator(seed, "tuning-cls"))
            chosen = chosen[perm.to(chosen.device)[:keep]]
        return chosen
    raise SuiteError("requests", f"tuning does not support {request.kind!r} requests")


def validation_data(task: Task, seed: int) -> ValidationData:
    """The validation task of this protocol, and the index sets it evaluates on."""
    splits = task.splits
    v = validation_forget(task, seed)
    retain = splits.target[~torch.isin(splits.target, v)]
    pool = retain[~torch.isin(retain, splits.forget)]  # target - V - F
    perm = torch.randperm(pool.numel(), generator=generator(seed, "tuning-retain"))
    retain_eval = pool[perm.to(pool.device)[:RETAIN_EVAL_POINTS]]
    aux = splits.auxiliary
    perm = torch.randperm(aux.numel(), generator=generator(seed, "tuning-aux")).to(aux.device)
    half = aux.numel() // 2
    method_aux, holdout = aux[perm[:half]], aux[perm[half:]]
    if holdout.numel() == 0:
        raise SuiteError(
            "splits.auxiliary", "tuning needs held-out validation data: auxiliary is empty"
        )
    empty = splits.target.new_empty(0)
    vsplits = Splits(
        target=splits.target,
        forget=v,
        retain=retain,
        nonmember=empty,
        test=empty,
        shadow_in=empty,
        shadow_out=empty,
        auxiliary=method_aux,
    )
    order = v[torch.randperm(v.numel(), generator=generator(seed, "tuning-stream")).to(v.device)]
    steps = list(torch.tensor_split(order, min(task.request.steps, max(1, v.numel()))))
    vtask = dataclasses.replace(
        task, key=f"{task.key}:validation:{seed}", splits=vsplits, forget_steps=steps
    )
    data = ValidationData(vtask, v, retain_eval, holdout, method_aux)
    data.record(method_aux)  # handed to the method beyond its training set
    return data


@torch.no_grad()
def _losses(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example cross-entropy and correctness (1.0 / 0.0), in batches of 1024."""
    model.eval()
    losses, correct = [x.new_empty(0)], [x.new_empty(0)]
    for start in range(0, x.shape[0], 1024):
        logits = model(x[start : start + 1024]).float()
        labels = y[start : start + 1024]
        losses.append(nn.functional.cross_entropy(logits, labels, reduction="none"))
        correct.append((logits.argmax(1) == labels).float())
    return torch.cat(losses), torch.cat(correct)


def _auc(members: torch.Tensor, others: torch.Tensor) -> float:
    """P(loss of a member < loss of a non-member) (ties count half)."""
    if members.numel() == 0 or others.numel() == 0:
        return 0.5
    diff = others[None, :] - members[:, None]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def measure(model: nn.Module, data: ValidationData) -> dict[str, float]:
    """Accuracy on H, V, E and the loss-threshold membership AUC of V against H."""
    task = data.task
    out = {}
    losses = {}
    for name, idx in (("val", data.holdout), ("forget", data.forget), ("retain", data.retain_eval)):
        data.record(idx)
        losses[name], correct = _losses(model, task.x[idx], task.y[idx])
        out[f"{name}_accuracy"] = float(correct.mean()) if idx.numel() else 0.0
    out["membership_auc"] = _auc(losses["forget"], losses["val"])
    return out


def avg_gap(model: dict[str, float], reference: dict[str, float]) -> tuple[float, dict[str, float]]:
    """The objective: the mean absolute gap to the reference, and each gap."""
    gaps = {f"{k}_gap": abs(model[k] - reference[k]) for k in reference}
    return sum(gaps.values()) / len(gaps), gaps
