"""``inputs.trained``: a "before" is measured on the model the method unlearns from.

SISA and DeepObliviate own their training: they unlearn from their shard
ensemble and their stored training, never from the standard original, so a
backdoor check must compare with those (issue 23: DeepObliviate's block
training had already lost an early block's trigger before any deletion).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from unlearnbench import MethodSpec, Unlearned, hookimpl
from unlearnbench.builtin.evaluators import backdoor
from unlearnbench.builtin.methods import deepobliviate as do
from unlearnbench.builtin.methods import sisa
from unlearnbench.execution.cell import Outcome, evaluate_cell, run_method
from unlearnbench.execution.plan import Component
from unlearnbench.host.manager import load_registry
from unlearnbench.specs import EvaluationInputs, resolve_params
from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import check_method_contract, registry
from unlearnbench.training import predict_logits

# 30 poisoned points in the first of 8 blocks (DeepObliviate) / shards (SISA)
REQUEST = ForgetRequest(kind="backdoor", count=30, target_class=0, position=0.0, blocks=8)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def success(task, model: nn.Module) -> float:
    """The backdoor evaluator's rule, written out: triggered non-target test inputs
    classified as the target class."""
    bd = task.backdoor
    test = task.splits.test[task.y[task.splits.test] != bd.target_class]
    predicted = predict_logits(model, bd.apply(task.x[test])).argmax(1)
    return float((predicted == bd.target_class).float().mean())


def run_cell(task, ctx, name: str, params: dict[str, Any]) -> tuple[Outcome, dict[str, float]]:
    """The host's path: run_method, then evaluate_cell with the backdoor evaluator."""
    reg = registry()
    spec: MethodSpec = reg.get("method", name)  # type: ignore[assignment]
    component = Component(name, resolve_params(spec.params, params), name)
    outcome = run_method(spec, component, task, ctx)
    retrain: MethodSpec = reg.get("method", "retrain")  # type: ignore[assignment]
    reference = run_method(retrain, Component("retrain", {}, "retrain"), task, ctx)
    evaluator = Component("backdoor", {"include_target_class": False}, "backdoor")
    metrics, _ = evaluate_cell(reg, [evaluator], task, ctx, ctx.original(), reference, outcome)
    return outcome, {m.name: m.value for m in metrics}


def test_deepobliviate_before_is_its_stored_training_not_the_original(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=REQUEST)
    params = {"blocks": 8, "epochs_per_block": 2, "epsilon": 1e9, "min_blocks": 3}
    outcome, metrics = run_cell(task, ctx, "deepobliviate", params)
    # the stored training's P_B, read here from the cached artifact fit builds
    state = do.create(params).fit(task, ctx)
    stored = do.DeepObliviate._model(state.checkpoints[-1], task)
    assert metrics["backdoor_success_before"] == success(task, stored)
    assert metrics["backdoor_strength"] == success(task, ctx.original())
    # block training forgot the first block's trigger before any deletion (0.086
    # against the original's 1.0 when this test was written): the check is void here
    before, strength = metrics["backdoor_success_before"], metrics["backdoor_strength"]
    assert before < backdoor.BACKDOOR_LEARNED <= strength
    # a snapshot from before unlearning, which replaced the stored P_B
    assert outcome.trained is not None
    for name, value in outcome.trained.state_dict().items():
        assert torch.equal(value, state.checkpoints[-1][name]), name
    assert any(
        not torch.equal(value, outcome.model.state_dict()[name])
        for name, value in outcome.trained.state_dict().items()
    )


def test_sisa_before_is_its_ensemble_before_any_deletion(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=REQUEST)
    params = {"shards": 8, "slices": 2, "stacked": "off"}
    outcome, metrics = run_cell(task, ctx, "sisa", params)
    method = sisa.create(params)
    ensemble = method.ensemble(method.fit(task, ctx), task)  # every shard, nothing deleted
    assert isinstance(outcome.trained, sisa.ShardEnsemble)
    assert len(outcome.trained.members) == 8
    assert metrics["backdoor_success_before"] == success(task, ensemble)
    assert metrics["backdoor_strength"] == success(task, ctx.original())
    # one poisoned shard of 8 rarely carries the vote (0.205 against 1.0 when written)
    before, strength = metrics["backdoor_success_before"], metrics["backdoor_strength"]
    assert before < backdoor.BACKDOOR_LEARNED <= strength
    x = task.x[task.splits.test]
    assert not torch.equal(predict_logits(outcome.trained, x), predict_logits(outcome.model, x))


def test_a_method_without_trained_unlearns_from_the_original(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=REQUEST)
    outcome, metrics = run_cell(task, ctx, "original", {})
    assert outcome.trained is None
    assert metrics["backdoor_success_before"] == metrics["backdoor_strength"]
    assert metrics["backdoor_strength"] == success(task, ctx.original())


def test_inputs_built_by_hand_get_the_original_as_trained(make_tiny_task) -> None:
    task, ctx = make_tiny_task(request=REQUEST)
    original = ctx.original()
    inputs = EvaluationInputs(task, original, original, original, costs={})
    assert inputs.trained is original
    other = task.new_model("other")
    metrics = backdoor.create({"include_target_class": False}).evaluate(
        EvaluationInputs(task, original, original, original, costs={}, trained=other), ctx
    )
    assert metrics["backdoor_success_before"] == success(task, other)
    assert metrics["backdoor_strength"] == success(task, original)


class Leaky:
    """Fine-tunes one model in place; ``trained`` hands out that very model (not a
    snapshot), or, with ``mutate``, perturbs the state it was asked to read."""

    def __init__(self, mutate: bool) -> None:
        self.mutate = mutate

    def fit(self, task, ctx) -> nn.Module:
        return ctx.original()

    def trained(self, state: nn.Module, task, ctx) -> nn.Module:
        if self.mutate:
            with torch.no_grad():
                next(state.parameters()).add_(0.5)
            return copy.deepcopy(state)
        return state

    def unlearn(self, state: nn.Module, forget, task, ctx):
        with torch.no_grad():
            for p in state.parameters():
                p.mul_(0.9)
        return Unlearned(model=state, state=state)


class LeakyPlugin:
    __name__ = "leaky"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [
            MethodSpec("leaky-shared", lambda p: Leaky(False), description="Shares its model."),
            MethodSpec("leaky-mutating", lambda p: Leaky(True), description="Changes its state."),
        ]


@pytest.mark.parametrize(
    ("name", "complaint"),
    [("leaky-shared", "not a snapshot"), ("leaky-mutating", "differs on a second call")],
)
def test_the_contract_catches_a_trained_model_that_is_not_a_snapshot(
    make_tiny_task, name: str, complaint: str
) -> None:
    reg, _ = load_registry(load_entry_points=False, extra_plugins=[LeakyPlugin()])
    with pytest.raises(AssertionError, match=complaint):
        check_method_contract(name, make_tiny_task, reg=reg)
    check_method_contract("sisa", make_tiny_task, {"shards": 2, "slices": 2}, reg=reg)


def test_the_host_snapshots_the_trained_model_before_unlearning(make_tiny_task) -> None:
    """Even where a plugin's ``trained`` shares its model with what ``unlearn``
    changes in place, ``inputs.trained`` is the model as it was after ``fit``."""
    reg, _ = load_registry(load_entry_points=False, extra_plugins=[LeakyPlugin()])
    task, ctx = make_tiny_task(request=REQUEST)
    spec: MethodSpec = reg.get("method", "leaky-shared")  # type: ignore[assignment]
    outcome = run_method(spec, Component("leaky-shared", {}, "leaky"), task, ctx)
    assert outcome.trained is not None
    for name, value in outcome.trained.state_dict().items():
        assert torch.equal(value, ctx.original().state_dict()[name]), name


def test_a_run_measures_before_on_each_methods_own_model_and_shadow(tmp_path) -> None:
    """End to end through the runner: SISA's row reads its backdoor "before" on its
    ensemble and calibrates mia on a SISA shadow; the others on the standard ones."""
    from tests.conftest import write
    from tests.suites import suite_toml
    from unlearnbench.cli import main
    from unlearnbench.execution.store import ResultStore

    text = suite_toml(
        "trained",
        evaluators=["backdoor", "mia"],
        splits={"target": 300, "nonmember": 50, "test": 200, "shadow_in": 300, "shadow_out": 200},
        train={"epochs": 5, "batch_size": 32, "lr": 0.003},
        methods=["retrain", "original", {"name": "sisa", "params": {"shards": 5, "slices": 2}}],
        requests=[{"kind": "backdoor", "count": 20, "target_class": 0}],
    )
    suite = write(tmp_path / "suite.toml", text)
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    with ResultStore(tmp_path / "out" / "results.sqlite") as store:
        values = {(r["method"], r["name"]): r["value"] for r in store.metric_rows()}
    for method in ("retrain", "original"):
        before = values[(method, "backdoor_success_before")]
        assert before == values[(method, "backdoor_strength")]
        assert values[(method, "mia_strength")] == values[("retrain", "mia_strength")]
    assert values[("sisa", "backdoor_success_before")] != values[("sisa", "backdoor_strength")]
    assert values[("sisa", "mia_strength")] != values[("original", "mia_strength")]
