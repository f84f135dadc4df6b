"""The GAN method's parameters (:data:`PARAMS`) and the check their bounds cannot express.

Where paper 000 is silent (its generator loss, the critic, the stopping rule) the
default and its alternative are parameters; docs/methods.md ("GAN unlearning")
says why each default was chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unlearnbench import Param

PARAMS: tuple[Param, ...] = (
    Param(
        "alpha",
        0.5,
        "weight α of the adversarial term in the generator loss (0 = fine-tune); "
        "tuned on a log scale over [0.01, 5]",
        minimum=0.0,
        tunable=True,
        log=True,
        search_range=(0.01, 5.0),
    ),
    Param(
        "alpha_weights",
        "adversarial",
        "adversarial: α·L_adv + CE; convex: α·L_adv + (1 − α)·CE",
        choices=("adversarial", "convex"),
    ),
    Param(
        "retain_fraction",
        0.01,
        "share of the retain set used for the CE term (fixed subset)",
        minimum=0.0,
        maximum=1.0,
    ),
    Param("retain_min", 64, "at least this many retain points in the CE subset", minimum=1),
    Param("batch_size", 64, "forget / non-member / retain batch size per step", minimum=1),
    Param("critic_steps", 5, "critic updates per generator update", minimum=1),
    Param("critic_warmup", 100, "critic updates before the first generator update", minimum=0),
    Param("gp_weight", 10.0, "gradient-penalty weight λ", minimum=0.0),
    Param(
        "lr",
        3e-4,
        "Adam learning rate of the generator; tuned on a log scale over [1e-5, 3e-3]",
        minimum=0,
        exclusive_minimum=True,
        tunable=True,
        log=True,
        search_range=(1e-5, 3e-3),
    ),
    Param("critic_lr", 1e-3, "Adam learning rate of the critic", minimum=0, exclusive_minimum=True),
    Param(
        "beta1",
        0.5,
        "Adam β1 of both optimisers (β2 = 0.9); WGAN-GP uses 0 or 0.5",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    ),
    Param("critic_width", 64, "hidden width of the critic MLP (two hidden layers)", minimum=1),
    Param(
        "threshold", 0.03, "stop when the critic's distance estimate stays below this", minimum=0.0
    ),
    Param("patience", 3, "consecutive checks below threshold needed to stop", minimum=1),
    Param("check_every", 10, "generator steps between distance checks", minimum=1),
    Param("min_steps", 50, "generator steps before stopping is allowed", minimum=0),
    Param("max_steps", 1000, "cap on generator steps per deletion", minimum=1),
)


def check_params(params: Mapping[str, Any]) -> None:
    """What the declared bounds cannot say: α ≤ 1 when the weights are convex."""
    if params["alpha_weights"] == "convex" and params["alpha"] > 1:
        raise ValueError(f"gan: parameter 'alpha' must be <= 1 when convex, got {params['alpha']}")
