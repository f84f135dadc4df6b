"""The model SISA deploys: the shard models aggregated by vote or mean posterior.

``forward`` gives the log of the aggregate (argmax is the aggregate label);
membership attacks read ``posteriors``, the mean softmax, whatever the vote.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PROBABILITY_FLOOR = 1e-8


class ShardEnsemble(nn.Module):
    """Aggregates shard models; ``forward`` gives the log of the aggregated posteriors.

    ``"vote"``: the share of models voting for each class (ties go to the
    lowest class, as ``argmax`` returns the first maximum). ``"mean"``: the
    mean of the models' softmax posteriors. Floored at ``floor`` before the log.
    """

    def __init__(
        self,
        models: list[nn.Module],
        num_classes: int,
        aggregation: str = "vote",
        floor: float = PROBABILITY_FLOOR,
    ) -> None:
        super().__init__()
        if not models:
            raise ValueError("a shard ensemble needs at least one model")
        if aggregation not in ("vote", "mean"):
            raise ValueError(f"aggregation must be 'vote' or 'mean', got {aggregation!r}")
        self.members = nn.ModuleList(models)
        self.num_classes = num_classes
        self.aggregation = aggregation
        self.floor = floor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = torch.zeros(x.shape[0], self.num_classes, device=x.device)
        for member in self.members:
            logits = member(x)
            if self.aggregation == "vote":
                total += F.one_hot(logits.argmax(1), self.num_classes).to(total.dtype)
            else:
                total += torch.softmax(logits, dim=1)
        return (total / len(self.members)).clamp_min(self.floor).log()

    def posteriors(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the members' softmax posteriors, whatever the aggregation:
        what membership attacks read (:func:`unlearnbench.training.predict_proba`)."""
        total = torch.zeros(x.shape[0], self.num_classes, device=x.device)
        for member in self.members:
            total += torch.softmax(member(x), dim=1)
        return total / len(self.members)
