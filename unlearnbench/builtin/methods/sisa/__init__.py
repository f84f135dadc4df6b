"""``sisa``: Sharded, Isolated, Sliced, Aggregated training (Bourtoule et al., S&P 2021).

S shard models, each trained incrementally over R slices with a checkpoint per
slice; deleting points retrains only the shards that held them, from the
checkpoint before their first affected slice; predictions aggregate the shards.
Modules: :mod:`.settings` (parameters), :mod:`.shards` (layout and slice training),
:mod:`.ensemble` (the aggregate model), :mod:`.method` (fit, unlearn, naive).
The choices where the paper leaves room: docs/methods.md, "SISA".
"""

from __future__ import annotations

from unlearnbench import MethodSpec, hookimpl
from unlearnbench.builtin.methods.sisa.ensemble import ShardEnsemble
from unlearnbench.builtin.methods.sisa.method import Sisa, create
from unlearnbench.builtin.methods.sisa.settings import PARAMS, SisaSettings, check_sizes
from unlearnbench.builtin.methods.sisa.shards import SisaState

__all__ = ["PARAMS", "ShardEnsemble", "Sisa", "SisaSettings", "SisaState", "create"]


@hookimpl
def unlearnbench_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="sisa",
            create=create,
            params=PARAMS,
            check=check_sizes,
            description=(
                "SISA (Bourtoule et al. 2021): S shard models trained over R slices with a "
                "checkpoint per slice; deletion retrains affected shards from the first "
                "affected slice; majority vote (or mean posterior) over shards."
            ),
        )
    ]
