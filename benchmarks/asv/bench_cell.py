"""Peak memory of one full cell: plan, shared models, method, evaluators, store.

The cell runs through ``unlearnbench.execution.run_suite``, the path the CLI takes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

SUITE = """
name = "asv-cell"
seeds = [0]
reference = "retrain"
evaluators = ["accuracy", "time"]

[splits]
target = 300
nonmember = 100
test = 200
shadow_in = 150
shadow_out = 150

[train]
epochs = 5
batch_size = 32
lr = 0.003

[[datasets]]
name = "digits"

[[architectures]]
name = "mlp"
params = { widths = [32] }

[[methods]]
name = "retrain"

[[requests]]
kind = "random"
count = 10
"""


class FullCell:
    """``peakmem_full_cell``: the runner on a one-cell suite (retrain on tiny digits)."""

    rounds = 1
    timeout = 300

    def setup(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="unlearnbench-asv-cell-"))
        self.suite = self.folder / "suite.toml"
        self.suite.write_text(SUITE, encoding="utf-8")

    def peakmem_full_cell(self) -> None:
        from unlearnbench.execution import run_suite
        from unlearnbench.testing import registry

        result = run_suite(self.suite, self.folder / "out", registry(), device="cpu")
        assert result.summary.ok == 1, result.summary.failures

    def teardown(self) -> None:
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)
