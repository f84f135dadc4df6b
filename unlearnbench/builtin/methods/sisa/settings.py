"""SISA's parameters (:data:`PARAMS`, :class:`SisaSettings`) and the size check run before training.

Each choice the paper leaves open is a parameter; docs/methods.md ("SISA") says
which default was chosen and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from unlearnbench import Param
from unlearnbench.specs import ParamError

PARAMS = (
    Param("shards", 5, "number of shards S (one model each)", minimum=1),
    Param("slices", 5, "number of slices R per shard (one checkpoint each)", minimum=1),
    Param(
        "epochs",
        0,
        "epochs E over a whole shard, spread over slice steps; 0 = recipe's",
        minimum=0,
    ),
    Param(
        "aggregation",
        "vote",
        "how shard models are combined: majority vote or mean of posteriors",
        choices=("vote", "mean"),
    ),
    Param(
        "stacked",
        "auto",
        "train shards together with torch.func: "
        "auto (GPU, or MLP <= 20k parameters on CPU), on, off",
        choices=("auto", "on", "off"),
    ),
    Param(
        "partition",
        "shared",
        "shards drawn like request positions (shared) or from their own seed (private)",
        choices=("shared", "private"),
    ),
)


@dataclass(frozen=True)
class SisaSettings:
    """The method's parameters (see :data:`PARAMS`; the host checks their ranges)."""

    shards: int = 5
    slices: int = 5
    epochs: int = 0
    aggregation: str = "vote"
    stacked: str = "auto"
    partition: str = "shared"


def check_sizes(params: Mapping[str, Any], sizes: Mapping[str, int]) -> None:
    """Before training: every shard needs a point and each of its slices too
    (shards differ in size by at most one, so the smallest has target // S)."""
    shards, slices, target = params["shards"], params["slices"], sizes["target"]
    if shards > target:
        raise ParamError(f"shards: {shards} shards exceed the {target} target points")
    if shards >= 1 and slices > target // shards:
        raise ParamError(
            f"slices: {slices} slices exceed the {target // shards} points of the smallest "
            f"of {shards} shards of {target} target points"
        )
