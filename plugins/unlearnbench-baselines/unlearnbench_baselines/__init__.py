"""unlearnbench-baselines: post-hoc unlearning baselines as an unlearnbench plugin.

Registered through the ``unlearnbench`` entry-point group (see ``plugin.py``):
``finetune``, ``gradient_ascent``, ``neggrad_plus``, ``random_label``,
``scrub``, ``salun``, ``l1_sparse`` and ``boundary_shrink``. Each starts from the task's shared
trained model and edits it; none retrains from scratch.
"""

__version__ = "0.1.0"
