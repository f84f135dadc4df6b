"""Avg. Gap membership comes from ``Metric`` declarations, not metric names: a
third-party evaluator counts exactly like a built-in one, and a store written
before the declarations were stored still renders its Avg. Gap."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.suites import suite_toml
from unlearnbench import EvaluationInputs, EvaluatorSpec, MethodContext, Metric, hookimpl
from unlearnbench.execution import run_suite
from unlearnbench.execution.store import STORE_FILE, CellRecord, MetricValue, ResultStore
from unlearnbench.reports.board import build_leaderboard, declarations
from unlearnbench.reports.gaps import AVG_GAP, avg_gap_metrics


class Agreement:
    """Share of test points on which the unlearned model predicts what retrain does."""

    def evaluate(self, inputs: EvaluationInputs, ctx: MethodContext) -> dict[str, float]:
        test = inputs.task.x[inputs.task.splits.test]
        with torch.no_grad():
            same = inputs.unlearned(test).argmax(1) == inputs.reference(test).argmax(1)
        return {"agreement": float(same.float().mean())}


AGREEMENT = Metric("agreement", "higher", "fraction", "test agreement with retrain", avg_gap=True)


class AgreementPlugin:
    """A local evaluator, registered through the public hook API only."""

    __name__ = "agreement-plugin"

    @hookimpl
    def unlearnbench_evaluators(self) -> list[EvaluatorSpec]:
        return [EvaluatorSpec("agreement", lambda p: Agreement(), metrics=(AGREEMENT,))]


def test_a_third_party_metric_declared_in_avg_gap_is_averaged_in_it(tmp_path: Path) -> None:
    from unlearnbench.host.manager import load_registry

    registry, _ = load_registry(load_entry_points=False, extra_plugins=[AgreementPlugin()])
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_toml("declared", evaluators=("accuracy", "agreement")))
    result = run_suite(suite, tmp_path / "out", registry, device="cpu")
    assert result.summary.ok == 2
    with ResultStore(tmp_path / "out" / STORE_FILE, read_only=True) as store:
        board = build_leaderboard(store)
    mine = ["test_accuracy", "retain_accuracy", "forget_accuracy", "agreement"]
    assert board.avg_gap_metrics == mine
    original = board.table[board.table["method"] == "original"].iloc[0]
    assert original["agreement_gap"] > 0  # the original disagrees with retrain somewhere
    assert original[AVG_GAP] == pytest.approx(sum(original[f"{m}_gap"] for m in mine) / 4)


def test_the_lowest_mia_gap_rank_present_is_the_one_attack_term() -> None:
    about = {
        "acc": {"avg_gap": True},
        "their_attack": {"mia_gap": 1},
        "our_attack": {"mia_gap": 0},
        "other": {"role": "attack"},
    }
    assert avg_gap_metrics(["their_attack", "acc", "our_attack", "other"], about) == [
        "acc",
        "our_attack",
    ]
    assert avg_gap_metrics(["their_attack", "acc"], about) == ["acc", "their_attack"]
    assert avg_gap_metrics(["other"], about) == []


def test_a_metric_is_in_avg_gap_or_the_attack_term_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        Metric("x", "none", avg_gap=True, mia_gap=0)
    assert Metric("x", "none", mia_gap=2).meta() == {"role": "", "avg_gap": False, "mia_gap": 2}


def _record(
    method: str, seed: int, values: Mapping[str, float], meta: dict[str, Any]
) -> CellRecord:
    return CellRecord(
        cell_id=f"{method}/{seed}",
        task_key=f"t/{seed}",
        dataset="digits",
        architecture="mlp",
        method=method,
        request="random:10",
        seed=seed,
        status="ok",
        config={},
        metrics=tuple(MetricValue(n, v, "higher", "fraction", meta) for n, v in values.items()),
    )


def test_a_store_older_than_the_declarations_takes_them_from_the_installed_evaluators(
    tmp_path: Path,
) -> None:
    """Stored meta without ``avg_gap`` (results written before it was stored): the
    board reads the installed evaluator's declaration, as ``leaderboard`` passes it;
    a later cell that stores it (a resumed run) is read first."""
    old = {"evaluator": "agreement", "role": ""}
    records = [_record(m, 0, {"agreement": v}, old) for m, v in (("retrain", 1.0), ("x", 0.7))]
    with ResultStore(tmp_path / "old" / STORE_FILE) as store:
        for rec in records:
            store.write(rec)
        assert build_leaderboard(store).avg_gap_metrics == []
        board = build_leaderboard(
            store, declared=lambda: declarations(AgreementPlugin().unlearnbench_evaluators())
        )
    assert board.avg_gap_metrics == ["agreement"]
    assert board.table.set_index("method").loc["x", AVG_GAP] == pytest.approx(0.3)
    new = {"evaluator": "agreement", **AGREEMENT.meta()}
    with ResultStore(tmp_path / "resumed" / STORE_FILE) as store:
        for rec in [*records, _record("y", 0, {"agreement": 0.9}, new)]:
            store.write(rec)
        assert build_leaderboard(store).avg_gap_metrics == ["agreement"]
