"""The plugin manager: entry-point loading, registries, isolation of broken plugins.

Every plugin is a module under the ``dfabench`` entry-point group. Loading one that raises
(on import or in a hook) is recorded as a :class:`PluginInfo` with its error and never stops
the others or the command line. Factories given as ``"module:attr"`` strings are imported
only when the thing is created, so listing models imports nothing heavy.

The manager owns every registry lookup: task ids and aliases (:func:`get_task`,
:func:`normalise_task_id`, :func:`resolve_tasks`) and the parser a task spec names
(:meth:`PluginManager.parser_for`). The modules it registers things from (:mod:`dfabench.tasks`,
:mod:`dfabench.builtin`) never import it back, so there is no import cycle through it.
"""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

import pluggy

from dfabench import builtin, hookspecs
from dfabench.entries import (
    CommandEntry,
    ImporterEntry,
    MetricEntry,
    ModelEntry,
    ParserEntry,
    PluginInfo,
    SampleFilterEntry,
    check_class_capabilities,
    check_model_capabilities,
    load_object,
)
from dfabench.errors import DfabenchError, InputError
from dfabench.models import CAPABILITIES
from dfabench.provenance import ENV_DISTRIBUTION, dist_version, source_sha256
from dfabench.redact import redact
from dfabench.registry import BrokenProviderError, NameClashError, Registry, TaskRegistry, first_party_model_hint
from dfabench.tasks import TaskSpec

__all__ = [
    "ENV_DISTRIBUTION", "GROUP", "HOOK_NAMES", "BrokenProviderError", "CommandEntry", "ImporterEntry", "MetricEntry",
    "ModelEntry", "NameClashError", "ParserEntry", "PluginInfo", "PluginManager", "Registry", "SampleFilterEntry",
    "TaskRegistry", "check_class_capabilities", "check_model_capabilities", "get_manager", "get_task",
    "load_object", "normalise_task_id", "reset_manager", "resolve_tasks", "source_sha256",
]

GROUP = "dfabench"
HOOK_NAMES = ("dfabench_register_models", "dfabench_register_tasks",
              "dfabench_register_importers", "dfabench_register_metrics", "dfabench_register_parsers",
              "dfabench_register_sample_filters", "dfabench_register_commands")


class PluginManager:
    """Loads the built-in plugin and every ``dfabench`` entry point, and fills the registries."""

    def __init__(self, load_entry_points: bool = True, extra_plugins: Iterable[Any] = ()):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.models = Registry("model", broken=self.broken, hint=first_party_model_hint)
        self.tasks = TaskRegistry("task", broken=self.broken)
        self.importers = Registry("importer", broken=self.broken)
        self.metrics = Registry("metric", broken=self.broken)
        self.parsers = Registry("parser", case_insensitive=False, broken=self.broken)
        self.sample_filters = Registry("sample filter", case_insensitive=False, broken=self.broken)
        self.commands = Registry("command", case_insensitive=False, broken=self.broken)
        self._add(builtin, PluginInfo(name="dfabench", module=builtin.__name__, distribution="dfabench",
                                      version=dist_version("dfabench"), builtin=True))
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
            info = PluginInfo(name=module_name, module=module_name, distribution=ENV_DISTRIBUTION)
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
        for registry in (self.models, self.tasks, self.importers, self.metrics, self.parsers, self.sample_filters,
                         self.commands):
            for owner, line in registry.clash_owners():
                if isinstance(owner, PluginInfo) and line not in owner.clashes:
                    owner.clashes.append(line)

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
            register = getattr(self, f"_{hook_name.removeprefix('dfabench_')}")(info)
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
            entry = ModelEntry(name, factory, tuple(aliases), caps, description, info.name,
                               info.distribution, info.version, info.module)
            if not isinstance(factory, str):
                check_class_capabilities(entry, factory)  # a class given in code: refused here, not at run time
            self.models.add(name, entry, aliases, owner=info)
        return register

    def _register_tasks(self, info: PluginInfo):
        def register(spec: Any) -> None:
            task = TaskSpec.load(spec, plugin=info.name)
            self.tasks.add(task.id, task, task.aliases, owner=info)
        return register

    def _register_importers(self, info: PluginInfo):
        def register(name: str, importer: str | Callable, *, description: str = "") -> None:
            self.importers.add(name, ImporterEntry(name, importer, description, info.name), owner=info)
        return register

    def _register_metrics(self, info: PluginInfo):
        def register(name: str, compute: str | Callable, *, tasks: Iterable[str] = (), description: str = "",
                     tolerance: float = 0.0) -> None:
            if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
                raise DfabenchError(f"metric {name!r}: tolerance must be a number in [0, 1), not {tolerance!r}")
            self.metrics.add(name, MetricEntry(name, compute, tuple(tasks), description, info.name, float(tolerance)),
                             owner=info)
        return register

    def _register_parsers(self, info: PluginInfo):
        def register(name: str, parse: str | Callable, *, description: str = "") -> None:
            if not isinstance(name, str) or not name.strip():
                raise DfabenchError(f"parser name must be a non-empty string, not {name!r}")
            self.parsers.add(name, ParserEntry(name, parse, description, info.name), owner=info)
        return register

    def _register_sample_filters(self, info: PluginInfo):
        def register(name: str, select: str | Callable, *, description: str = "") -> None:
            if not isinstance(name, str) or not name.strip():
                raise DfabenchError(f"sample filter name must be a non-empty string, not {name!r}")
            self.sample_filters.add(name, SampleFilterEntry(name, select, description, info.name), owner=info)
        return register

    def parser_for(self, task: TaskSpec) -> Callable[..., Any]:
        """The parser ``task`` names; an unregistered name is an :class:`InputError` naming the spec's file."""
        return self._named_for(task, self.parsers, "parser", task.parser, "dfabench_register_parsers")

    def sample_filter_for(self, task: TaskSpec) -> Callable[..., Any]:
        """The sample filter ``task``'s ``samples`` field names (``select(task, sample) -> None | reason``);
        an unregistered name is an :class:`InputError` naming the spec's file."""
        return self._named_for(task, self.sample_filters, "sample filter", task.samples,
                               "dfabench_register_sample_filters")

    def metrics_for(self, task: TaskSpec) -> list[MetricEntry]:
        """The metric providers ``task`` names; an unregistered one is an :class:`InputError` naming the spec's
        file (with the registry's "did you mean" or the broken plugin that would provide it)."""
        out = []
        for name in task.metrics:
            try:
                out.append(self.metrics.get(name))
            except DfabenchError as exc:
                raise InputError(task.source, str(exc), f"task {task.id!r}") from None
        return out

    @staticmethod
    def _named_for(task: TaskSpec, registry: Registry, kind: str, name: str, hook: str) -> Callable[..., Any]:
        if name not in registry:
            try:
                registry.resolve(name)
            except NameClashError as exc:
                raise InputError(task.source, str(exc), f"task {task.id!r}") from None
            except DfabenchError:
                pass
            raise InputError(task.source, f"{kind} {name!r} is not registered (known: "
                             f"{', '.join(registry) or 'none'}; a plugin adds one through {hook})",
                             f"task {task.id!r}")
        return registry.get(name).load()

    def _register_commands(self, info: PluginInfo):
        def register(name: str, add_arguments: str | Callable | None = None, handler: str | Callable | None = None,
                     *, help: str = "") -> None:
            path = tuple(name.split())
            if not path or any(word.startswith("-") for word in path):
                raise DfabenchError(f"command {name!r}: expected one or more words, e.g. 'train' or 'dfagpt train'")
            if (add_arguments is None) != (handler is None):
                raise DfabenchError(f"command {name!r}: give both add_arguments and handler (or neither, for a group)")
            entry = CommandEntry(" ".join(path), add_arguments, handler, help, info.name)
            self.commands.add(entry.name, entry, owner=info)
        return register

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins if p.error]

    def clashing(self) -> list[PluginInfo]:
        """Plugins with a name that another registration claims too (those names are refused)."""
        return [p for p in self.plugins if p.clashes]


def _describe(exc: BaseException) -> str:
    """``Type: message (file:line)``, the place being the plugin's own line that raised (or called the core where
    it raised): never a line inside dfabench itself, which says nothing to the plugin's author."""
    from pathlib import Path

    core = Path(__file__).resolve().parent
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not Path(f.filename).resolve().is_relative_to(core)]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {redact(exc)}{where}"


def _env_plugins() -> list[str]:
    """Extra plugin modules named in ``DFABENCH_PLUGINS`` (comma-separated): a plugin under
    development can be tried without packaging it."""
    import os

    return [m.strip() for m in os.environ.get("DFABENCH_PLUGINS", "").split(",") if m.strip()]


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


def get_task(task_id: str) -> TaskSpec:
    """A registered task by id or alias (case-insensitive; ``dfd`` finds ``DF-D``)."""
    return get_manager().tasks.get(task_id)


def normalise_task_id(task_id: str) -> str:
    """``dfd``, ``df_d``, ``Df-D`` -> ``DF-D``; other ids are returned stripped."""
    return get_manager().tasks.normalise(task_id)


def resolve_tasks(spec: str | list[str]) -> list[TaskSpec]:
    """Parse ``DF-D,DF-C`` (or a list) into task specs, in the given order, without duplicates; each
    one's parser and sample filter must be registered (:meth:`PluginManager.parser_for`,
    :meth:`PluginManager.sample_filter_for`), so a bad spec fails before any work."""
    names = [v.strip() for v in spec.split(",") if v.strip()] if isinstance(spec, str) else list(spec)
    if not names:
        raise DfabenchError("no task given (e.g. --tasks DF-D,DF-C)")
    manager = get_manager()
    out: list[TaskSpec] = []
    for name in names:
        task = manager.tasks.get(name)
        manager.parser_for(task)
        manager.sample_filter_for(task)
        manager.metrics_for(task)
        if task not in out:
            out.append(task)
    return out
