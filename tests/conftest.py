"""Shared fixtures for unlearnbench's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugins.fixture_plugins import FixturePlugin


@pytest.fixture
def fixture_registry():
    """Built-ins plus the fixture plugin (blobs data set, exploding method); no entry points."""
    from unlearnbench.host.manager import load_registry

    registry, _ = load_registry(load_entry_points=False, extra_plugins=[FixturePlugin()])
    return registry


@pytest.fixture
def with_fixture_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every load_registry() call (the CLI's too) include the fixture plugin."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "tests.plugins.fixture_plugins:FixturePlugin")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread: the test models are tiny, and two spinning threads on a
    shared 2-core machine made tests several times slower."""
    import torch

    torch.set_num_threads(1)
