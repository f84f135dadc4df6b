"""Tiny fixture plugins for the host's own tests (registered in-process)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from unlearnbench import DatasetArrays, DatasetSpec, MethodSpec, Param, hookimpl


class Exploding:
    """A method whose unlearning step always raises."""

    def fit(self, task: Any, ctx: Any) -> None:
        return None

    def unlearn(self, state: Any, forget: torch.Tensor, task: Any, ctx: Any) -> Any:
        raise RuntimeError("this method always fails")


def load_blobs(params: Mapping[str, Any]) -> DatasetArrays:
    """Gaussian blobs: a fast synthetic data set for runner tests."""
    gen = torch.Generator().manual_seed(int(params["seed"]))
    n, classes = int(params["samples"]), 3
    y = torch.arange(n) % classes
    centres = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.0]])
    x = centres[y] + 0.7 * torch.randn(n, 2, generator=gen)
    return DatasetArrays(x=x.float(), y=y.long(), num_classes=classes, input_shape=(2,))


class FixturePlugin:
    """Registered with ``extra_plugins``: one dataset and one failing method."""

    __name__ = "fixture"

    @hookimpl
    def unlearnbench_datasets(self) -> list[DatasetSpec]:
        return [
            DatasetSpec(
                "blobs",
                load_blobs,
                params=(
                    Param("samples", 600, "pool size"),
                    Param("seed", 0, "generator seed"),
                ),
                description="Three Gaussian blobs in 2-D (test fixture).",
            )
        ]

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [MethodSpec("exploding", lambda p: Exploding(), description="Always fails.")]


class DuplicateRetrain:
    """Registers a second ``retrain``: a name collision."""

    __name__ = "duplicate"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [MethodSpec("retrain", lambda p: Exploding(), description="A clash.")]
