"""Parameter declarations: types, choices and bounds are checked before anything runs."""

from __future__ import annotations

import math

import pytest

from unlearnbench import Param
from unlearnbench.specs import ParamError, resolve_params


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_float_must_be_finite(bad: float) -> None:
    with pytest.raises(ParamError, match="finite"):
        Param("alpha", 0.5).coerce(bad)


def test_bounds_are_inclusive_unless_exclusive() -> None:
    lr = Param("lr", 0.1, minimum=0.0, exclusive_minimum=True)
    assert lr.coerce(1e-9) == 1e-9
    with pytest.raises(ParamError, match=r"outside the valid range \(0, inf\)"):
        lr.coerce(0.0)
    shards = Param("shards", 5, minimum=1, maximum=1000)
    assert shards.coerce(1) == 1 and shards.coerce(1000) == 1000
    with pytest.raises(ParamError, match=r"\[1, 1000\]"):
        shards.coerce(0)
    with pytest.raises(ParamError):
        shards.coerce(1001)
    fraction = Param("holdout", 0.3, minimum=0.0, maximum=1.0, exclusive_maximum=True)
    with pytest.raises(ParamError, match=r"\[0, 1\)"):
        fraction.coerce(1.0)


def test_bounds_apply_to_every_item_of_a_list() -> None:
    widths = Param("widths", [64], minimum=1)
    assert widths.coerce([3, 4]) == [3, 4]
    with pytest.raises(ParamError, match="-4"):
        widths.coerce([8, -4])


def test_resolve_params_names_the_parameter() -> None:
    declared = (Param("epochs", 5, minimum=1),)
    with pytest.raises(ParamError, match=r"^epochs: "):
        resolve_params(declared, {"epochs": 0})
