"""``unlearnbench tune``: the search space from the plugins, the validation
protocol (never the test data), the budget, resumable seeded studies (the same
trials on every executor, resumed or not), tuned runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import torch

from tests.conftest import write
from tests.plugins import tuning_plugin
from tests.suites import suite_toml
from unlearnbench.cli import main
from unlearnbench.execution import devices as device_module
from unlearnbench.execution import run as run_module
from unlearnbench.execution.cache import FileLock
from unlearnbench.execution.executor_choice import choose_tune_executor
from unlearnbench.execution.executors.base import LOCKS_DIR
from unlearnbench.execution.run import prepare_run, prepare_tuning, run_suite
from unlearnbench.execution.store import STORE_FILE, ResultStore
from unlearnbench.execution.suite import load_suite
from unlearnbench.execution.tuning import (
    STORAGE_FILE,
    TUNING_LOCK,
    TuningError,
    measure,
    run_tuning,
    validation_data,
)
from unlearnbench.host.manager import RegistryFactory, load_registry
from unlearnbench.specs import Param

PLUGINS = "tests.plugins.tuning_plugin:TuningPlugin,tests.plugins.fixture_plugins:FixturePlugin"
HOSTILE = "tests.plugins.hostile_plugins:HostilePlugin"
SPLITS = {
    "target": 240,
    "nonmember": 60,
    "test": 100,
    "shadow_in": 60,
    "shadow_out": 40,
    "auxiliary": 80,
}


def tuning_suite(
    tmp_path: Path,
    tuning: str = "",
    *,
    methods=("retrain", "tiny_finetune"),
    requests=({"kind": "random", "count": 12},),
    seeds=(0,),
) -> Path:
    text = suite_toml(
        seeds=seeds,
        datasets=({"name": "blobs", "params": {"samples": 600}},),
        architectures=({"name": "mlp", "params": {"widths": [8]}},),
        splits=SPLITS,
        train={"epochs": 2, "batch_size": 32, "lr": 0.01},
        methods=methods,
        requests=requests,
    )
    tuning = tuning or "[tuning]\ntrials = 4\nmax_sample_passes = 1000\nseed = 3\n"
    return write(tmp_path / "suite.toml", text + "\n" + tuning)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    registry, _ = load_registry(load_entry_points=False)
    return registry


def tune(suite: Path, out: Path, registry, device: str = "cpu", **options):
    prepared = prepare_tuning(suite, out, registry, device=device, **options)
    return run_tuning(prepared, registry), prepared


def budget(trials: int, seed: int = 3) -> str:
    return f"[tuning]\ntrials = {trials}\nmax_sample_passes = 1000\nseed = {seed}\n"


def trials_by_index(out: Path) -> dict[str, dict[int, tuple]]:
    """Study name -> trial index -> (params, state, value, gaps) of the trials that count."""
    import optuna

    storage = f"sqlite:///{out / STORAGE_FILE}"
    found = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        found[summary.study_name] = {
            t.user_attrs["index"]: (t.params, t.state, t.value, t.user_attrs.get("gaps"))
            for t in study.get_trials()
            if not t.user_attrs.get("interrupted")
        }
    return found


# --- Param declarations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default": 0.1, "minimum": 0.0}, "needs both minimum and maximum"),
        ({"default": 0.1}, "needs both minimum and maximum"),
        ({"default": 0.1, "minimum": 0.5, "maximum": 0.5}, "empty range"),
        ({"default": 0.1, "minimum": 0.0, "maximum": 1.0, "log": True}, "above 0"),
        ({"default": "x"}, "only with choices"),
        ({"default": 0.1, "minimum": 0.0, "search_range": (0.5, 2.0), "maximum": 1.0}, "range end"),
    ],
)
def test_a_tunable_without_a_usable_range_is_refused_at_declaration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Param("p", tunable=True, **kwargs)


def test_tunable_ranges_come_from_bounds_search_range_or_choices():
    assert Param("a", 0.5, minimum=0.0, maximum=1.0, tunable=True).tuning_range() == (0.0, 1.0)
    eps = Param("e", 0.1, minimum=0.0, tunable=True, log=True, search_range=(1e-3, 1.0))
    assert eps.tuning_range() == (1e-3, 1.0)
    assert eps.coerce(0.0) == 0.0  # the special value stays valid
    assert Param("o", "a", choices=("a", "b"), tunable=True).tuning_range() == ("choices", "a", "b")
    with pytest.raises(ValueError, match="need tunable"):
        Param("x", 0.1, log=True)


def test_every_registered_tunable_declares_a_usable_range(monkeypatch):
    """All built-in and baseline methods' tunables (defaults inside their range)."""
    registry, _ = load_registry()
    tunables = {}
    for entry in registry.entries("method"):
        for p in entry.spec.params:
            if p.tunable:
                tunables[f"{entry.spec.name}.{p.name}"] = p.tuning_range()
                p.coerce(p.default)
    assert {"gan.alpha", "gan.lr", "deepobliviate.epsilon"} <= set(tunables)


# --- the validation protocol -----------------------------------------------------------------


def test_tuning_never_touches_the_evaluated_forget_set_test_or_attack_data(tmp_path, registry):
    tuning_plugin.SEEN.clear()
    results, prepared = tune(tuning_suite(tmp_path), tmp_path / "out", registry)
    assert results and results[0].trials == 4
    task = prepared.runner.build_task(prepared.plan.tasks[0])
    data = validation_data(task, seed=3)
    measure(task.new_model("x"), data)  # what one objective evaluation reads
    s = task.splits
    forbidden = torch.cat([s.forget, s.test, s.nonmember, s.shadow_in, s.shadow_out])
    touched = torch.tensor(sorted(data.touched))
    assert touched.numel() > 0
    assert not torch.isin(touched, forbidden).any()
    # V: same kind and size as the request, inside retain, so disjoint from F
    assert data.forget.numel() == s.forget.numel()
    assert torch.isin(data.forget, s.retain).all()
    assert not torch.isin(data.holdout, data.method_auxiliary).any()
    # what the method was handed during tuning: no test / attack data, half of auxiliary
    assert tuning_plugin.SEEN
    for seen in tuning_plugin.SEEN:
        vs = seen.splits
        assert vs.test.numel() == vs.nonmember.numel() == 0
        assert vs.shadow_in.numel() == vs.shadow_out.numel() == 0
        assert not torch.isin(vs.forget, s.forget).any()
        assert not torch.isin(vs.auxiliary, data.holdout).any()
        assert torch.equal(torch.cat(seen.forget_steps).sort().values, vs.forget.sort().values)


def test_a_class_request_validates_on_another_class(tmp_path, registry):
    suite = tuning_suite(tmp_path, requests=({"kind": "class", "label": 1},))
    prepared = prepare_run(suite, tmp_path / "out", registry, device="cpu")
    task = prepared.runner.build_task(prepared.plan.tasks[0])
    data = validation_data(task, seed=0)
    classes = set(task.y[data.forget].tolist())
    assert len(classes) == 1 and classes != {1}
    assert not torch.isin(data.forget, task.splits.forget).any()


# --- budget, reproducibility, resume -------------------------------------------------------


def test_a_study_is_reproducible_from_its_seed_and_resumes(tmp_path, registry):
    first, _ = tune(tuning_suite(tmp_path), tmp_path / "a", registry)
    second, _ = tune(tuning_suite(tmp_path), tmp_path / "b", registry)
    assert first[0].best_params == second[0].best_params
    assert first[0].best_value == second[0].best_value
    again, _ = tune(tuning_suite(tmp_path), tmp_path / "a", registry)  # resumes: no new trial
    assert again[0].trials == 4
    with sqlite3.connect(tmp_path / "a" / STORAGE_FILE) as db:
        assert db.execute("select count(*) from trials").fetchone()[0] == 4


def test_a_trial_over_the_work_cap_is_pruned(tmp_path, registry):
    import optuna

    retain = 240 - 12 - 12  # target - F - V: the validation retain set
    cap = 1.5 * (240 - 12)  # one fine-tuning epoch on target - V fits, two do not
    text = f"[tuning]\ntrials = 8\nmax_sample_passes = {cap}\nseed = 1\n"
    results, _ = tune(tuning_suite(tmp_path, text), tmp_path / "out", registry)
    assert retain > 0
    storage = f"sqlite:///{tmp_path / 'out' / STORAGE_FILE}"
    study = optuna.load_study(study_name=results[0].name, storage=storage)
    trials = study.get_trials()
    assert {t.state for t in trials if t.params["epochs"] >= 2} <= {optuna.trial.TrialState.PRUNED}
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert complete and all(t.params["epochs"] == 1 for t in complete)
    assert all(t.user_attrs["unlearn_sample_passes"] <= cap for t in complete)
    assert results[0].pruned == len(trials) - len(complete) > 0


# --- tuned runs -------------------------------------------------------------------------------


def test_a_tuned_run_needs_its_study_then_adds_labelled_rows(tmp_path, registry, monkeypatch):
    tuned = "[tuning]\ntrials = 3\nmax_sample_passes = 1000\nseed = 3\ntuned = true\n"
    suite = tuning_suite(tmp_path, tuned)
    out = tmp_path / "out"
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    assert main(["run", str(suite), "--out", str(out), "--check"]) == 2
    results, _ = tune(suite, out, registry)
    run_suite(suite, out, registry, device="cpu")
    with ResultStore(out / STORE_FILE, read_only=True) as store:
        cells = {c["method"]: c for c in store.cells()}
    assert {"tiny_finetune", "tiny_finetune[tuned]", "retrain"} <= set(cells)
    assert cells["tiny_finetune[tuned]"]["status"] == "ok"
    config = json.loads(cells["tiny_finetune[tuned]"]["config"])
    assert config["method"]["params"] == {**results[0].best_params, "note": "a"}


def test_a_study_stopped_part_way_is_not_used_as_tuned(tmp_path, registry, monkeypatch, capsys):
    """`tune` killed at 3 of 5 trials: `run` with tuned = true used the best-so-far
    parameters without a word. Now it refuses, naming the study and the way out."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    out = tmp_path / "out"
    tune(tuning_suite(tmp_path, budget(3)), out, registry)
    suite = tuning_suite(tmp_path, budget(5) + "tuned = true\n")  # the same study, 5 trials
    assert main(["run", str(suite), "--out", str(out), "--check"]) == 2
    err = capsys.readouterr().err
    assert "tuning.tuned" in err and "has finished 3 of its 5 trials" in err
    assert f"unlearnbench tune SUITE --out {out}" in err
    suite = tuning_suite(tmp_path, budget(3) + "tuned = true\n")
    assert main(["run", str(suite), "--out", str(out), "--check"]) == 0


def test_a_method_with_no_setting_within_the_budget_has_no_tuned_row(
    tmp_path, registry, monkeypatch, caplog
):
    """UNSIR on the tuned board: every trial past the work cap. `run` refused the whole
    board ("no finished tuning study"); now that method has no tuned row, said."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    tight = "[tuning]\ntrials = 2\nmax_sample_passes = 1\nseed = 3\n"
    out = tmp_path / "out"
    results, _ = tune(tuning_suite(tmp_path, tight), out, registry)
    assert results[0].pruned == 2 and results[0].best_params == {}
    suite = tuning_suite(tmp_path, tight + "tuned = true\n")
    with caplog.at_level("WARNING"):
        run_suite(suite, out, registry, device="cpu")
    with ResultStore(out / STORE_FILE, read_only=True) as store:
        methods = {c["method"] for c in store.cells()}
    assert "tiny_finetune" in methods and "tiny_finetune[tuned]" not in methods
    assert "no tiny_finetune[tuned] cell" in caplog.text
    assert "none of its 2 trials finished within the budget" in caplog.text


def test_a_trial_past_its_time_limit_fails_and_the_study_goes_on(tmp_path, monkeypatch, caplog):
    """tune had no per-trial limit: a stuck trial held its study for ever."""
    import optuna

    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", f"{PLUGINS},{HOSTILE}")
    suite = tuning_suite(tmp_path, budget(2), methods=("retrain", "stubborn"))
    suite.write_text(suite.read_text().replace("seconds = 3.0", ""), encoding="utf-8")
    out = tmp_path / "out"
    code = main(
        [
            "tune",
            str(suite),
            "--out",
            str(out),
            "--no-progress",
            "--executor",
            "local",
            "--trial-timeout",
            "0.5",
        ]
    )
    assert code in (0, 1)
    storage = f"sqlite:///{out / 'tuning.sqlite'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    assert len(trials) == 2
    reasons = [t.user_attrs.get("failed_because", "") for t in trials]
    assert all("past the per-trial time limit of 0.5 s" in r for r in reasons), reasons


def test_a_trial_writing_into_the_task_changes_no_other_study(tmp_path, monkeypatch):
    """A tuned method that writes into the validation task fails its trials, named, and
    the next study's trials see the data as it was (the same values as without it)."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", f"{PLUGINS},{HOSTILE}")
    values = {}
    for name, methods in (
        ("clean", ("retrain", "tiny_finetune")),
        ("poisoned", ("retrain", "poison_data", "tiny_finetune")),
    ):
        folder = tmp_path / name
        folder.mkdir()
        suite = tuning_suite(folder, budget(2), methods=methods)
        assert main(
            [
                "tune",
                str(suite),
                "--out",
                str(folder / "out"),
                "--no-progress",
                "--executor",
                "local",
            ]
        ) in (0, 1)
        studies = trials_by_index(folder / "out")
        values[name] = {n.split(" | ")[0]: t for n, t in studies.items()}
    poison = values["poisoned"].pop("poison_data")
    assert all(state.name == "FAIL" for _, state, _, _ in poison.values())
    assert values["poisoned"] == values["clean"]


def test_a_bad_trial_timeout_is_refused(tmp_path, capsys):
    assert main(["tune", str(tmp_path / "s.toml"), "--trial-timeout", "0"]) == 2
    assert "--trial-timeout must be a positive number" in capsys.readouterr().err


# --- bad input: exit 2, the key named, nothing trained -------------------------------------


@pytest.mark.parametrize(
    ("tuning", "key"),
    [
        ("trials = 0\nmax_sample_passes = 10\n", "tuning.trials"),
        ("trials = 2\nmax_sample_passes = 0\n", "tuning.max_sample_passes"),
        ("trials = 2\n", "tuning.max_sample_passes"),
        ("trials = 2\nmax_sample_passes = 10\nbudget = 3\n", "tuning.budget"),
        (
            "trials = 2\nmax_sample_passes = 10\n[tuning.space.tiny_finetune]\nmomentum = true\n",
            "tuning.space.tiny_finetune.momentum",
        ),
        (
            "trials = 2\nmax_sample_passes = 10\n[tuning.space.tiny_finetune]\nnote = true\n",
            "tuning.space.tiny_finetune.note",
        ),
        (
            "trials = 2\nmax_sample_passes = 10\n[tuning.space.tiny_finetune]\nlr = [0.1, 0.01]\n",
            "tuning.space.tiny_finetune.lr",
        ),
        (
            "trials = 2\nmax_sample_passes = 10\n[tuning.space.tiny_finetune]\nlr = [1e-9, 0.1]\n",
            "tuning.space.tiny_finetune.lr",
        ),
        (
            "trials = 2\nmax_sample_passes = 10\n[tuning.space.nosuch]\nlr = true\n",
            "tuning.space.nosuch",
        ),
    ],
)
def test_bad_tuning_input_exits_2_naming_the_key_before_training(
    tmp_path, monkeypatch, capsys, tuning, key
):
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    suite = tuning_suite(tmp_path, "[tuning]\n" + tuning)
    out = tmp_path / "out"
    assert main(["tune", str(suite), "--out", str(out)]) == 2
    assert f"{key}:" in capsys.readouterr().err
    assert not out.exists()


def test_tuning_a_backdoor_request_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    suite = tuning_suite(tmp_path, requests=({"kind": "backdoor", "count": 10},))
    assert main(["tune", str(suite), "--out", str(tmp_path / "out")]) == 2
    assert "requests[0]" in capsys.readouterr().err


def test_trial_zero_runs_the_defaults_so_tuned_is_never_worse_on_validation(tmp_path, registry):
    import optuna

    results, _ = tune(tuning_suite(tmp_path), tmp_path / "out", registry)
    storage = f"sqlite:///{tmp_path / 'out' / STORAGE_FILE}"
    first = optuna.load_study(study_name=results[0].name, storage=storage).trials[0]
    assert first.params == {"epochs": 1, "lr": 0.01} and first.user_attrs["defaults"]
    assert results[0].default_value == first.value
    assert results[0].best_value is not None and results[0].best_value <= first.value


# --- executors, resuming, crash safety ------------------------------------------------------


def test_a_study_resumed_after_three_trials_equals_one_run_straight_to_six(tmp_path, registry):
    """Each trial is asked with a sampler seeded by its index, so stopping and
    resuming replays nothing and changes nothing (one sampler for the whole run,
    restarted on resume, asked trial 3 what it had asked trial 1)."""
    straight, _ = tune(tuning_suite(tmp_path, budget(6)), tmp_path / "straight", registry)
    tune(tuning_suite(tmp_path, budget(3)), tmp_path / "resumed", registry)
    assert [len(t) for t in trials_by_index(tmp_path / "resumed").values()] == [3]
    resumed, _ = tune(tuning_suite(tmp_path, budget(6)), tmp_path / "resumed", registry)
    expected = trials_by_index(tmp_path / "straight")
    assert trials_by_index(tmp_path / "resumed") == expected
    assert len(expected[straight[0].name]) == 6
    assert len({str(p) for p, *_ in expected[straight[0].name].values()}) == 6  # a search
    assert resumed == straight


@pytest.mark.slow  # 17-24 s on a busy 2-core machine (two workers start)
def test_local_and_processes_executors_run_the_same_trials(tmp_path, registry):
    """Two studies (two seeds) on two workers: per study, the same parameters and
    outcomes per trial as in this process (at one torch thread each)."""
    suite = tuning_suite(tmp_path, budget(4), seeds=(0, 1))
    local, _ = tune(suite, tmp_path / "local", registry, executor="local", threads=1)
    procs, prepared = tune(
        suite,
        tmp_path / "procs",
        registry,
        executor="processes",
        workers=2,
        threads=1,
        registry_factory=RegistryFactory(load_entry_points=False),
    )
    assert prepared.executor.name == "processes" and prepared.executor.threads == 1
    expected = trials_by_index(tmp_path / "local")
    assert len(expected) == 2 and all(len(t) == 4 for t in expected.values())
    assert trials_by_index(tmp_path / "procs") == expected
    assert procs == local


def test_tune_on_the_processes_executor_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", PLUGINS)
    suite = tuning_suite(tmp_path, budget(3), seeds=(0, 1))
    out = tmp_path / "out"
    args = ["tune", str(suite), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main([*args, "--executor", "processes", "--workers", "2"]) == 0
    captured = capsys.readouterr()
    assert "processes executor" in captured.err
    assert "| tiny_finetune | blobs/mlp/random:12/seed 1 | 3 | 0 |" in captured.out
    assert (out / "tuning.md").read_text("utf-8") in captured.out
    assert not (out / LOCKS_DIR).exists()
    # resumed: nothing left to run, so `auto` stays in this process
    assert main([*args, "--executor", "auto"]) == 0
    assert "executor: local (0 studies with 0 trials pending" in capsys.readouterr().err


def test_a_trial_left_running_by_a_killed_tune_is_asked_again_on_resume(tmp_path, registry):
    """A trial a dead run left RUNNING is marked FAIL (interrupted), does not count,
    and its index is asked again: the study then equals one run straight through."""
    import optuna

    tune(tuning_suite(tmp_path, budget(4)), tmp_path / "straight", registry)
    results, _ = tune(tuning_suite(tmp_path, budget(2)), tmp_path / "out", registry)
    storage = f"sqlite:///{tmp_path / 'out' / STORAGE_FILE}"
    study = optuna.load_study(study_name=results[0].name, storage=storage)
    left = study.ask()  # what a `tune` killed mid-trial leaves behind
    left.suggest_int("epochs", 1, 4)
    assert study.trials[-1].state == optuna.trial.TrialState.RUNNING

    resumed, _ = tune(tuning_suite(tmp_path, budget(4)), tmp_path / "out", registry)
    trials = optuna.load_study(study_name=results[0].name, storage=storage).trials
    assert len(trials) == 5 and resumed[0].trials == 4
    interrupted = trials[left.number]
    assert interrupted.state == optuna.trial.TrialState.FAIL
    assert interrupted.user_attrs["interrupted"] is True
    assert "interrupted" in interrupted.user_attrs["failed_because"]
    assert trials_by_index(tmp_path / "out") == trials_by_index(tmp_path / "straight")


@pytest.mark.parametrize(
    ("cores", "trials", "seeds", "expected"),
    [
        (8, 20, (0, 1), "processes (2 studies with 40 trials pending on 8 cores; 1 torch"),
        (8, 20, (0,), "local (1 studies with 20 trials pending on 8 cores: worker processes"),
        (8, 3, (0, 1), "local (2 studies with 6 trials pending on 8 cores: worker processes"),
        (1, 20, (0, 1), "local (2 studies with 40 trials pending on 1 cores: worker"),
    ],
)
def test_auto_tunes_in_worker_processes_only_when_they_pay(
    tmp_path, registry, monkeypatch, cores, trials, seeds, expected
):
    """A study's trials run one after another: processes need several studies."""
    monkeypatch.setattr(device_module, "available_cores", lambda: cores)
    suite = tuning_suite(tmp_path, budget(trials), seeds=seeds)
    out = tmp_path / "out"
    studied = run_module.tuning_suite(load_suite(suite))
    choice = choose_tune_executor(studied, registry, out, device="cpu")
    assert f"{choice.executor} ({choice.why}".startswith(expected) and choice.threads == 1
    assert not out.exists()


def test_two_tunes_never_share_a_results_folder(tmp_path, registry):
    out = tmp_path / "out"
    prepared = prepare_tuning(tuning_suite(tmp_path, budget(2)), out, registry, device="cpu")
    lock = FileLock(out / LOCKS_DIR / TUNING_LOCK)
    assert lock.acquire(blocking=False)  # another `tune` holds the folder
    try:
        with pytest.raises(TuningError, match="another `unlearnbench tune`"):
            run_tuning(prepared, registry)
    finally:
        lock.release()
    assert run_tuning(prepared, registry)[0].trials == 2


@pytest.mark.slow
def test_tune_on_ray_runs_the_local_trials(tmp_path, registry):
    pytest.importorskip("ray")
    suite = tuning_suite(tmp_path, budget(3), seeds=(0, 1))
    local, _ = tune(suite, tmp_path / "local", registry, executor="local", threads=1)
    on_ray, _ = tune(
        suite,
        tmp_path / "ray",
        registry,
        executor="ray",
        threads=1,
        registry_factory=RegistryFactory(load_entry_points=False),
    )
    assert trials_by_index(tmp_path / "ray") == trials_by_index(tmp_path / "local")
    assert on_ray == local


def test_tune_on_a_folder_is_a_usage_error_not_a_traceback(tmp_path, capsys) -> None:
    """``run`` and ``tune`` load their suite through one helper: an unreadable suite
    (here a folder) exits 2 naming it (``tune`` used to raise IsADirectoryError)."""
    assert main(["tune", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert f"{tmp_path} cannot be read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
