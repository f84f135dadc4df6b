"""One warning per evaluator and model count when too few models make its statistic noisy.

LiRA's reference models, U-LiRA's and the unlearning score's replicates all
estimate per-point distributions from a handful of models; below
``FEW_MODELS`` each says so once per process (evaluators are created per cell).
"""

from __future__ import annotations

import logging

FEW_MODELS = 8
_warned: set[tuple[str, int]] = set()


def warn_few_models(log: logging.Logger, evaluator: str, models: int, why: str) -> None:
    """Log ``"<evaluator>: models=<models> <why>"`` once per (evaluator, models) below
    ``FEW_MODELS``; ``why`` says what becomes noisy and ends the sentence."""
    if models < FEW_MODELS and (evaluator, models) not in _warned:
        _warned.add((evaluator, models))
        log.warning("%s: models=%d %s", evaluator, models, why)
