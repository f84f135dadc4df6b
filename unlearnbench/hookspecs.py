"""Every hook unlearnbench calls. The docstrings are the hook reference.

Each hook returns a list of cheap specs; the host collects the lists of every
registered plugin into one :class:`unlearnbench.host.registry.Registry`. New
arguments may be added to a hook later: pluggy lets an implementation accept any
subset of a hook's arguments, so existing plugins keep working.
"""

from __future__ import annotations

from unlearnbench._markers import hookspec

# The bodies are docstrings only: pluggy never calls a hook specification.
# mypy: disable-error-code="empty-body"
from unlearnbench.specs import ArchitectureSpec, DatasetSpec, EvaluatorSpec, MethodSpec


@hookspec
def unlearnbench_datasets() -> list[DatasetSpec]:
    """Return the data sets this plugin provides.

    Each :class:`~unlearnbench.specs.DatasetSpec` names a data set, declares
    its parameters and gives ``load(params) -> DatasetArrays``, which loads the
    whole pool of examples into memory. The protocol derives every split from
    that pool, so ``load`` must be deterministic for the same parameters.
    """


@hookspec
def unlearnbench_architectures() -> list[ArchitectureSpec]:
    """Return the model architectures this plugin provides.

    ``build(input_shape, num_classes, params)`` returns a fresh ``nn.Module``
    producing logits. The host seeds torch before each call.
    """


@hookspec
def unlearnbench_methods() -> list[MethodSpec]:
    """Return the unlearning methods this plugin provides.

    ``create(params)`` returns an object with ``fit(task, ctx)`` (may train;
    cached training goes through ``ctx``) and ``unlearn(state, forget, task,
    ctx) -> Unlearned`` (the timed step).
    """


@hookspec
def unlearnbench_evaluators() -> list[EvaluatorSpec]:
    """Return the evaluators this plugin provides.

    ``create(params)`` returns an object with ``evaluate(inputs, ctx)``, which
    returns a mapping of metric name to value (or an ``Evaluation`` with
    series). Every metric it may return is declared in the spec's ``metrics``.
    """
