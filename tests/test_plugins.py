"""The plugin host: hooks, registry, built-ins, entry points, block list."""

from __future__ import annotations

import inspect
from collections.abc import Generator
from importlib import metadata
from pathlib import Path

import pytest

from tests.plugins.fixture_plugins import DuplicateRetrain, FixturePlugin
from unlearnbench import DatasetSpec, MethodSpec, hookimpl, hookspecs
from unlearnbench.host.manager import (
    BLOCK_ENV,
    DEFAULT_PLUGINS,
    PluginLoadError,
    blocked_from_env,
    collect_registry,
    load_registry,
    make_plugin_manager,
)
from unlearnbench.host.registry import RegistryError

ROOT = Path(__file__).resolve().parents[1]
HOOKS = [
    name
    for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("unlearnbench_")
]


def test_there_are_four_registration_hooks() -> None:
    assert sorted(HOOKS) == [
        "unlearnbench_architectures",
        "unlearnbench_datasets",
        "unlearnbench_evaluators",
        "unlearnbench_methods",
    ]


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook: str) -> None:
    """A hook without a docstring, a README mention or a test that calls it fails here."""
    assert (getattr(hookspecs, hook).__doc__ or "").strip(), f"{hook} has no docstring"
    assert hook in (ROOT / "README.md").read_text(), f"{hook} is not documented in README.md"
    tests = "".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    assert f"pm.hook.{hook}()" in tests, f"no test calls the hook {hook}"


def test_each_hook_returns_specs_from_builtins() -> None:
    from unlearnbench.host.manager import make_plugin_manager

    pm, _ = make_plugin_manager(load_entry_points=False)
    assert pm.hook.unlearnbench_datasets()
    assert pm.hook.unlearnbench_architectures()
    assert pm.hook.unlearnbench_methods()
    assert pm.hook.unlearnbench_evaluators()


def test_builtins_are_ordinary_modules_registered_by_name() -> None:
    registry, infos = load_registry(load_entry_points=False)
    names = {info.name for info in infos}
    assert {"retrain", "original", "accuracy", "embedded"} <= names
    assert len(infos) == len(DEFAULT_PLUGINS)
    assert registry.entry("method", "retrain").origin.plugin == "retrain"
    for module in DEFAULT_PLUGINS:
        path = ROOT / module.replace(".", "/")
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        source = path.read_text(encoding="utf-8")
        assert "pluggy" not in source, f"{module} should use unlearnbench.hookimpl, not pluggy"


def test_collision_names_both_origins() -> None:
    with pytest.raises(RegistryError) as err:
        load_registry(load_entry_points=False, extra_plugins=[DuplicateRetrain()])
    message = str(err.value)
    assert "'retrain' is registered twice" in message
    assert "plugin 'retrain'" in message and "plugin 'duplicate'" in message


def test_unknown_name_suggests_the_closest() -> None:
    registry, _ = load_registry(load_entry_points=False)
    with pytest.raises(RegistryError, match="Did you mean 'retrain'"):
        registry.get("method", "retrian")
    with pytest.raises(RegistryError, match=r"Known datasets: .*digits.*mnist1d"):
        registry.get("dataset", "zzz")


def test_block_list_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "original, consistency")
    assert blocked_from_env() == {"original", "consistency"}
    registry, infos = load_registry(load_entry_points=False)
    assert "original" not in registry.names("method")
    assert "consistency" not in registry.names("evaluator")
    assert "retrain" in registry.names("method")
    assert "original" not in {i.name for i in infos}


def test_extra_plugin_objects_register_like_modules() -> None:
    registry, _ = load_registry(load_entry_points=False, extra_plugins=[FixturePlugin()])
    assert "blobs" in registry.names("dataset")
    assert registry.entry("method", "exploding").origin.plugin == "fixture"


def _fake_entry_points(*eps: metadata.EntryPoint):
    def entry_points(group: str):
        assert group == "unlearnbench"
        return list(eps)

    return entry_points


def test_entry_points_are_loaded_and_blockable(monkeypatch: pytest.MonkeyPatch) -> None:
    import unlearnbench.host.manager as plugins

    ep = metadata.EntryPoint(
        name="fixture-ep", value="tests.plugins.entry_point_plugin", group="unlearnbench"
    )
    monkeypatch.setattr(plugins.metadata, "entry_points", _fake_entry_points(ep))
    registry, _ = load_registry()
    assert "blobs2" in registry.names("dataset")
    assert registry.entry("dataset", "blobs2").origin.plugin == "fixture-ep"
    registry, _ = load_registry(blocked={"fixture-ep"})
    assert "blobs2" not in registry.names("dataset")


def test_plugin_that_raises_at_import_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    import unlearnbench.host.manager as plugins

    ep = metadata.EntryPoint(
        name="broken", value="tests.plugins.broken_plugin", group="unlearnbench"
    )
    monkeypatch.setattr(plugins.metadata, "entry_points", _fake_entry_points(ep))
    with pytest.raises(PluginLoadError, match=r"plugin 'broken'.*failed to import.*ZeroDivision"):
        load_registry()
    # and it can be blocked away
    registry, _ = load_registry(blocked={"broken"})
    assert "retrain" in registry.names("method")


def test_public_api_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, unlearnbench; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_local_plugins_come_from_the_environment(monkeypatch) -> None:
    """UNLEARNBENCH_PLUGINS registers importable objects without packaging, in order."""
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", "tests.plugins.fixture_plugins:FixturePlugin")
    registry, infos = load_registry(load_entry_points=False)
    assert "exploding" in registry.names("method")
    assert registry.entry("method", "exploding").origin.plugin == "fixture"
    assert infos[-1].name == "fixture"
    # the block list still applies, and an explicit empty list overrides the variable
    blocked, _ = load_registry(load_entry_points=False, blocked={"fixture"})
    assert "exploding" not in blocked.names("method")
    plain, _ = load_registry(load_entry_points=False, local_plugins=())
    assert "exploding" not in plain.names("method")


@pytest.mark.parametrize(
    "name", ["tests.plugins.no_such_module", "tests.plugins.fixture_plugins:Nope"]
)
def test_a_local_plugin_that_cannot_load_names_the_variable(monkeypatch, name: str) -> None:
    monkeypatch.setenv("UNLEARNBENCH_PLUGINS", name)
    with pytest.raises(PluginLoadError, match=rf"local plugin '{name}'.*UNLEARNBENCH_PLUGINS"):
        load_registry(load_entry_points=False)


class _WrappedMethods:
    """Registers two methods and, with a hook wrapper of its own, keeps only one."""

    __name__ = "wrapped"

    @hookimpl
    def unlearnbench_methods(self) -> list[MethodSpec]:
        return [
            MethodSpec(name=name, create=lambda params: None, description="fixture")
            for name in ("kept", "dropped")
        ]

    @hookimpl(wrapper=True, specname="unlearnbench_methods")
    def keep_one(self) -> Generator[None, list[list[MethodSpec]], list[list[MethodSpec]]]:
        results = yield
        return [[spec for spec in specs if spec.name == "kept"] for specs in results]


class _RaisingDatasets:
    __name__ = "raiser"

    @hookimpl
    def unlearnbench_datasets(self) -> list[DatasetSpec]:
        raise RuntimeError("no data today")


def test_registration_hooks_are_called_through_pluggy() -> None:
    """Pluggy's hook-call monitoring sees every registration hook (collect_registry
    once called the implementations by hand, past pluggy)."""
    pm, infos = make_plugin_manager(load_entry_points=False, extra_plugins=[FixturePlugin()])
    called: list[str] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: called.append(name), lambda *a: None)
    registry = collect_registry(pm, infos)
    assert set(called) == set(HOOKS)
    assert registry.entry("dataset", "blobs").origin.plugin == "fixture"
    assert registry.entry("method", "retrain").origin.distribution == "unlearnbench"


def test_a_plugins_own_hook_wrapper_runs_and_its_specs_keep_their_origin() -> None:
    registry, _ = load_registry(load_entry_points=False, extra_plugins=[_WrappedMethods()])
    assert "kept" in registry.names("method") and "dropped" not in registry.names("method")
    assert registry.entry("method", "kept").origin.plugin == "wrapped"


def test_a_hook_that_raises_names_its_plugin() -> None:
    with pytest.raises(PluginLoadError, match=r"plugin 'raiser'.*unlearnbench_datasets.*no data"):
        load_registry(load_entry_points=False, extra_plugins=[_RaisingDatasets()])
