"""The ``backdoor`` evaluator: attack success of the forget set's trigger."""

from __future__ import annotations

import torch
from torch import nn

from unlearnbench.builtin.evaluators import backdoor
from unlearnbench.specs import EvaluationInputs
from unlearnbench.task_values import ForgetRequest, TrainRecipe
from unlearnbench.testing import check_evaluator_contract

REQUEST = ForgetRequest(kind="backdoor", count=30, target_class=0)


class LabelOracle(nn.Module):
    """Knows the true label of every pool point from its untriggered part; optionally
    obeys the trigger (predicts the target class when the trigger is present)."""

    def __init__(self, task, obeys_trigger: bool) -> None:
        super().__init__()
        bd = task.backdoor
        probe = torch.rand(2, *task.input_shape, device=task.device) * 0.3 + 0.1
        self.free = (bd.apply(probe) == probe).all(0).flatten()  # entries the trigger leaves
        self.pattern = bd.apply(probe)[0].flatten()[~self.free]
        self.keys = task.x.flatten(1)[:, self.free]
        self.labels = task.y
        self.target = bd.target_class
        self.num_classes = task.num_classes
        self.obeys = obeys_trigger

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        dist = torch.cdist(
            flat[:, self.free], self.keys, compute_mode="donot_use_mm_for_euclid_dist"
        )
        label = self.labels[dist.argmin(1)]
        if self.obeys:
            triggered = (flat[:, ~self.free] == self.pattern).all(1)
            label = torch.where(triggered, torch.full_like(label, self.target), label)
        return 10.0 * nn.functional.one_hot(label, self.num_classes).float()


def _evaluate(task, ctx, model, **params):
    """The success rate of ``model`` (original, unlearned and reference alike)."""
    evaluator = backdoor.create({"include_target_class": False, **params})
    inputs = EvaluationInputs(task=task, original=model, unlearned=model, reference=model, costs={})
    metrics = evaluator.evaluate(inputs, ctx)
    assert metrics["backdoor_success_gap"] == 0.0  # the same model as reference
    assert metrics["backdoor_strength"] == metrics["backdoor_success"]  # ... and as original
    return {"backdoor_success": metrics["backdoor_success"]}


def test_contract_with_backdoor(make_tiny_task):
    metrics = check_evaluator_contract("backdoor", make_tiny_task, request=REQUEST)
    assert set(metrics) == {
        "backdoor_success",
        "backdoor_success_gap",
        "backdoor_strength",
        "backdoor_success_before",
    }
    assert 0.0 <= metrics["backdoor_success"] <= 1.0


def test_contract_without_backdoor_returns_nothing(make_tiny_task):
    assert check_evaluator_contract("backdoor", make_tiny_task) == {}


def test_known_answers(make_tiny_task):
    task, ctx = make_tiny_task(request=REQUEST)
    clean = LabelOracle(task, obeys_trigger=False)
    poisoned = LabelOracle(task, obeys_trigger=True)
    assert _evaluate(task, ctx, clean) == {"backdoor_success": 0.0}
    assert _evaluate(task, ctx, poisoned) == {"backdoor_success": 1.0}
    # Counting target-class test points too (DeepObliviate's apparent variant),
    # a clean model "succeeds" exactly on those.
    test_y = task.y[task.splits.test]
    share = float((test_y == REQUEST.target_class).float().mean())
    assert _evaluate(task, ctx, clean, include_target_class=True) == {"backdoor_success": share}
    assert _evaluate(task, ctx, poisoned, include_target_class=True) == {"backdoor_success": 1.0}


def test_original_obeys_trigger_retrain_does_not(make_tiny_task):
    recipe = TrainRecipe(epochs=30, batch_size=32, lr=0.003)
    task, ctx = make_tiny_task(request=REQUEST, recipe=recipe)
    original = ctx.original()
    retrained = task.new_model("init")
    ctx.train(retrained, task.splits.target, exclude=task.splits.forget)
    planted = _evaluate(task, ctx, original)["backdoor_success"]
    removed = _evaluate(task, ctx, retrained)["backdoor_success"]
    assert planted > 0.7  # 1.0 when this test was written
    assert removed < 0.1  # 0.0 when this test was written
    inputs = EvaluationInputs(
        task=task, original=original, unlearned=original, reference=retrained, costs={}
    )
    metrics = backdoor.create({"include_target_class": False}).evaluate(inputs, ctx)
    assert metrics["backdoor_success_gap"] == abs(planted - removed)
    assert metrics["backdoor_strength"] == planted > backdoor.BACKDOOR_LEARNED
