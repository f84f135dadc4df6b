"""A module loaded through a (faked) entry point in the host's tests."""

from __future__ import annotations

from tests.plugins.fixture_plugins import load_blobs
from unlearnbench import DatasetSpec, hookimpl


@hookimpl
def unlearnbench_datasets() -> list[DatasetSpec]:
    return [DatasetSpec("blobs2", load_blobs, description="Blobs, via an entry point.")]
