"""DeepObliviate's parameters (:data:`PARAMS`) and the validated :class:`Settings` of a cell.

The defaults follow paper 002 where it is explicit; each choice it leaves open is a
parameter (docs/methods.md, "DeepObliviate", says which and why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from unlearnbench import Param
from unlearnbench.builtin.methods.deepobliviate import residual_memory as rm
from unlearnbench.task import Task

StateDict = dict[str, torch.Tensor]
OptimizerState = list[dict[str, Any]]
ARTIFACT = "deepobliviate-stored-training"
ARTIFACT_VERSION = 1
NAIVE_ARTIFACT = "deepobliviate-naive-retraining"

PARAMS = (
    Param(
        "blocks",
        100,
        "number B of label-balanced blocks the target set is trained in",
        minimum=1,
    ),
    Param(
        "epochs_per_block",
        0,
        "epochs of training per block (0: the recipe's epochs)",
        minimum=0,
    ),
    Param(
        "epsilon",
        0.1,
        "stop when the fitted power law's |slope| at the last block is < ε (0: never stop); "
        "tuned on a log scale over [1e-3, 1]",
        minimum=0.0,
        tunable=True,
        log=True,
        search_range=(1e-3, 1.0),
    ),
    Param(
        "normalise",
        "first",
        "scale of Δ before fitting: first (÷Δ_d), per_param (÷ parameter count), none (raw)",
        choices=rm.NORMALISATIONS,
    ),
    Param(
        "power_law_x",
        "block_order",
        "x of the fitted a·x^(−h)+b: block_order (the block's 1-based order among the B, "
        "as the paper) or from_one (x = 1 at the first tested block)",
        choices=rm.POWER_LAW_X,
    ),
    Param(
        "stop_guard",
        "not_rising",
        "not_rising: never stop while Δ rises (fitted a < 0 or newest Δ a new maximum); "
        "none: the paper's |slope| < ε alone",
        choices=rm.GUARDS,
    ),
    Param(
        "min_blocks",
        11,
        "retrain at least this many blocks before testing the stopping rule (11: once DFA "
        "is defined)",
        minimum=2,
    ),
    Param(
        "dfa_min_points",
        11,
        "shorter Δ series use fallback_h instead of nolds.dfa (nolds needs 4)",
        minimum=4,
    ),
    Param(
        "fallback_h",
        1.0,
        "power-law exponent h used where nolds.dfa is not (short series, h ≤ 0)",
        minimum=0.0,
        exclusive_minimum=True,
    ),
    Param(
        "series_start",
        "first_block",
        "where the tested Δ series starts when points lie in several blocks: "
        "first_block (d) or last_block (the last affected block)",
        choices=("first_block", "last_block"),
    ),
    Param(
        "max_blocks",
        0,
        "cap on the blocks retrained per deletion (0: no cap, as the paper)",
        minimum=0,
    ),
    Param(
        "optimizer_state",
        "fresh",
        "fresh: new optimizer per block (no extra storage); persist: store optimizer state",
        choices=("fresh", "persist"),
    ),
    Param(
        "optimizer",
        "recipe",
        "recipe: the task's optimizer; adam; sgd: plain SGD without momentum (stateless)",
        choices=("recipe", "adam", "sgd"),
    ),
    Param("lr", 0.0, "learning rate of block training (0: the recipe's)", minimum=0.0),
)


@dataclass(frozen=True)
class Settings:
    """Validated parameters of one ``deepobliviate`` cell."""

    blocks: int
    epochs_per_block: int
    epsilon: float
    normalise: str
    power_law_x: str
    stop_guard: str
    min_blocks: int
    dfa_min_points: int
    fallback_h: float
    series_start: str
    max_blocks: int
    optimizer_state: str
    optimizer: str
    lr: float

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Settings:
        """Defaults overlaid with ``params``, each checked against its declaration."""
        values = {}
        for p in PARAMS:
            try:
                values[p.name] = p.coerce(params.get(p.name, p.default))
            except ValueError as exc:
                raise ValueError(f"deepobliviate: parameter {p.name}: {exc}") from None
        return cls(**values)

    @property
    def rule(self) -> rm.StopRule:
        """The stopping rule these parameters define."""
        return rm.StopRule(
            epsilon=self.epsilon,
            min_points=self.min_blocks,
            dfa_min_points=self.dfa_min_points,
            fallback_h=self.fallback_h,
            power_law_x=self.power_law_x,
            guard=self.stop_guard,
        )

    def training_key(self, task: Task) -> dict[str, Any]:
        """What the stored training depends on (stopping parameters do not)."""
        return {
            "version": ARTIFACT_VERSION,
            "blocks": self.blocks,
            "epochs_per_block": self.epochs(task),
            "optimizer_state": self.optimizer_state,
            "optimizer": self.optimizer,
            "lr": self.lr,
        }

    def epochs(self, task: Task) -> int:
        return self.epochs_per_block or task.recipe.epochs

    @property
    def persist(self) -> bool:
        return self.optimizer_state == "persist"
