"""The plugin module the ``unlearnbench`` entry point names.

unlearnbench imports this module and calls its hook implementations; this one
registers one :class:`~unlearnbench.MethodSpec` per baseline. Specs are cheap:
nothing trains until the runner calls a spec's ``create``.
"""

from __future__ import annotations

from unlearnbench import MethodSpec, hookimpl

from unlearnbench_baselines import (
    amnesiac,
    bad_teacher,
    boundary_expanding,
    boundary_shrink,
    cf_k,
    conv_transpose,
    eu_k,
    finetune,
    fisher,
    gradient_ascent,
    influence,
    l1_sparse,
    msg,
    neggrad_plus,
    random_label,
    salun,
    scrub,
    ssd,
    unsir,
)

METHOD_MODULES = (
    finetune,
    gradient_ascent,
    neggrad_plus,
    random_label,
    scrub,
    salun,
    l1_sparse,
    boundary_shrink,
    ssd,
    bad_teacher,
    amnesiac,
    cf_k,
    eu_k,
    unsir,
    boundary_expanding,
    fisher,
    influence,
    msg,
    conv_transpose,
)


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [module.SPEC for module in METHOD_MODULES]
