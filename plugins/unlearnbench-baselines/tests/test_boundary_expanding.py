"""Boundary Expanding: cross-checked against the authors' code restated; it forgets."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import first_deletion, forget_loss
from torch import nn
from unlearnbench.seeding import generator
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.boundary_expanding import NoOutputLayer, output_layer
from unlearnbench_baselines.common import batches


def reference_boundary_expanding(model, task, epoch_batches, lr, seed):
    """TY-LEE-KR/Boundary-Unlearning-Code ``boundary_expanding`` at 86c2f1f,
    restated for a ``Sequential`` whose last module is the classifier: a
    ``Linear(n, C + 1)`` (``init_params``: Xavier-normal weight, zero bias;
    drawn here from our generator), the trained rows copied into ``0:C``;
    ``SGD(lr, momentum=0.9)`` over ``widen_model.parameters()``; each forget
    batch labelled ``C``; then a ``Linear(n, C)`` takes rows ``0:C`` back."""
    num_classes = task.num_classes
    features = model[:-1]
    classifier = model[-1]
    widen_classifier = nn.Linear(classifier.in_features, num_classes + 1)
    weight = torch.empty(num_classes + 1, classifier.in_features)
    nn.init.xavier_normal_(weight, generator=generator(seed, "shadow-class"))
    widen_classifier.weight.data = weight
    nn.init.zeros_(widen_classifier.bias)
    widen_classifier.state_dict()["weight"][0:num_classes,] = classifier.weight.data
    widen_classifier.state_dict()["bias"][0:num_classes,] = classifier.bias.data
    widen_model = nn.Sequential(features, widen_classifier)
    optimizer = torch.optim.SGD(widen_model.parameters(), lr=lr, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    for loader in epoch_batches:
        for idx in loader:
            widen_model.train()
            widen_logits = widen_model(task.x[idx])
            target_label = torch.ones_like(task.y[idx]) * num_classes
            widen_model.zero_grad()
            optimizer.zero_grad()
            criterion(widen_logits, target_label).backward()
            optimizer.step()
    pruned_classifier = nn.Linear(classifier.in_features, num_classes)
    pruned_classifier.state_dict()["weight"][:,] = widen_classifier.weight.data[0:num_classes,]
    pruned_classifier.state_dict()["bias"][:,] = widen_classifier.bias.data[0:num_classes,]
    return nn.Sequential(features, pruned_classifier)


def test_boundary_expanding_matches_the_reference(overfit_task):
    task, ctx = overfit_task
    params = {"lr": 0.01, "epochs": 3}
    ours = run_unlearning(registry().get("method", "boundary_expanding"), task, ctx, params).model
    forget, _ = first_deletion(task)
    seed = (task.seed, "boundary_expanding", 0)
    loaders = [list(batches(forget, seed, e, task.recipe.batch_size)) for e in range(3)]
    theirs = reference_boundary_expanding(ctx.original(), task, loaders, 0.01, seed)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    for p, q, p0 in zip(
        ours.parameters(), theirs.parameters(), ctx.original().parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert not torch.equal(p, p0)
    assert forget_loss(ours, task) > forget_loss(ctx.original(), task)


def test_a_model_without_a_class_sized_linear_is_refused(tiny_task):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 7))
    with pytest.raises(NoOutputLayer, match=r"no nn\.Linear with 10 outputs"):
        output_layer(copy.deepcopy(model), tiny_task.num_classes)
