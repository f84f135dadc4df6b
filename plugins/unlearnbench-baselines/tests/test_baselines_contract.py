"""Every baseline is registered through the entry point and passes the method contract."""

from __future__ import annotations

import pytest
from unlearnbench.testing import check_method_contract, registry

from unlearnbench_baselines.plugin import METHOD_MODULES

# every method the plugin registers: a new module in METHOD_MODULES is picked up here
METHODS = tuple(module.NAME for module in METHOD_MODULES)
FIRST_EIGHT = (
    "finetune",
    "gradient_ascent",
    "neggrad_plus",
    "random_label",
    "scrub",
    "salun",
    "l1_sparse",
    "boundary_shrink",
)


# methods whose defaults take more than a few seconds on the tiny task
FAST = {"unsir": {"noise_size": 32, "noise_steps": 5, "noise_copies": 2}}


def fast(name: str) -> dict[str, int]:
    """Two epochs for a method that trains (smaller settings where ``FAST`` says):
    the contract (shapes, streams, determinism) stays fast; the behaviour and
    cross-check tests run the defaults or their own settings."""
    spec = registry().get("method", name)
    epochs = {"epochs": 2} if any(p.name == "epochs" for p in spec.params) else {}
    return {**epochs, **FAST.get(name, {})}


def test_the_registered_methods_include_the_first_eight():
    assert set(FIRST_EIGHT) <= set(METHODS)
    assert len(set(METHODS)) == len(METHODS)


def test_entry_point_registers_every_baseline():
    reg = registry()
    for name in METHODS:
        origin = reg.entry("method", name).origin
        assert (origin.plugin, origin.distribution) == ("baselines", "unlearnbench-baselines")


@pytest.mark.parametrize("name", METHODS)
def test_method_contract(name, make_tiny_task):
    check_method_contract(name, make_tiny_task, params=fast(name))


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("finetune", {"lr": 0.0}, r"^lr: .*\(0, inf\)"),
        ("finetune", {"momentum": 1.0}, r"^momentum: .*\[0, 1\)"),
        ("gradient_ascent", {"epochs": -1}, r"^epochs: "),
        ("neggrad_plus", {"beta": 1.5}, r"^beta: .*\[0, 1\]"),
        ("salun", {"sparsity": 1.0}, r"^sparsity: .*\[0, 1\)"),
        ("scrub", {"temperature": 0.0}, r"^temperature: "),
        ("scrub", {"forget_batch_size": 0}, r"^forget_batch_size: "),
        ("l1_sparse", {"gamma": -1.0}, r"^gamma: "),
        ("boundary_shrink", {"bound": 0.0}, r"^bound: "),
        ("random_label", {"lr": float("nan")}, r"^lr: .*finite"),
        ("ssd", {"alpha": 0.0}, r"^alpha: "),
        ("bad_teacher", {"retain_share": 0.0}, r"^retain_share: .*\(0, 1\]"),
        ("cf_k", {"k": 0}, r"^k: "),
        ("unsir", {"noise_size": 0}, r"^noise_size: "),
        ("msg", {"layers": "all"}, r"^layers: .*not one of"),
        ("conv_transpose", {"conv1d": "flip"}, r"^conv1d: .*not one of"),
        ("fisher", {"alpha": -1.0}, r"^alpha: "),
    ],
)
def test_bad_parameters_are_named(name, params, message):
    from unlearnbench.specs import resolve_params

    spec = registry().get("method", name)
    with pytest.raises(ValueError, match=message):
        spec.create(resolve_params(spec.params, params))


@pytest.mark.parametrize("name", METHODS)
def test_unlearning_counts_its_sample_passes(name, make_tiny_task):
    """Every example through a forward and backward pass reaches ``ctx.add_work``:
    the training passes, plus SalUn's saliency gradient and Boundary Shrink's
    FGSM probe (one pass per forget example each)."""
    from unlearnbench.specs import resolve_params

    spec = registry().get("method", name)
    task, ctx = make_tiny_task()
    method = spec.create(resolve_params(spec.params, fast(name)))
    state = method.fit(task, ctx)
    before = ctx.work
    result = method.unlearn(state, task.splits.forget, task, ctx)
    costs = result.costs
    extra = {"salun": task.splits.forget.numel(), "boundary_shrink": costs["forget_sample_epochs"]}
    assert costs["retrain_sample_epochs"] > 0
    assert ctx.work - before == costs["retrain_sample_epochs"] + extra.get(name, 0)
