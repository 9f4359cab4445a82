"""The plugin manager: entry-point loading, registries, isolation of broken plugins.

Every plugin is a module under the ``dfabench`` entry-point group. Loading one that raises
(on import or in a hook) is recorded as a :class:`PluginInfo` with its error and never stops
the others or the command line. Factories given as ``"module:attr"`` strings are imported
only when the thing is created, so listing models imports nothing heavy.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from dfabench import hookspecs
from dfabench.errors import DfabenchError, UnknownNameError
from dfabench.models import CAPABILITIES

GROUP = "dfabench"
HOOK_NAMES = ("dfabench_register_models", "dfabench_register_tasks",
              "dfabench_register_importers", "dfabench_register_metrics")


def load_object(ref: str | Callable) -> Any:
    """Import ``"module:attr"`` (or return a callable as it is)."""
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise DfabenchError(f"bad factory reference {ref!r}: expected 'module:attr'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module_name
        raise DfabenchError(f"cannot import {module_name!r} for {ref!r}: {exc} "
                            f"(is the package providing {missing!r} installed? try: pip install {missing})") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DfabenchError(f"{module_name!r} has no attribute {attr!r} (from {ref!r})") from None
    return obj


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False


@dataclass
class ModelEntry:
    name: str
    factory: str | Callable
    aliases: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ("generate",)
    description: str = ""
    plugin: str = ""
    distribution: str | None = None
    version: str | None = None

    def create(self, **kwargs: Any):
        factory = load_object(self.factory)
        try:
            return factory(**kwargs)
        except TypeError as exc:
            raise DfabenchError(f"model {self.name!r}: bad model arguments {sorted(kwargs)}: {exc}") from None
        except DfabenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - wrong values, missing files or libraries, corrupt weights
            import os

            if os.environ.get("DFABENCH_DEBUG"):
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DfabenchError(f"model {self.name!r} could not be created: {type(exc).__name__}: {text[:500]} "
                                "(DFABENCH_DEBUG=1 shows the traceback)") from None


@dataclass
class ImporterEntry:
    name: str
    importer: str | Callable
    description: str = ""
    plugin: str = ""

    def load(self) -> Callable:
        return load_object(self.importer)


@dataclass
class MetricEntry:
    name: str
    compute: str | Callable
    tasks: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""

    def load(self) -> Callable:
        return load_object(self.compute)


class Registry:
    """Name -> entry, with aliases and "did you mean" for unknown names."""

    def __init__(self, kind: str, case_insensitive: bool = True):
        self.kind = kind
        self.entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}
        self._fold = case_insensitive

    def _key(self, name: str) -> str:
        return name.lower() if self._fold else name

    def add(self, name: str, entry: Any, aliases: Iterable[str] = ()) -> None:
        key = self._key(name)
        if key in self._aliases and self._aliases[key] != name:
            raise DfabenchError(f"{self.kind} {name!r} is registered twice "
                                f"(by {getattr(self.entries[self._aliases[key]], 'plugin', '?')} and "
                                f"{getattr(entry, 'plugin', '?')})")
        self.entries[name] = entry
        self._aliases[key] = name
        for alias in aliases:
            self._aliases.setdefault(self._key(alias), name)

    def resolve(self, name: str) -> str:
        canonical = self._aliases.get(self._key(name))
        if canonical is None:
            raise UnknownNameError(self.kind, name, list(self.entries))
        return canonical

    def get(self, name: str) -> Any:
        return self.entries[self.resolve(name)]

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._aliases

    def __iter__(self):
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


class PluginManager:
    """Loads the built-in plugin and every ``dfabench`` entry point, and fills the registries."""

    def __init__(self, load_entry_points: bool = True, extra_plugins: Iterable[Any] = ()):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.models = Registry("model")
        self.tasks = Registry("task")
        self.importers = Registry("importer")
        self.metrics = Registry("metric")
        from dfabench import builtin

        self._add(builtin, PluginInfo(name="dfabench", module=builtin.__name__, distribution="dfabench",
                                      version=_dist_version("dfabench"), builtin=True))
        if load_entry_points:
            for ep in _entry_points():
                dist = ep.dist.name if ep.dist is not None else None
                version = ep.dist.version if ep.dist is not None else None
                info = PluginInfo(name=ep.name, module=ep.value, distribution=dist, version=version)
                try:
                    module = ep.load()
                except BaseException as exc:  # noqa: BLE001 - a broken plugin must never break the CLI
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    info.error = _describe(exc)
                    self.plugins.append(info)
                    continue
                self._add(module, info)
        for module_name in _env_plugins() if load_entry_points else []:
            info = PluginInfo(name=module_name, module=module_name, distribution="(DFABENCH_PLUGINS)")
            try:
                module = importlib.import_module(module_name)
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                info.error = _describe(exc)
                self.plugins.append(info)
                continue
            self._add(module, info)
        for module in extra_plugins:
            name = getattr(module, "__name__", repr(module))
            self._add(module, PluginInfo(name=name, module=name))

    def _add(self, module: Any, info: PluginInfo) -> None:
        try:
            self.pm.register(module, name=info.name)
        except Exception as exc:  # noqa: BLE001
            info.error = _describe(exc)
            self.plugins.append(info)
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(module) or ())
        self.plugins.append(info)
        for hook_name in HOOK_NAMES:
            impl = getattr(module, hook_name, None)
            if impl is None or hook_name not in info.hooks:
                continue
            register = getattr(self, f"_register_{hook_name.rsplit('_', 1)[1]}")(info)
            try:
                impl(register=register)
            except Exception as exc:  # noqa: BLE001
                info.error = f"{hook_name}: {_describe(exc)}"

    # -- the register callables handed to each hook

    def _register_models(self, info: PluginInfo):
        def register(name: str, factory: str | Callable, *, aliases: Iterable[str] = (),
                     capabilities: Iterable[str] = ("generate",), description: str = "") -> None:
            caps = tuple(capabilities)
            unknown = set(caps) - set(CAPABILITIES)
            if unknown:
                raise DfabenchError(f"model {name!r}: unknown capabilities {sorted(unknown)} (known: {CAPABILITIES})")
            self.models.add(name, ModelEntry(name, factory, tuple(aliases), caps, description, info.name,
                                             info.distribution, info.version), aliases)
        return register

    def _register_tasks(self, info: PluginInfo):
        def register(spec: Any) -> None:
            from dfabench.tasks import TaskSpec

            task = TaskSpec.load(spec, plugin=info.name)
            self.tasks.add(task.id, task, task.aliases)
        return register

    def _register_importers(self, info: PluginInfo):
        def register(name: str, importer: str | Callable, *, description: str = "") -> None:
            self.importers.add(name, ImporterEntry(name, importer, description, info.name))
        return register

    def _register_metrics(self, info: PluginInfo):
        def register(name: str, compute: str | Callable, *, tasks: Iterable[str] = (), description: str = "") -> None:
            self.metrics.add(name, MetricEntry(name, compute, tuple(tasks), description, info.name))
        return register

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _env_plugins() -> list[str]:
    """Extra plugin modules named in ``DFABENCH_PLUGINS`` (comma-separated): a plugin under
    development can be tried without packaging it."""
    import os

    return [m.strip() for m in os.environ.get("DFABENCH_PLUGINS", "").split(",") if m.strip()]


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        from dfabench import __version__

        return __version__


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=GROUP):
        key = (ep.name, ep.value)
        if key not in seen:
            seen.add(key)
            found.append(ep)
    return sorted(found, key=lambda ep: ep.name)


_MANAGER: PluginManager | None = None


def get_manager() -> PluginManager:
    """The process-wide plugin manager (created on first use)."""
    global _MANAGER
    if _MANAGER is None:
        _MANAGER = PluginManager()
    return _MANAGER


def reset_manager(manager: PluginManager | None = None) -> None:
    """Replace the process-wide manager (tests use this)."""
    global _MANAGER
    _MANAGER = manager
