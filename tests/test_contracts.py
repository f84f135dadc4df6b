"""Every registered plugin, built-in or installed, passes the same contract checks.

Written once, run over the registry (as pytorch-image-models' test_models does),
so a new plugin is tested the moment it registers.
"""

from __future__ import annotations

import pytest

from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import (
    check_architecture_contract,
    check_dataset_contract,
    check_evaluator_contract,
    check_method_contract,
    registry,
)

REGISTRY = registry()
# Smaller settings for methods whose defaults are sized for real data; the
# contract itself is the same.
FAST_PARAMS = {
    "deepobliviate": {"blocks": 6},
    "sisa": {"shards": 3, "slices": 2},
    "gan": {"max_steps": 30, "critic_warmup": 10, "min_steps": 10},
}
INPUT_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 40), (600,)]


@pytest.mark.parametrize("name", REGISTRY.names("method"))
def test_method_contract(name: str, make_tiny_task) -> None:
    check_method_contract(name, make_tiny_task, params=FAST_PARAMS.get(name))


@pytest.mark.parametrize("name", REGISTRY.names("evaluator"))
@pytest.mark.parametrize("kind", ["random", "backdoor"])
def test_evaluator_contract(name: str, kind: str, make_tiny_task) -> None:
    request = (
        ForgetRequest(kind="backdoor", count=30, target_class=0)
        if kind == "backdoor"
        else ForgetRequest(kind="random", count=10)
    )
    check_evaluator_contract(name, make_tiny_task, request=request)


@pytest.mark.parametrize("name", REGISTRY.names("dataset"))
def test_dataset_contract(name: str) -> None:
    spec = REGISTRY.get("dataset", name)
    needs_files = any(p.name in ("root", "path") for p in spec.params)
    if needs_files:
        pytest.skip("reads local files: contract-checked on tiny real-format files in its tests")
    check_dataset_contract(name, params={"samples": 600} if name == "mnist1d" else None)


@pytest.mark.parametrize("name", REGISTRY.names("architecture"))
def test_architecture_contract(name: str) -> None:
    built = []
    for shape in INPUT_SHAPES:
        try:
            check_architecture_contract(name, shape)
        except ValueError:
            continue  # this architecture does not take inputs of this shape
        built.append(shape)
    assert built, f"{name} builds on none of {INPUT_SHAPES}"


ALL_PARAMS = [
    pytest.param(spec, p, id=f"{kind}:{spec.name}:{p.name}")
    for kind in ("dataset", "architecture", "method", "evaluator")
    for spec in (REGISTRY.get(kind, n) for n in REGISTRY.names(kind))
    for p in spec.params
]


@pytest.mark.parametrize(("spec", "param"), ALL_PARAMS)
def test_param_default_is_valid_under_its_own_declaration(spec, param) -> None:
    """Every declared default passes its own type, choices and bounds (finite
    included): a plugin whose untouched defaults the host would refuse is broken."""
    assert param.coerce(param.default) == param.default
    assert not param.choices or param.default in param.choices


def test_every_plugin_declares_parameters_the_host_can_check() -> None:
    """The contract above covers the built-ins and an installed package at least."""
    origins = {
        REGISTRY.entry("method", name).origin.distribution for name in REGISTRY.names("method")
    }
    assert len(ALL_PARAMS) > 30 and len(origins) >= 2, origins
