"""``deepobliviate``: stored training over blocks, retrain the affected ones, stitch the rest.

DeepObliviate (paper 002, Algorithm 1): train the target set in blocks and store
a checkpoint after each; a deletion retrains from the first affected block until
the residual memory is stationary, then stitches on the stored rest. Modules:
:mod:`.config` (parameters), :mod:`.blocks` (stored training), :mod:`.residual_memory`
(the maths: Δ, the DFA stopping rule, stitching), :mod:`.method` (fit, unlearn,
naive). The full description and its choices: docs/methods.md, "DeepObliviate".
"""

from __future__ import annotations

from unlearnbench import MethodSpec, hookimpl
from unlearnbench.builtin.methods.deepobliviate.blocks import DeepObliviateState
from unlearnbench.builtin.methods.deepobliviate.description import DESCRIPTION
from unlearnbench.builtin.methods.deepobliviate.method import DeepObliviate, create
from unlearnbench.builtin.methods.deepobliviate.settings import PARAMS, Settings

__all__ = ["PARAMS", "DeepObliviate", "DeepObliviateState", "Settings", "create"]


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="deepobliviate",
            create=create,
            params=PARAMS,
            description=DESCRIPTION,
        )
    ]
