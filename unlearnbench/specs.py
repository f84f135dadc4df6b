"""The types plugins hand to the host, and the protocols their objects follow.

Registration hooks return lists of these specs. Specs are cheap to build: they
name a plugin, declare its parameters and point at a factory; nothing heavy
(data, models, torch) is touched until the runner calls the factory. This module
must not import torch: the spec types are re-exported by ``unlearnbench``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch
    from torch import nn

    from unlearnbench.task import Task
    from unlearnbench.training import TrainStats

Direction = Literal["higher", "lower", "none"]
_PARAM_TYPES = (bool, int, float, str, list)


class UnlearnbenchError(Exception):
    """The base of every error unlearnbench raises on purpose (a bad suite, an
    unknown plugin, an invalid parameter, a damaged store, ...).

    ``except UnlearnbenchError`` catches them all; each subclass also keeps the
    built-in base it has always had (``ValueError`` for bad values), so
    existing ``except ValueError`` code still works.
    """


class ParamError(UnlearnbenchError, ValueError):
    """A parameter value does not fit its declaration."""


@dataclass(frozen=True)
class Param:
    """One parameter a plugin accepts from a suite file.

    ``type`` is inferred from ``default`` when not given. Integers are accepted
    where floats are declared; a list parameter accepts a list of scalars.
    ``choices`` restricts the allowed values. ``minimum`` / ``maximum`` bound a
    number (each item of a list), inclusive unless ``exclusive_minimum`` /
    ``exclusive_maximum``; float values must always be finite (no nan, no inf).
    The host checks every value before anything trains, so a plugin needs no
    range checks of its own.

    ``tunable`` marks a parameter ``unlearnbench tune`` may search (see
    :mod:`unlearnbench.execution.tuning`); the default stays the reference
    code's value. The range searched is ``choices`` when given, else
    ``search_range`` (a narrower ``(low, high)`` inside the valid bounds, for a
    parameter whose valid range holds a special value such as ``0: never
    stop``), else ``[minimum, maximum]``; ``log`` searches it on a log scale
    (its low end must then be > 0). A tunable number without a finite range, or
    with an empty one, is refused when the spec is built, so at registration.
    """

    name: str
    default: Any
    help: str = ""
    type: Any = None  # one of bool, int, float, str, list; None: the default's type
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    tunable: bool = False
    log: bool = False
    search_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.tunable:
            self.tuning_range()  # raises ValueError on a tunable without a usable range
        elif self.log or self.search_range is not None:
            raise ValueError(f"parameter {self.name!r}: log / search_range need tunable=True")

    def tuning_range(self) -> tuple[Any, ...]:
        """What a tuner searches: ``("choices", c1, c2, ...)`` or ``(low, high)``.

        Raises ``ValueError`` naming the parameter when a tunable has none.
        """
        where = f"tunable parameter {self.name!r}"
        if self.choices:
            if self.log or self.search_range is not None:
                raise ValueError(f"{where}: choices take no log or search_range")
            return ("choices", *self.choices)
        if self.kind not in (int, float):
            raise ValueError(f"{where}: a {self.kind.__name__} is tunable only with choices")
        low, high = self.search_range or (self.minimum, self.maximum)
        if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
            raise ValueError(
                f"{where}: needs both minimum and maximum (or a search_range) as its range"
            )
        if not low < high:
            raise ValueError(f"{where}: empty range [{low:g}, {high:g}]")
        if self.log and low <= 0:
            raise ValueError(f"{where}: a log range must start above 0, got {low:g}")
        for end in (low, high):  # both ends are searched, so both must be valid values
            try:
                self._check_number(float(end))
            except ParamError as exc:
                raise ValueError(f"{where}: range end {exc}") from None
        return (low, high)

    @property
    def kind(self) -> type:
        kind = self.type if self.type is not None else type(self.default)
        if kind not in _PARAM_TYPES:
            raise TypeError(f"parameter {self.name!r}: unsupported type {kind.__name__}")
        return kind

    @property
    def bounds_text(self) -> str:
        """The valid range in interval notation (``(0, inf)``, ``[1, 100]``), or ``""``."""
        if self.minimum is None and self.maximum is None:
            return ""
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        left = "(" if self.minimum is None or self.exclusive_minimum else "["
        right = ")" if self.maximum is None or self.exclusive_maximum else "]"
        return f"{left}{low}, {high}{right}"

    def coerce(self, value: Any) -> Any:
        """Return ``value`` checked against the declaration, or raise ParamError."""
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ParamError(f"expected {kind.__name__}, got {type(value).__name__} ({value!r})")
        if self.choices and value not in self.choices:
            raise ParamError(f"{value!r} is not one of {list(self.choices)}")
        for item in value if isinstance(value, list) else [value]:
            self._check_number(item)
        return value

    def _check_number(self, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"must be a finite number, got {value!r}")
        low, high = self.minimum, self.maximum
        below = low is not None and (value <= low if self.exclusive_minimum else value < low)
        above = high is not None and (value >= high if self.exclusive_maximum else value > high)
        if below or above:
            raise ParamError(f"{value!r} is outside the valid range {self.bounds_text}")


def resolve_params(declared: Sequence[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``given``; unknown names and bad values raise ParamError.

    The error message starts with the offending parameter's name so callers can
    prefix the suite key.
    """
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        from difflib import get_close_matches

        hints = []
        for name in unknown:
            close = get_close_matches(name, list(by_name), n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        known = ", ".join(sorted(by_name)) or "none"
        raise ParamError(f"unknown parameter {', '.join(hints)}; known: {known}")
    resolved: dict[str, Any] = {}
    for p in declared:
        if p.name in given:
            try:
                resolved[p.name] = p.coerce(given[p.name])
            except ParamError as exc:
                raise ParamError(f"{p.name}: {exc}") from None
        else:
            resolved[p.name] = p.default
    return resolved


METRIC_ROLES = ("", "utility", "forgetting", "attack", "attack_strength", "speed", "cost")


@dataclass(frozen=True)
class Metric:
    """A named measurement with the direction in which it is better, and its role.

    ``direction``: ``higher`` or ``lower`` is better, or ``none``: judged by its
    distance to the reference (retrain), never maximised or minimised (attack
    rates, forget accuracy: declare a ``<name>_gap`` metric beside it).

    ``role`` tells reports what kind of number it is, so they treat a
    third-party evaluator's metrics like built-in ones: ``utility`` (the
    model's quality on held-out test data: a cell far below the original is
    flagged collapsed), ``forgetting``, ``attack`` (an attack's result on the evaluated
    model), ``attack_strength`` (how well that attack tells the *original*
    model's members from non-members, or whether the model the method
    unlearns from holds what the attack looks for), ``speed``, ``cost``, or ``""``.

    An ``attack_strength`` metric sets ``informative_above``: where its mean in
    a group is below that value, the ``attack`` metrics of the same evaluator
    measure nothing there and reports say so instead of ranking them. A
    strength that differs between a group's rows (one measured on each
    method's own trained model) marks only the rows below it, unless every
    row is.

    ``avg_gap``: the board's Avg. Gap (SalUn's, Fan et al. 2024) averages this
    metric's gap to the reference (the built-in accuracies on test, retain and
    forget data declare it). ``mia_gap``: a membership-attack rate that may
    stand for the Avg. Gap's one attack term; of those a board holds, only the
    lowest rank counts, so two attacks measuring the same share count once
    (the built-in MIA-Efficacy is 0, the shadow-model attack's FNR 1). By
    default a metric is in neither; a third-party metric declaring them counts
    exactly like a built-in one.
    """

    name: str
    direction: Direction
    unit: str = ""
    help: str = ""
    role: str = ""
    informative_above: float | None = None
    avg_gap: bool = False
    mia_gap: int | None = None

    def __post_init__(self) -> None:
        if self.role not in METRIC_ROLES:
            raise ValueError(f"metric {self.name!r}: role must be one of {METRIC_ROLES}")
        if (self.role == "attack_strength") != (self.informative_above is not None):
            raise ValueError(
                f"metric {self.name!r}: informative_above goes with role 'attack_strength'"
            )
        if self.avg_gap and self.mia_gap is not None:
            raise ValueError(f"metric {self.name!r}: set avg_gap or mia_gap, not both")

    def meta(self) -> dict[str, Any]:
        """The declaration stored with each value, which the reports read: the role,
        ``avg_gap`` and the optional fields that are set."""
        out: dict[str, Any] = {"role": self.role, "avg_gap": self.avg_gap}
        if self.informative_above is not None:
            out["informative_above"] = self.informative_above
        if self.mia_gap is not None:
            out["mia_gap"] = self.mia_gap
        return out


@dataclass
class DatasetArrays:
    """A data set loaded into memory: one pool of examples the protocol splits.

    ``x`` is a float32 tensor of shape ``(n, *input_shape)`` (already
    normalised), ``y`` an int64 tensor of labels in ``[0, num_classes)``.
    """

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    input_shape: tuple[int, ...]
    description: str = ""
    normalisation: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Registers a data set. ``load(params)`` returns a :class:`DatasetArrays`."""

    name: str
    load: Callable[[Mapping[str, Any]], DatasetArrays]
    params: tuple[Param, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ArchitectureSpec:
    """Registers a model architecture.

    ``build(input_shape, num_classes, params)`` returns a fresh ``nn.Module``
    mapping a batch ``(n, *input_shape)`` to logits ``(n, num_classes)``. The
    caller seeds torch before calling it, so initialisation is reproducible.
    """

    name: str
    build: Callable[[tuple[int, ...], int, Mapping[str, Any]], nn.Module]
    params: tuple[Param, ...] = ()
    description: str = ""


@dataclass
class Unlearned:
    """What a method's ``unlearn`` returns.

    ``model`` maps inputs to logits (for ensembles: log of aggregated
    posteriors). ``state`` is handed to the next ``unlearn`` of a request
    stream. ``costs`` are the method's own counters (for example
    ``blocks_retrained``, ``retrain_sample_epochs``, ``storage_bytes``,
    ``prediction_cost``); ``series`` holds curves worth plotting (for example
    DeepObliviate's residual memory).

    Over a request stream the host combines each cost by the suffix of its
    name (:func:`combine_stream_costs`): work counters are summed; ``_bytes``
    and ``_cost`` (sizes) keep their largest value; ``_speedup`` and
    ``_ratio`` take the geometric mean (ratios are never averaged
    arithmetically), and the host records them with the role ``speed``, so
    boards aggregate them over seeds geometrically too; ``_final`` keeps the
    last step's value.
    """

    model: nn.Module
    state: Any = None
    costs: dict[str, float] = field(default_factory=dict)
    series: dict[str, list[float]] = field(default_factory=dict)


RATIO_SUFFIXES = ("_speedup", "_ratio")
"""Counter names ending so are ratios: combined and aggregated geometrically."""

STREAM_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("_bytes", "_cost"), "max"),
    (RATIO_SUFFIXES, "geometric"),
    (("_final",), "last"),
)


def combine_stream_costs(steps: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """One cost table for a stream of deletions, by the name-suffix rules above."""
    combined: dict[str, float] = {}
    names = list(dict.fromkeys(name for step in steps for name in step))
    for name in names:
        values = [float(step[name]) for step in steps if name in step]
        rule = next((r for suffixes, r in STREAM_RULES if name.endswith(suffixes)), "sum")
        if rule == "max":
            combined[name] = max(values)
        elif rule == "geometric":  # ratios: never an arithmetic mean
            combined[name] = (
                math.exp(sum(map(math.log, values)) / len(values))
                if all(v > 0 for v in values)
                else sum(values) / len(values)
            )
        elif rule == "last":
            combined[name] = values[-1]
        else:
            combined[name] = sum(values)
    return combined


class MethodContext(Protocol):
    """What the host offers methods and evaluators while they run a task.

    - ``device``: where the task's tensors live.
    - ``original()``: a fresh copy of the task's standard trained model (trained
      once per task on ``target`` with the recipe and seed, cached).
    - ``train(model, indices, ...)``: the shared training loop on the task data.
    - ``cached(name, params, build)``: a content-addressed artifact for this
      task; ``build()`` returns a dict of tensors and plain values and runs only
      when no valid cached copy exists. The work its build counted travels
      with it: loading it counts that work again.
    - ``add_work(sample_passes)``: count work done outside ``ctx.train`` (one
      sample-pass = one forward and backward pass of one example), so every
      method's cost is also known in a machine-independent unit.
    """

    device: torch.device

    def add_work(self, sample_passes: float) -> None: ...

    def original(self) -> nn.Module: ...

    def train(
        self,
        model: nn.Module,
        indices: torch.Tensor,
        *,
        seed_label: object = "train",
        epochs: int | None = None,
        exclude: torch.Tensor | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        labels: torch.Tensor | None = None,
    ) -> TrainStats: ...

    def cached(
        self, name: str, params: Mapping[str, Any], build: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]: ...


@runtime_checkable
class Method(Protocol):
    """An unlearning method: ``fit`` once per task, then ``unlearn`` per deletion.

    ``fit`` may train (or fetch the shared trained model through
    ``ctx.original()``) and returns whatever state ``unlearn`` needs. It must
    not look at the forget set. ``unlearn`` is the timed step: it receives the
    indices (into ``task.x``) to delete and returns an :class:`Unlearned`.

    Work is counted in sample-passes (one forward and backward pass of one
    example): ``ctx.train`` counts its own; a method with a loop of its own
    calls ``ctx.add_work(n)`` for it (a GAN's critic steps included).

    A method that changes the training procedure (SISA's shards,
    DeepObliviate's stored blocks) may also define ``naive(state, forget,
    task, ctx) -> Unlearned``: exact retraining *under its own procedure*
    without ``forget`` (all the points the request deletes), built from
    ``fit``'s state without changing it, and cached through ``ctx.cached``
    keyed by the procedure's parameters only, so cells that differ in an
    unlearning-only parameter share it. The host compares the method with it
    as well as with the reference (``naive_consistency``, ...), so "how good
    is the shortcut" and "how good is the procedure" are told apart.

    Such a method may also define ``trained(state, task, ctx) -> nn.Module``:
    the model it unlearns *from*, built from ``fit``'s state without changing
    it (SISA: the ensemble of every shard before any deletion; DeepObliviate:
    its stored training's P_B), a snapshot that later ``unlearn`` calls leave
    as it is. The host calls it after ``fit`` and before the first
    ``unlearn`` and hands it to evaluators as ``inputs.trained``, so a
    "before" is measured on that model (a backdoor the method's own training
    never learned verifies nothing). A method without it unlearns from the
    shared standard model, ``ctx.original()``.
    """

    def fit(self, task: Task, ctx: MethodContext) -> Any: ...

    def unlearn(
        self, state: Any, forget: torch.Tensor, task: Task, ctx: MethodContext
    ) -> Unlearned: ...


SizeCheck = Callable[[Mapping[str, Any], Mapping[str, int]], None]
"""``check(params, sizes)``: see :class:`MethodSpec`."""


@dataclass(frozen=True)
class MethodSpec:
    """Registers an unlearning method. ``create(params)`` returns a :class:`Method`.

    ``check(params, sizes)``, optional, refuses parameters the task's data
    cannot satisfy (more SISA shards than target points, say): what the
    declared bounds of :class:`Param` cannot know. The host calls it while it
    checks a suite against the real data (``run`` and ``run --check``), before
    anything trains, once per distinct task shape, with the resolved
    parameters and ``sizes``: the point counts of the task's splits (``target``,
    ``forget``, ``retain``, ``nonmember``, ``test``, ``shadow_in``,
    ``shadow_out``). It raises :class:`ParamError` with a message that starts
    with the parameter's name (``"shards: ..."``); the host reports it under the
    method's suite key. It must be cheap and must not touch data or torch.
    """

    name: str
    create: Callable[[Mapping[str, Any]], Method]
    params: tuple[Param, ...] = ()
    description: str = ""
    check: SizeCheck | None = None


@dataclass
class Replicate:
    """One training randomisation of a cell, for evaluators that need distributions
    over models (U-LiRA, the NeurIPS 2023 challenge score).

    ``original``: trained on the task's target set with the replicate's own seed
    (initialisation and batch order); ``unlearned``: the cell's method run on it
    (``fit`` and every ``unlearn`` step of the request's stream); ``retrained``:
    the reference method (retrain) run on it. ``naive``: the method's exact
    retraining under its own procedure (its ``naive``, see :class:`Method`) from
    the replicate's ``fit``, built only when asked for (``replicates(n, label,
    naive=True)``) and only for a method that defines one, else ``None``.
    ``of_reference``: the cell's method is the reference itself, so
    ``unlearned`` and ``retrained`` are one model (an evaluator comparing the
    two takes the retrained side from replicates of another label). ``work``:
    the sample-passes all of them took (counted again when they come from the
    artifact cache, as ``ctx.cached`` counts), for the evaluator to report; the
    host never counts it into the method's costs.
    """

    original: nn.Module
    unlearned: nn.Module
    retrained: nn.Module
    work: float
    naive: nn.Module | None = None
    of_reference: bool = False


class ReplicateSource(Protocol):
    """``inputs.replicates``: ``n`` :class:`Replicate` of the cell for ``label``,
    with their ``naive`` models when ``naive`` (see :class:`EvaluationInputs`)."""

    def __call__(self, n: int, label: object, *, naive: bool = False) -> list[Replicate]: ...


@dataclass
class EvaluationInputs:
    """Everything an evaluator may look at for one cell.

    ``original`` is the model trained on the whole target set, ``unlearned`` the
    method's result, ``reference`` the reference method's result (retrain by
    default). ``costs`` holds the method's counters plus ``unlearn_seconds``,
    ``fit_seconds``, ``reference_seconds`` (the reference re-timed in the same
    run), ``unlearn_sample_passes``, ``fit_sample_passes`` and
    ``reference_sample_passes``. ``naive`` is the method's exact retraining
    under its own training procedure when it defines one (see :class:`Method`),
    else ``None``; its work is ``costs["naive_sample_passes"]``.

    ``trained`` is the model the method unlearns *from*: its own trained model
    where it defines ``trained`` (SISA's ensemble before any deletion,
    DeepObliviate's stored training), else ``original`` (filled in when not
    given). Compare a "before" with the "after" on it: a trace the method's
    starting model never held cannot be forgotten. ``original`` stays the
    standard model, the same for every method of a task (the board's
    ``original`` row, task-level attack strengths).

    ``trained_on(indices, label)``, set by the host (``None`` where a caller
    builds inputs without it), trains a model *the way the method trains*: it
    fits the cell's method on a copy of the task whose target set is
    ``indices`` (nothing to forget; its own training seed, derived from the
    task's and ``label``) and returns its ``trained`` model, or ``None`` for a
    method that defines no ``trained`` (it trains the standard way: use the
    standard recipe). A shadow model of a membership attack is trained so
    (ML-Leaks' premise: the shadow is trained like the target). The fit is
    cached through the method's own artifacts, so cells sharing its training
    procedure share it; its work is never counted into the method's costs.

    ``replicates(n, label)``, set by the host (``None`` where a caller builds
    inputs without it), returns ``n`` :class:`Replicate` of this cell: the same
    data, splits, forget set and request stream, each trained with its own
    training randomisation, seed ``derive_seed(task.seed, "replicate", label,
    i)`` for replicate ``i``. The same ``(label, i)`` gives the same replicate,
    so evaluators that pass the same ``label`` share them (the built-in ones
    use ``"replicate"``); replicates are cached per method, so re-runs and
    other cells of the method load them instead of training. Costly: each
    replicate trains an original, runs the method and retrains.
    ``replicates(n, label, naive=True)`` also builds each replicate's
    ``naive`` model (a method without ``naive`` gets ``None``): asked for only
    by evaluators that compare the method with its own naive retraining.
    """

    task: Task
    original: nn.Module
    unlearned: nn.Module
    reference: nn.Module
    costs: Mapping[str, float]
    series: Mapping[str, list[float]] = field(default_factory=dict)
    naive: nn.Module | None = None
    replicates: ReplicateSource | None = None
    trained: nn.Module = None  # type: ignore[assignment]  # None: original (__post_init__)
    trained_on: Callable[[torch.Tensor, object], nn.Module | None] | None = None

    def __post_init__(self) -> None:
        if self.trained is None:
            self.trained = self.original

    def require_replicates(self, evaluator: str) -> ReplicateSource:
        """``replicates``, or a ``ValueError`` naming ``evaluator`` where the host
        (a caller building inputs by hand) gives none."""
        if self.replicates is None:
            raise ValueError(
                f"{evaluator} needs inputs.replicates (models of the method from several "
                "training randomisations), which this host did not provide"
            )
        return self.replicates


@dataclass
class Evaluation:
    """An evaluator's result: metric values and optional curves (ROC, ...)."""

    metrics: dict[str, float]
    series: dict[str, list[float]] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Measures one cell. Returns ``{metric: value}`` or an :class:`Evaluation`."""

    def evaluate(
        self, inputs: EvaluationInputs, ctx: MethodContext
    ) -> Mapping[str, float] | Evaluation: ...


@dataclass(frozen=True)
class EvaluatorSpec:
    """Registers an evaluator and declares every metric it can return."""

    name: str
    create: Callable[[Mapping[str, Any]], Evaluator]
    metrics: tuple[Metric, ...]
    params: tuple[Param, ...] = ()
    description: str = ""


AnySpec = DatasetSpec | ArchitectureSpec | MethodSpec | EvaluatorSpec
