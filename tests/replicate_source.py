"""A replicate source for evaluator tests: records what it was asked for and gave."""

from __future__ import annotations


class Recording:
    """A replicate source that records what it was asked for and what it gave."""

    def __init__(self, source):
        self.source, self.calls, self.given = source, [], []

    def __call__(self, n, label, *, naive=False):
        self.calls.append((n, label, naive))
        replicates = self.source(n, label, naive=naive)
        self.given.append(replicates)
        return replicates
