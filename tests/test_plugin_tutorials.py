"""The plugin tutorials in docs/ run as shown.

For each of docs/tutorial-{dataset,architecture,evaluator}.md: the page's plugin
module is written to the file name the page gives, registered the way the page
says (``UNLEARNBENCH_PLUGINS=<module>``), the page's test is run, and its suite
runs to the end with the plugin's numbers in the results store. Every example
(the method one of docs/writing-a-plugin.md too) declares a range on each numeric
``Param`` and imports only what the page on the public API lists.
"""

from __future__ import annotations

import ast
import re
import sqlite3
import types
from pathlib import Path

import pytest

from unlearnbench import Param, ParamError
from unlearnbench.execution import run_suite
from unlearnbench.host.manager import load_registry
from unlearnbench.specs import resolve_params
from unlearnbench.testing import contracts

DOCS = Path(__file__).resolve().parents[1] / "docs"
TUTORIALS = {  # page -> (kind, the registered name)
    "tutorial-dataset.md": ("dataset", "moons"),
    "tutorial-architecture.md": ("architecture", "resmlp"),
    "tutorial-evaluator.md": ("evaluator", "forget_confidence"),
}
EXAMPLE_PAGES = [*TUTORIALS, "writing-a-plugin.md"]


def blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def plugin_source(page: str) -> str:
    (source,) = [b for b in blocks(page, "python") if "@hookimpl" in b]
    return source


def module_name(page: str) -> str:
    """The module the page registers: ``UNLEARNBENCH_PLUGINS=<name>`` in its console."""
    names = {
        m for b in blocks(page, "console") for m in re.findall(r"UNLEARNBENCH_PLUGINS=(\w+)", b)
    }
    (name,) = names
    heading = re.search(r"^## 1\. The module: `(\w+)\.py`", (DOCS / page).read_text(), re.M)
    assert heading and heading.group(1) == name, f"{page}: step 1 names another file"
    return name


def exec_module(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, name, "exec"), module.__dict__)
    return module


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Writes a page's module where the page says, registers it as the page says."""

    def register(page: str) -> str:
        name = module_name(page)
        (tmp_path / "plugins").mkdir()
        (tmp_path / "plugins" / f"{name}.py").write_text(plugin_source(page), encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
        monkeypatch.setenv("UNLEARNBENCH_PLUGINS", name)
        monkeypatch.setattr(contracts, "_REGISTRY", None)  # the kit's registry, rebuilt
        return name

    return register


@pytest.mark.parametrize("page", TUTORIALS)
def test_the_tutorial_plugin_registers_passes_its_test_and_runs_a_suite(
    page: str, registered, make_tiny_task, tmp_path: Path
) -> None:
    kind, spec_name = TUTORIALS[page]
    module = registered(page)
    registry, infos = load_registry()
    assert registry.entry(kind, spec_name).origin.plugin == module
    assert module in {info.name for info in infos}

    # the page's test, exactly as shown
    (test_source,) = [b for b in blocks(page, "python") if "def test_" in b]
    namespace: dict = {}
    exec(compile(test_source, f"{page} (test)", "exec"), namespace)
    (test,) = [f for n, f in namespace.items() if n.startswith("test_")]
    test(make_tiny_task) if test.__code__.co_argcount else test()

    # the page's suite, to the end, with the plugin's numbers stored
    (suite_text,) = [b for b in blocks(page, "toml")]
    suite_path = tmp_path / "suite.toml"
    suite_path.write_text(suite_text, encoding="utf-8")
    result = run_suite(suite_path, tmp_path / "out", registry, executor="local", device="cpu")
    assert result.summary.ok == result.plan.size > 0, result.summary.failures
    with sqlite3.connect(result.store_path) as conn:
        cells = conn.execute("SELECT config FROM cells").fetchall()
        metrics = {name for (name,) in conn.execute("SELECT DISTINCT name FROM metrics")}
    assert all(spec_name in config for (config,) in cells)
    if kind == "evaluator":
        assert {"forget_confidence", "forget_confidence_gap"} <= metrics


def example_params(page: str) -> list[Param]:
    module = exec_module(plugin_source(page), page)
    specs = [
        spec
        for name, hook in vars(module).items()
        if name.startswith("unlearnbench_")
        for spec in hook()
    ]
    assert specs, page
    return [p for spec in specs for p in spec.params]


@pytest.mark.parametrize("page", EXAMPLE_PAGES)
def test_every_numeric_example_param_declares_its_range(page: str) -> None:
    """As the pages advise: ranges on ``Param``, not checks in code."""
    for p in example_params(page):
        if isinstance(p.default, bool) or not isinstance(p.default, int | float):
            continue
        assert p.minimum is not None or p.maximum is not None or p.choices, (
            f"{page}: Param {p.name!r} declares no range"
        )


@pytest.mark.parametrize(
    ("page", "bad"),
    [
        ("writing-a-plugin.md", {"lr": 0.0}),
        ("writing-a-plugin.md", {"epochs": 0}),
        ("tutorial-dataset.md", {"noise": -0.1}),
        ("tutorial-architecture.md", {"activation": "gelu"}),
        ("tutorial-evaluator.md", {"temperature": 0.0}),
    ],
)
def test_out_of_range_values_are_refused_before_the_plugin_runs(page: str, bad: dict) -> None:
    (name,) = bad
    params = tuple(example_params(page))
    with pytest.raises(ParamError, match=name):
        resolve_params(params, bad)


def public_modules() -> set[str]:
    """The modules the section "The public API" of writing-a-plugin.md lists."""
    text = (DOCS / "writing-a-plugin.md").read_text(encoding="utf-8")
    section = text.split("## The public API", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(unlearnbench(?:\.\w+)?)` \|", section, re.M))


def test_the_public_api_is_listed_once_and_the_examples_keep_to_it() -> None:
    public = public_modules()
    assert {"unlearnbench", "unlearnbench.specs", "unlearnbench.testing"} <= public
    assert not public & {"unlearnbench.host", "unlearnbench.execution", "unlearnbench.builtin"}
    for page in EXAMPLE_PAGES:
        for source in blocks(page, "python"):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] == "unlearnbench":
                        assert name in public, f"{page} imports {name}, not in the public API"
    for page in TUTORIALS:
        assert "writing-a-plugin.md#the-public-api" in (DOCS / page).read_text(encoding="utf-8")
