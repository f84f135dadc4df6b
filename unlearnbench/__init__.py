"""unlearnbench: a plugin-based benchmark for machine unlearning.

``__all__`` below is the public API for plugin authors: the hook marker, the
spec types a plugin registers, the protocols its objects follow, the plain
task values and the errors. The rest of what a plugin may import lives in
``unlearnbench.specs``, ``.task_values``, ``.task``, ``.training``, ``.partition``,
``.seeding``, ``.hookspecs`` and, for its tests, ``unlearnbench.testing``.
Everything else (``host``, ``execution``, ``reports``, ``cli``) is internal.
Importing this module does not import torch.
"""

from unlearnbench._markers import hookimpl
from unlearnbench.specs import (
    ArchitectureSpec,
    DatasetArrays,
    DatasetSpec,
    Evaluation,
    EvaluationInputs,
    Evaluator,
    EvaluatorSpec,
    Method,
    MethodContext,
    MethodSpec,
    Metric,
    Param,
    ParamError,
    Replicate,
    ReplicateSource,
    UnlearnbenchError,
    Unlearned,
)
from unlearnbench.task_values import ForgetRequest, SplitSizes, TaskError, TrainRecipe

__version__ = "0.1.0"

__all__ = [
    "ArchitectureSpec",
    "DatasetArrays",
    "DatasetSpec",
    "Evaluation",
    "EvaluationInputs",
    "Evaluator",
    "EvaluatorSpec",
    "ForgetRequest",
    "Method",
    "MethodContext",
    "MethodSpec",
    "Metric",
    "Param",
    "ParamError",
    "Replicate",
    "ReplicateSource",
    "SplitSizes",
    "TaskError",
    "TrainRecipe",
    "UnlearnbenchError",
    "Unlearned",
    "__version__",
    "hookimpl",
]
