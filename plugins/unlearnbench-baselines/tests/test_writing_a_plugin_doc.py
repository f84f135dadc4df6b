"""docs/writing-a-plugin.md shows code that runs: its method module is executed
here and its method passes a stream of deletions, deterministically; its TOML
blocks parse and its entry point has the shape the baselines package uses."""

from __future__ import annotations

import re
import tomllib
import types
from pathlib import Path

import pytest
import torch
from unlearnbench import MethodSpec, Unlearned
from unlearnbench.task_values import ForgetRequest
from unlearnbench.testing import run_unlearning

DOC = Path(__file__).resolve().parents[3] / "docs" / "writing-a-plugin.md"
PLUGIN_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"

pytestmark = pytest.mark.skipif(not DOC.exists(), reason="runs inside the repository only")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def doc_module() -> types.ModuleType:
    (source,) = [b for b in blocks("python") if "def unlearnbench_methods" in b]
    module = types.ModuleType("unlearnbench_myft_doc")
    exec(compile(source, str(DOC), "exec"), module.__dict__)
    return module


def test_the_documented_method_runs_a_stream_deterministically(make_tiny_task):
    (spec,) = doc_module().unlearnbench_methods()
    assert isinstance(spec, MethodSpec) and spec.name == "my_finetune"
    outputs = []
    for _ in range(2):
        task, ctx = make_tiny_task(request=ForgetRequest(kind="random", count=10, steps=2))
        result = run_unlearning(spec, task, ctx, {"epochs": 2})
        assert isinstance(result, Unlearned)
        assert result.state["removed"].numel() == 10
        with torch.no_grad():
            outputs.append(result.model(task.x[task.splits.test]))
    assert outputs[0].shape == (task.splits.test.numel(), task.num_classes)
    assert torch.equal(outputs[0], outputs[1])


def test_the_documented_toml_parses_and_matches_the_real_entry_point():
    parsed = [tomllib.loads(b) for b in blocks("toml")]
    pyproject = next(p for p in parsed if "project" in p)
    assert pyproject["project"]["entry-points"]["unlearnbench"] == {
        "myft": "unlearnbench_myft.plugin"
    }
    real = tomllib.loads(PLUGIN_PYPROJECT.read_text(encoding="utf-8"))
    assert real["project"]["entry-points"]["unlearnbench"] == {
        "baselines": "unlearnbench_baselines.plugin"
    }
    suite = next(p for p in parsed if "methods" in p)
    assert "my_finetune" in [m["name"] for m in suite["methods"]]
