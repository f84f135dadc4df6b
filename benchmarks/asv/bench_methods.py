"""Speed of each method's unlearning step and of the shared training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from unlearnbench.specs import resolve_params

from .common import METHODS, method_spec, tiny


class Unlearn:
    """``time_unlearn``: the timed ``unlearn`` step only; ``fit`` is set-up.

    Methods that are not installed are skipped. The shared trained model is
    built once in ``setup_cache`` and loaded from the artifact cache.
    """

    params: ClassVar[list[str]] = list(METHODS)
    param_names: ClassVar[list[str]] = ["method"]
    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    rounds = 1
    timeout = 300

    def setup_cache(self) -> str:
        cache = str(Path.cwd() / "artifacts")  # asv's shared temporary directory
        _, ctx = tiny(cache)
        ctx.original()
        return cache

    def setup(self, cache: str, method: str) -> None:
        spec = method_spec(method)
        self.task, self.ctx = tiny(cache)
        self.method: Any = spec.create(resolve_params(spec.params, {}))
        self.state = self.method.fit(self.task, self.ctx)
        self.forget = self.task.forget_steps[0]

    def time_unlearn(self, cache: str, method: str) -> None:
        self.method.unlearn(self.state, self.forget, self.task, self.ctx)


class Training:
    """``time_train_model``: the one shared training loop (5 epochs, 300 points)."""

    number = 1
    repeat = (1, 5, 30.0)
    warmup_time = 0.0
    rounds = 1

    def setup(self) -> None:
        self.task, self.ctx = tiny(Path.cwd() / "unused-cache")
        # one untimed epoch first: the first call in a process pays one-off set-up
        self.ctx.train(self.task.new_model("init"), self.task.splits.target, epochs=1)
        self.model = self.task.new_model("init")

    def time_train_model(self) -> None:
        self.ctx.train(self.model, self.task.splits.target)
