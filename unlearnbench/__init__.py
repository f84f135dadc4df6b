"""unlearnbench: a plugin-based benchmark for machine unlearning.

The public API for plugin authors is what this module re-exports plus
``unlearnbench.task``, ``unlearnbench.training`` and ``unlearnbench.testing``.
Importing this module does not import torch.
"""

from unlearnbench._markers import hookimpl
from unlearnbench.specs import (
    ArchitectureSpec,
    DatasetArrays,
    DatasetSpec,
    Evaluation,
    EvaluatorSpec,
    MethodSpec,
    Metric,
    Param,
    Unlearned,
)

__version__ = "0.1.0"

__all__ = [
    "ArchitectureSpec",
    "DatasetArrays",
    "DatasetSpec",
    "Evaluation",
    "EvaluatorSpec",
    "MethodSpec",
    "Metric",
    "Param",
    "Unlearned",
    "__version__",
    "hookimpl",
]
