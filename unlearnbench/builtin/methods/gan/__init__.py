"""``gan``: GAN-based data deletion with WGAN-GP on sorted posteriors (seed paper 000).

The trained model is the generator; a WGAN-GP critic on sorted posteriors tries
to tell its outputs on the forget set from a frozen copy's outputs on third-party
data, until the forget set looks like data the model never saw. Modules:
:mod:`.params`, :mod:`.critic`, :mod:`.unlearning` (the training loop). The
losses, updates, stopping rule and costs: docs/methods.md, "GAN unlearning".
"""

from __future__ import annotations

from unlearnbench import MethodSpec, hookimpl
from unlearnbench.builtin.methods.gan.params import PARAMS
from unlearnbench.builtin.methods.gan.unlearning import (
    GanState,
    GanUnlearning,
    create,
    retain_subset,
)

__all__ = ["PARAMS", "GanState", "GanUnlearning", "create", "retain_subset"]


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="gan",
            create=create,
            params=PARAMS,
            description=(
                "GAN unlearning (seed 000): WGAN-GP critic on sorted posteriors makes the "
                "forget set's outputs look like non-member outputs; α trades deletion "
                "against CE on a 1% retain subset."
            ),
        )
    ]
