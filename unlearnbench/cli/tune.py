"""``unlearnbench tune``: run (or resume) a suite's tuning studies, print the summary."""

from __future__ import annotations

import argparse
import sys

from unlearnbench.cli.common import (
    EXIT_FAILED_CELLS,
    EXIT_OK,
    UsageError,
    check_executor_options,
    executor_options,
    load_plugins,
    suite_and_out,
    usage_errors,
)


def cmd_tune(args: argparse.Namespace) -> int:
    """Run (or resume) the suite's tuning studies into ``<out>/tuning.sqlite``, the
    trials on the chosen executor; every check (suite, space, budget, request kinds,
    executor options) passes before anything trains."""
    from unlearnbench.execution import tuning
    from unlearnbench.execution.executor_choice import AUTO, choose_tune_executor
    from unlearnbench.execution.executors import ExecutorError
    from unlearnbench.execution.run import prepare_tuning, tuning_suite

    check_executor_options(args)
    if args.trial_timeout is not None and not args.trial_timeout > 0:
        raise UsageError(
            f"--trial-timeout must be a positive number of seconds, got {args.trial_timeout}"
        )
    registry, _ = load_plugins(args)
    suite, out = suite_and_out(args.suite, args)
    with usage_errors(args.suite):
        executor, threads = args.executor, args.threads_per_worker
        if executor == AUTO:  # chosen (and said) before the data sets load
            choice = choose_tune_executor(
                tuning_suite(suite),
                registry,
                out,
                device=args.device,
                workers=args.workers,
                threads=threads,
            )
            executor, threads = choice.executor, choice.threads
            print(f"executor: {executor} ({choice.why})", file=sys.stderr)
        prepared = prepare_tuning(
            suite,
            out,
            registry,
            **executor_options(args, executor, threads),
            cell_timeout=args.trial_timeout,
        )
    assert prepared.suite.tuning is not None
    print(
        f"tuning into {out / tuning.STORAGE_FILE} on {prepared.device} ({executor} executor, "
        f"{prepared.executor.threads} torch thread(s) per trial)",
        file=sys.stderr,
    )
    try:
        results = tuning.run_tuning(prepared, registry, progress=not args.no_progress)
    except ExecutorError as exc:  # workers that cannot start: a plugin or set-up problem
        raise UsageError(f"the {executor} executor failed: {exc}") from None
    except tuning.TuningError as exc:
        print(f"unlearnbench: error: {exc}", file=sys.stderr)
        return EXIT_FAILED_CELLS
    text = tuning.summary_markdown(results, prepared.suite.tuning)
    (out / "tuning.md").write_text(text, "utf-8")
    (out / "tuning.json").write_text(tuning.dumps(results), "utf-8")
    print(text)
    return EXIT_OK
