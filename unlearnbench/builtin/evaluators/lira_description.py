"""What ``unlearnbench show lira`` prints: the evaluator's full description.

The same text is docs/lira.md's first section (tests/test_eval_lira.py keeps the
two equal); the reference models' construction is its second.
"""

DESCRIPTION = """\
``lira``: the likelihood-ratio membership attack (LiRA) on the forget set.

Source: Carlini, Chien, Nasr, Song, Terzis, Tramèr, "Membership Inference
Attacks From First Principles", IEEE S&P 2022, Section IV (Algorithm 1:
online attack; the offline variant; logit scaling; fixed vs per-example
variance) and Section VI (ablations: number of shadow models, variance).

The attack. K reference ("shadow") models with the task's architecture and
recipe are trained on seeded complementary halves of a pool that contains every
scored point, so each point is "in" (trained on) for exactly half of them and
"out" for the rest. Each trains on as many points as the original model
(``size = "target"``, default: the pool is ``target ∪ nonmember`` topped up to
twice the target's size from ``shadow_in ∪ shadow_out``; a task with fewer
points there is refused), because the distance between a point's in and out
confidence depends on the training set's size; ``size = "half_pool"`` trains
on halves of all of ``target ∪ nonmember ∪ shadow_in ∪ shadow_out`` (the
earlier default, larger training sets than the target's). See
``lira_reference.py``. For each point and model the logit-scaled confidence
of the true label is recorded::

    φ = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j     (from logits z, stably)

and two Gaussians are fitted per point: N(μ_in, σ_in²) over the models that
trained on it, N(μ_out, σ_out²) over the others. The evaluated model's φ on a
point is then scored

- ``variant = "online"`` (the paper's strongest, default): the log likelihood
  ratio ``log N(φ; μ_in, σ_in²) - log N(φ; μ_out, σ_out²)``;
- ``variant = "offline"``: the one-sided test against the out Gaussian only,
  ``Λ = Pr[Z < φ]`` for ``Z ~ N(μ_out, σ_out²)``; its ranking is that of
  ``(φ - μ_out) / σ_out``, which is what is scored (same ROC, no underflow);

higher = member. ``fixed_variance = true`` (default) replaces the per-point
variances by global ones, the pooled within-point variances of the in and of
the out φ over the whole pool (the paper: a global variance is better with
fewer than about 64 models; with K = 16 each per-point variance would rest on
8 values). Per-point means are plain means (the paper's text; its code uses
medians). No query augmentation: training here uses none either.

What is reported for the evaluated model, forget points (positives) against
held-out non-members (``splits.nonmember``, negatives, in the pool so they
have in/out statistics too): ``lira_auc`` (ROC AUC), ``lira_tpr_at_1fpr`` and
``lira_tpr_at_0_1fpr`` (the TPR at 1% and 0.1% FPR, the low-false-positive
view the paper argues for; with fewer than 1,000 non-members 0.1% FPR is
reached only at FPR 0: the share of forget points scored above every
non-member), each with a ``_gap`` to the reference's (retrain's) value, and
the ROC curve as the series ``roc_fpr`` / ``roc_tpr``. For a model that never
saw the forget set the AUC is about 0.5 (forget and non-member points are then
exchangeable); none of these is better high or low: retrain's value is the
target, judged by the gaps. ``lira_strength``: the same score's AUC on the
*original* model, its members (``splits.target``) against
``splits.nonmember``; below 0.6 the attack measures nothing on this task and
leaderboards say so. The label each point was trained with is used (backdoor
requests: the poisoned label).

Defaults and cost. ``models = 16``: K trainings of the task's recipe on as
many points as the target set each, once per task (cached with ``ctx.cached`` as
the K x N matrix of φ and the in/out mask, a few hundred KB, and shared by every
cell, method and request of the task; the work counts toward the first cell
that builds it). On the default suite (MNIST-1D, MLP [128, 64], 1,200 target
points, 40 epochs) that is 16 x 1,200 x 40 = 768k sample-passes, 16 original
trainings (with ``size = "half_pool"``: 16 x 1,600 x 40 = 1.0M); measured
with ``half_pool`` on the shared 2-core CPU at one thread: 5-6 s stacked (16 s
one by one), then 0.02 s per cell, see ``benchmarks/lira_stacked.py``. K = 16
because the attack has saturated there on that task: with ``half_pool`` models
the original's ``lira_strength`` was 0.81 / 0.83 / 0.85 / 0.85 / 0.86 with K
= 4 / 8 / 16 / 32 / 64 (TPR at 1% FPR on 200 forget points 0.08 / 0.14 / 0.21
/ 0.23 / 0.23), against 0.62 for the ``mia`` shadow attack. Models of the
target's size leave it where it was: on the audit suite's task (100 points
forgotten, K = 16) ``lira_strength`` 0.852 / 0.855 on seeds 0 / 1 against
0.851 / 0.842 with ``half_pool``, the original's ``lira_auc_gap`` 0.360 /
0.346 against 0.356 / 0.321.
Sizing K: the work is K x (pool / 2) x epochs sample-passes, linear in K;
stacked on CPU the wall time grows more slowly (4.6 / 5.1 / 7.5 s for K = 8 /
16 / 32 on the task above). The attack's power grows with K and flattens past
a few dozen models (paper, Section VI): take 16-32 for a CPU suite, 64 or more
(and then ``fixed_variance = false``, the per-point variances the paper uses
with many models) where a GPU makes them cheap. Below 8 models the per-point
Gaussians are too noisy for the low-FPR numbers and the evaluator warns.
``stacked = "auto"`` trains the K models at once with ``torch.func`` (MLPs of at most
20,000 parameters on CPU, any supported model on CUDA; ``"on"`` forces it, ``"off"`` trains one by
one through ``ctx.train``); both give the same statistics up to float rounding
(on the CPU here they were bit for bit the same in every measurement).
"""
