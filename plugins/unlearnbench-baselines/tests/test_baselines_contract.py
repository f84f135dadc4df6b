"""Every baseline is registered through the entry point and passes the method contract."""

from __future__ import annotations

import pytest
from unlearnbench.testing import check_method_contract, registry

METHODS = (
    "finetune",
    "gradient_ascent",
    "neggrad_plus",
    "random_label",
    "scrub",
    "salun",
    "l1_sparse",
    "boundary_shrink",
)


def test_entry_point_registers_every_baseline():
    reg = registry()
    for name in METHODS:
        origin = reg.entry("method", name).origin
        assert (origin.plugin, origin.distribution) == ("baselines", "unlearnbench-baselines")


@pytest.mark.parametrize("name", METHODS)
def test_method_contract(name, make_tiny_task):
    # two epochs keep the contract (shapes, streams, determinism) fast; the
    # behaviour tests run the default epochs
    check_method_contract(name, make_tiny_task, params={"epochs": 2})


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("finetune", {"lr": 0.0}, "lr must be > 0"),
        ("neggrad_plus", {"beta": 1.5}, "beta must be in"),
        ("salun", {"sparsity": 1.0}, "sparsity must be in"),
        ("scrub", {"temperature": 0.0}, "temperature must be > 0"),
        ("l1_sparse", {"gamma": -1.0}, "gamma must be >= 0"),
        ("boundary_shrink", {"bound": 0.0}, "bound must be > 0"),
    ],
)
def test_bad_parameters_are_named(name, params, message):
    from unlearnbench.specs import resolve_params

    spec = registry().get("method", name)
    with pytest.raises(ValueError, match=message):
        spec.create(resolve_params(spec.params, params))
