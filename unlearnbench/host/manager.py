"""The one factory that builds the plugin manager and the registry.

Order (as in tox and pluggy's eggsample host): hook specs, built-in plugin
modules from ``DEFAULT_PLUGINS``, third-party plugins from the ``unlearnbench``
entry-point group, local plugins, the block list, then ``check_pending()``.
Nothing here runs at import time.

Local plugins need no packaging (tox's inline plugins play this part):
``UNLEARNBENCH_PLUGINS=module:object,other_module`` registers each importable
``module`` (or its attribute ``object``; a class is instantiated), in this
process and, since workers inherit the environment, in worker processes too.
The command line's ``--plugin module:object`` (``option_plugins``) loads the
same way, after them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from unlearnbench import hookspecs
from unlearnbench._markers import PROJECT_NAME
from unlearnbench.host.registry import Kind, Origin, Registry, RegistryError
from unlearnbench.specs import UnlearnbenchError

ENTRY_POINT_GROUP = "unlearnbench"
BLOCK_ENV = "UNLEARNBENCH_BLOCK_PLUGINS"
LOCAL_PLUGINS_ENV = "UNLEARNBENCH_PLUGINS"
PLUGIN_OPTION = "--plugin"  # where ``option_plugins`` come from, for error messages
LOCAL = "local"
"""The distribution shown for a plugin registered in-process (``local, <where given>``)."""

DEFAULT_PLUGINS: tuple[str, ...] = (
    "unlearnbench.builtin.datasets.embedded",
    "unlearnbench.builtin.datasets.vision",
    "unlearnbench.builtin.datasets.tabular",
    "unlearnbench.builtin.architectures.small",
    "unlearnbench.builtin.architectures.paper_models",
    "unlearnbench.builtin.methods.retrain",
    "unlearnbench.builtin.methods.original",
    "unlearnbench.builtin.methods.sisa",
    "unlearnbench.builtin.methods.deepobliviate",
    "unlearnbench.builtin.methods.gan",
    "unlearnbench.builtin.evaluators.accuracy",
    "unlearnbench.builtin.evaluators.consistency",
    "unlearnbench.builtin.evaluators.timing",
    "unlearnbench.builtin.evaluators.mia",
    "unlearnbench.builtin.evaluators.attacks",
    "unlearnbench.builtin.evaluators.lira",
    "unlearnbench.builtin.evaluators.unlearning_score",
    "unlearnbench.builtin.evaluators.u_lira",
    "unlearnbench.builtin.evaluators.backdoor",
    "unlearnbench.builtin.evaluators.costs",
)

_HOOKS: dict[Kind, str] = {
    "dataset": "unlearnbench_datasets",
    "architecture": "unlearnbench_architectures",
    "method": "unlearnbench_methods",
    "evaluator": "unlearnbench_evaluators",
}


class PluginLoadError(UnlearnbenchError):
    """A plugin could not be imported or registered."""


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin, for ``unlearnbench plugins``."""

    name: str
    distribution: str
    version: str
    module: str


def _env_list(name: str, environ: os._Environ[str] | dict[str, str] | None) -> list[str]:
    raw = (environ if environ is not None else os.environ).get(name, "")
    return [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]


def blocked_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> set[str]:
    """Plugin names (or distribution names) listed in UNLEARNBENCH_BLOCK_PLUGINS."""
    return set(_env_list(BLOCK_ENV, environ))


def local_plugins_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> list[str]:
    """The ``module[:object]`` names listed in UNLEARNBENCH_PLUGINS, in order."""
    return _env_list(LOCAL_PLUGINS_ENV, environ)


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def load_local_plugin(name: str, source: str = LOCAL_PLUGINS_ENV) -> Any:
    """``module`` or ``module:attribute`` -> the plugin object (a class is instantiated);
    errors name ``source``, where ``name`` was given."""
    module_name, colon, attr = name.partition(":")
    if not _dotted(module_name) or (colon and not _dotted(attr)):
        raise PluginLoadError(
            f"local plugin {name!r} in {source} is not a module or module:object "
            "name (dotted Python names, as in mypackage.plugin:MyPlugin)"
        )
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except ImportError as exc:
        if _is_missing(exc, module_name):
            raise PluginLoadError(_not_importable(name, module_name, source)) from exc
        raise PluginLoadError(
            f"local plugin {name!r} cannot be loaded: {type(exc).__name__}: {exc}. "
            f"Give importable module:object names in {source}"
        ) from exc
    except AttributeError as exc:
        raise PluginLoadError(
            f"local plugin {name!r} cannot be loaded: {type(exc).__name__}: {exc}. "
            f"Give importable module:object names in {source}"
        ) from exc
    return obj() if isinstance(obj, type) else obj


def _is_missing(exc: ImportError, module_name: str) -> bool:
    """Whether ``exc`` says ``module_name`` itself (or a package above it) is not found,
    not a module the plugin imports."""
    missing = getattr(exc, "name", None)
    return (
        isinstance(exc, ModuleNotFoundError)
        and bool(missing)
        and (module_name == missing or module_name.startswith(f"{missing}."))
    )


def _not_importable(name: str, module_name: str, source: str) -> str:
    """The error for a local plugin whose module Python cannot find: it must be
    importable, e.g. its folder on PYTHONPATH (a console script such as
    ``unlearnbench`` does not import from the current folder)."""
    top = module_name.split(".")[0]
    here = [p for p in (Path(f"{top}.py"), Path(top) / "__init__.py") if p.is_file()]
    hint = (
        f" {here[0]} is in the current folder, which the unlearnbench command does not "
        "import from: export PYTHONPATH=$PWD (or install it)."
        if here
        else " Put the folder that holds it on PYTHONPATH (export PYTHONPATH=/path/to/"
        "folder), or install it."
    )
    return (
        f"local plugin {name!r} in {source}: no module named {module_name!r} on this "
        f"Python's path (sys.path); a local plugin must be importable.{hint}"
    )


def local_plugin_name(plugin: object, given: str | None) -> str:
    """A registered in-process plugin's name: its own ``__name__`` (a module's name, or
    one the object declares), else the ``module:object`` text it was given by, else its
    class's name."""
    own = getattr(plugin, "__name__", None)
    if isinstance(own, str) and own:
        return own
    return given or type(plugin).__name__


def builtin_plugin_name(module_name: str) -> str:
    """Built-ins are named after their module's last part: ``retrain``, ``accuracy``."""
    return module_name.rsplit(".", 1)[-1]


def make_plugin_manager(
    *,
    blocked: Iterable[str] | None = None,
    load_entry_points: bool = True,
    extra_plugins: Iterable[ModuleType | object] = (),
    local_plugins: Iterable[str] | None = None,
    option_plugins: Iterable[str] = (),
) -> tuple[pluggy.PluginManager, list[PluginInfo]]:
    """Build a plugin manager with specs, built-ins, entry points, local plugins
    (``local_plugins``, default: :data:`LOCAL_PLUGINS_ENV`; then ``option_plugins``,
    the CLI's :data:`PLUGIN_OPTION`) and the block list."""
    block = set(blocked) if blocked is not None else blocked_from_env()
    names = list(local_plugins if local_plugins is not None else local_plugins_from_env())
    sources = [
        *((n, LOCAL_PLUGINS_ENV) for n in names),
        *((n, PLUGIN_OPTION) for n in option_plugins),
    ]
    given = list(extra_plugins)
    extra_plugins = [*given, *(load_local_plugin(name, source) for name, source in sources)]
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in block:
        pm.set_blocked(name)
    infos: list[PluginInfo] = []
    version = _own_version()
    for module_name in DEFAULT_PLUGINS:
        name = builtin_plugin_name(module_name)
        if name in block or module_name in block:
            continue
        module = importlib.import_module(module_name)
        pm.register(module, name=name)
        infos.append(PluginInfo(name, "unlearnbench", version, module_name))
    if load_entry_points:
        infos.extend(_load_entry_points(pm, block))
    listed = [*(None for _ in given), *sources]  # the (entry, where given) of each
    for plugin, entry in zip(extra_plugins, listed, strict=True):
        name = local_plugin_name(plugin, entry[0] if entry else None)
        if name in block:
            continue
        _register_local(pm, plugin, name, entry, infos)
        where = f"{LOCAL}, {entry[1]}" if entry else LOCAL
        infos.append(PluginInfo(name, where, "", entry[0] if entry else name))
    pm.check_pending()
    return pm, infos


def _register_local(
    pm: pluggy.PluginManager,
    plugin: object,
    name: str,
    entry: tuple[str, str] | None,
    infos: list[PluginInfo],
) -> None:
    """Register one in-process plugin (``entry``: its name and where it was given);
    a clash or a plugin with no hook is a :class:`PluginLoadError` of one line
    (pluggy's own says it with a dump of every registered plugin)."""
    what = f"local plugin {entry[0]!r} ({entry[1]})" if entry else f"plugin {name!r}"
    holder = next((info for info in infos if info.name == name), None)
    if pm.is_registered(plugin) or holder is not None:
        if holder is not None and holder.distribution.split(",")[0] != LOCAL:
            clash = f"the {holder.distribution} plugin {name!r} ({holder.module})"
            fix = "rename its module, or give module:object with an object of another __name__"
        else:
            clash = "a plugin listed before it"
            fix = f"list it once in {entry[1] if entry else LOCAL_PLUGINS_ENV}"
        raise PluginLoadError(f"{what} is named {name!r}, like {clash}: {fix}")
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # any other refusal by pluggy: its first line only
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PluginLoadError(f"{what} cannot be registered: {first}") from None
    if not pm.get_hookcallers(plugin):
        pm.unregister(plugin)
        hooks = ", ".join(_HOOKS.values())
        raise PluginLoadError(
            f"{what} implements no unlearnbench hook ({hooks}, marked with "
            "@unlearnbench.hookimpl): it would register nothing; check the name"
        )


def _own_version() -> str:
    try:
        return metadata.version("unlearnbench")
    except metadata.PackageNotFoundError:
        from unlearnbench import __version__

        return __version__


def _load_entry_points(pm: pluggy.PluginManager, block: set[str]) -> list[PluginInfo]:
    infos = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else ""
        if ep.name in block or dist in block or pm.is_blocked(ep.name):
            continue
        if pm.has_plugin(ep.name):
            raise PluginLoadError(
                f"two plugins are named {ep.name!r}: the entry point {ep.value!r} of "
                f"distribution {dist!r} clashes with one already registered"
            )
        try:
            plugin = ep.load()
        except Exception as exc:  # any import-time failure of third-party code
            raise PluginLoadError(
                f"plugin {ep.name!r} from distribution {dist} {version} failed to import "
                f"({ep.value}): {type(exc).__name__}: {exc}. "
                f"Fix or uninstall it, or block it with {BLOCK_ENV}={ep.name}"
            ) from exc
        pm.register(plugin, name=ep.name)
        infos.append(PluginInfo(ep.name, dist, version, ep.value))
    return infos


def collect_registry(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registry:
    """Call every registration hook through pluggy, one plugin at a time, and file
    the specs under their origin.

    Each plugin's implementation runs through ``pm.subset_hook_caller`` holding that
    plugin alone, so pluggy checks the call's arguments against the hookspec, runs
    the plugin's own hook wrappers and reports to hook-call monitoring and tracing,
    while every spec, and every exception, still names the plugin and distribution
    it came from.
    """
    by_name = {info.name: info for info in infos}
    plugins = [plugin for _, plugin in pm.list_name_plugin()]
    registry = Registry()
    for kind, hook_name in _HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        impls = [i for i in hook.get_hookimpls() if not (i.hookwrapper or i.wrapper)]
        for impl in impls:
            info = by_name.get(impl.plugin_name)
            origin = Origin(
                impl.plugin_name,
                info.distribution if info else "?",
                info.version if info else "",
            )
            others = [plugin for plugin in plugins if plugin is not impl.plugin]
            call = pm.subset_hook_caller(hook_name, remove_plugins=others)
            try:
                results = call()
            except Exception as exc:
                raise PluginLoadError(f"{origin} raised in {hook_name}: {exc}") from exc
            for specs in results:
                if not isinstance(specs, list | tuple):
                    raise RegistryError(f"{origin}: {hook_name} must return a list of specs")
                for spec in specs:
                    registry.add(kind, spec, origin)
    return registry


def load_registry(
    *,
    blocked: Iterable[str] | None = None,
    load_entry_points: bool = True,
    extra_plugins: Iterable[ModuleType | object] = (),
    local_plugins: Iterable[str] | None = None,
    option_plugins: Iterable[str] = (),
) -> tuple[Registry, list[PluginInfo]]:
    """Plugin manager + registry in one call: what the CLI and tests use."""
    pm, infos = make_plugin_manager(
        blocked=blocked,
        load_entry_points=load_entry_points,
        extra_plugins=extra_plugins,
        local_plugins=local_plugins,
        option_plugins=option_plugins,
    )
    return collect_registry(pm, infos), infos


@dataclass(frozen=True)
class RegistryFactory:
    """Builds the plugin registry in a worker: picklable, unlike a registry.

    ``extra_plugins`` are ``"module:attribute"`` names of in-process plugins
    (an attribute that is a class is instantiated), importable in the worker;
    ``option_plugins`` those the CLI's ``--plugin`` gave, registered as in the parent.
    """

    load_entry_points: bool = True
    extra_plugins: tuple[str, ...] = ()
    blocked: tuple[str, ...] | None = None
    option_plugins: tuple[str, ...] = ()

    def __call__(self) -> Registry:
        extra = [load_local_plugin(name) for name in self.extra_plugins]
        registry, _ = load_registry(
            blocked=self.blocked,
            load_entry_points=self.load_entry_points,
            extra_plugins=extra,
            option_plugins=self.option_plugins,
        )
        return registry
