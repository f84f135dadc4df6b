"""Name -> spec tables, with errors that say where things came from.

The registry is plain data: it knows nothing of pluggy. :mod:`unlearnbench.host.manager`
fills it from the hooks (``collect_registry``); the runner and the suite parser
read it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Generic, Literal, TypeVar

from unlearnbench.specs import (
    AnySpec,
    ArchitectureSpec,
    DatasetSpec,
    EvaluatorSpec,
    MethodSpec,
    UnlearnbenchError,
)

Kind = Literal["dataset", "architecture", "method", "evaluator"]
KINDS: tuple[Kind, ...] = ("dataset", "architecture", "method", "evaluator")
SPEC_TYPES: dict[Kind, type] = {
    "dataset": DatasetSpec,
    "architecture": ArchitectureSpec,
    "method": MethodSpec,
    "evaluator": EvaluatorSpec,
}
S = TypeVar("S", DatasetSpec, ArchitectureSpec, MethodSpec, EvaluatorSpec)


class RegistryError(UnlearnbenchError):
    """A collision, an unknown name or a malformed spec."""


@dataclass(frozen=True)
class Origin:
    """Where a spec came from: the plugin and, for installed ones, its distribution."""

    plugin: str
    distribution: str = "unlearnbench"
    version: str = ""

    def __str__(self) -> str:
        dist = f"{self.distribution} {self.version}".strip()
        return f"plugin {self.plugin!r} ({dist})"


@dataclass(frozen=True)
class RegisteredSpec(Generic[S]):
    """A spec as registered: the record a plugin's hook returned and where it came from."""

    spec: S
    origin: Origin


@dataclass
class Registry:
    """All registered datasets, architectures, methods and evaluators."""

    tables: dict[Kind, dict[str, RegisteredSpec]] = field(
        default_factory=lambda: {kind: {} for kind in KINDS}
    )

    def add(self, kind: Kind, spec: AnySpec, origin: Origin) -> None:
        expected = SPEC_TYPES[kind]
        if not isinstance(spec, expected):
            raise RegistryError(
                f"{origin} returned {type(spec).__name__} from its {kind} hook; "
                f"expected {expected.__name__}"
            )
        if not spec.name or not spec.name.replace("_", "").replace("-", "").isalnum():
            raise RegistryError(f"{origin} registered a {kind} with an invalid name {spec.name!r}")
        table = self.tables[kind]
        if spec.name in table:
            first = table[spec.name].origin
            raise RegistryError(
                f"{kind} {spec.name!r} is registered twice: by {first} and by {origin}. "
                f"Block one of them with UNLEARNBENCH_BLOCK_PLUGINS."
            )
        table[spec.name] = RegisteredSpec(spec, origin)

    def entry(self, kind: Kind, name: str) -> RegisteredSpec:
        table = self.tables[kind]
        if name not in table:
            raise RegistryError(unknown_name_message(kind, name, list(table)))
        return table[name]

    def get(self, kind: Kind, name: str) -> AnySpec:
        return self.entry(kind, name).spec

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.tables[kind])

    def entries(self, kind: Kind) -> Iterator[RegisteredSpec]:
        for name in self.names(kind):
            yield self.tables[kind][name]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    close = get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(sorted(known)) or "none registered"
    return f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}."
