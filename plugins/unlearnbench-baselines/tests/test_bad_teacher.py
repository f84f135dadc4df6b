"""Bad Teacher: cross-checked against the authors' loop, and it forgets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import first_deletion, forget_loss
from unlearnbench.testing import registry, run_unlearning

from unlearnbench_baselines.bad_teacher import retain_subset
from unlearnbench_baselines.common import batches


def reference_bad_teacher(task, student, competent, incompetent, loader, lr, temperature):
    """vikram2000b/bad-teaching-unlearning ``unlearn.py`` at 0aab08c, restated:
    ``UnlearnerLoss`` (labels 1 = forget pick the unlearning teacher's softmax,
    0 = retain the full teacher's; ``F.kl_div`` of the student's log-softmax,
    default reduction) and ``unlearning_step`` (teachers under ``no_grad``,
    ``zero_grad``, ``backward``, ``step``) with ``Adam(lr)``; ``loader`` gives
    each epoch's (indices, forget flags) batches, the same as ours."""
    competent.eval()
    incompetent.eval()
    student.train()
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    for epoch_batches in loader:
        for idx, flags in epoch_batches:
            x = task.x[idx]
            with torch.no_grad():
                full_teacher_logits = competent(x)
                unlearn_teacher_logits = incompetent(x)
            output = student(x)
            optimizer.zero_grad()
            labels = torch.unsqueeze(flags.float(), dim=1)
            f_teacher_out = F.softmax(full_teacher_logits / temperature, dim=1)
            u_teacher_out = F.softmax(unlearn_teacher_logits / temperature, dim=1)
            overall = labels * u_teacher_out + (1 - labels) * f_teacher_out
            loss = F.kl_div(F.log_softmax(output / temperature, dim=1), overall)
            loss.backward()
            optimizer.step()
    return student


@pytest.mark.filterwarnings("ignore:reduction")  # the reference's default 'mean'
def test_bad_teacher_matches_the_reference_loop(overfit_task):
    task, ctx = overfit_task
    params = {"epochs": 2, "lr": 1e-3, "temperature": 2.0, "retain_share": 0.5}
    ours = run_unlearning(registry().get("method", "bad_teacher"), task, ctx, params).model
    forget, retain = first_deletion(task)
    seed = (task.seed, "bad_teacher", 0)
    both = torch.cat([forget, retain_subset(retain, 0.5, seed)])
    loader = []
    for epoch in range(2):
        loader.append(
            [
                (idx, torch.isin(idx, forget))
                for idx in batches(both, seed, epoch, task.recipe.batch_size)
            ]
        )
    incompetent = task.new_model(("bad_teacher", "incompetent-teacher"))
    theirs = reference_bad_teacher(
        task, ctx.original(), ctx.original(), incompetent, loader, 1e-3, 2.0
    )
    for p, q, p0 in zip(
        ours.parameters(), theirs.parameters(), ctx.original().parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
        assert not torch.equal(p, p0)


def test_bad_teacher_raises_the_forget_loss(overfit_task):
    task, ctx = overfit_task
    model = run_unlearning(
        registry().get("method", "bad_teacher"), task, ctx, {"epochs": 3, "lr": 1e-3}
    ).model
    assert forget_loss(model, task) > forget_loss(ctx.original(), task)
