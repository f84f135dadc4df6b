"""Hyper-parameter tuning on one budget for every method, never on the test data.

``unlearnbench tune SUITE`` runs one Optuna study per method and task; ``[tuning]
tuned = true`` then runs each method with its study's best parameters beside its
defaults, labelled ``<label>[tuned]``. docs/tuning.md explains the protocol, the
budget and the guarantees; one module per job:

- :mod:`.space`: the search space of a method entry;
- :mod:`.studies`: which studies a suite has, their identity, their storage;
- :mod:`.validation`: the validation protocol a trial is scored on;
- :mod:`.workcap`: the cap on a trial's unlearning work;
- :mod:`.trials`: a trial or a reference as a job a worker runs;
- :mod:`.loop`: the Optuna ask-and-tell loop in the parent process;
- :mod:`.tuned`: tuned cells and the summaries read back from the studies.

This package re-exports their public names and holds no logic.
"""

from unlearnbench.execution.tuning.loop import TUNING_LOCK, TuningError, run_tuning, trial_sampler
from unlearnbench.execution.tuning.space import Dimension, search_space
from unlearnbench.execution.tuning.studies import (
    STORAGE_FILE,
    TUNABLE_REQUESTS,
    Study,
    StudyResult,
    check_tuning,
    plan_studies,
    storage_url,
    study_name,
)
from unlearnbench.execution.tuning.trials import (
    Reference,
    ReferenceJob,
    TrialJob,
    TrialOutcome,
    evaluate_params,
    run_reference,
    run_trial,
)
from unlearnbench.execution.tuning.tuned import (
    TUNED_SUFFIX,
    add_tuned_cells,
    best_params,
    dumps,
    finished_trials,
    pending_studies,
    summary_markdown,
)
from unlearnbench.execution.tuning.validation import (
    RETAIN_EVAL_POINTS,
    ValidationData,
    avg_gap,
    measure,
    validation_data,
    validation_forget,
)
from unlearnbench.execution.tuning.workcap import CappedContext, WorkCapExceeded

__all__ = [
    "RETAIN_EVAL_POINTS",
    "STORAGE_FILE",
    "TUNABLE_REQUESTS",
    "TUNED_SUFFIX",
    "TUNING_LOCK",
    "CappedContext",
    "Dimension",
    "Reference",
    "ReferenceJob",
    "Study",
    "StudyResult",
    "TrialJob",
    "TrialOutcome",
    "TuningError",
    "ValidationData",
    "WorkCapExceeded",
    "add_tuned_cells",
    "avg_gap",
    "best_params",
    "check_tuning",
    "dumps",
    "evaluate_params",
    "finished_trials",
    "measure",
    "pending_studies",
    "plan_studies",
    "run_reference",
    "run_trial",
    "run_tuning",
    "search_space",
    "storage_url",
    "study_name",
    "summary_markdown",
    "trial_sampler",
    "validation_data",
    "validation_forget",
]
