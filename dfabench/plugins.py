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
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from dfabench import builtin, hookspecs
from dfabench.errors import DfabenchError, InputError, UnknownNameError
from dfabench.models import CAPABILITIES
from dfabench.redact import redact, redact_clip
from dfabench.tasks import TaskSpec

GROUP = "dfabench"
#: the distribution recorded for a plugin module loaded through DFABENCH_PLUGINS
ENV_DISTRIBUTION = "(DFABENCH_PLUGINS)"
HOOK_NAMES = ("dfabench_register_models", "dfabench_register_tasks",
              "dfabench_register_importers", "dfabench_register_metrics", "dfabench_register_parsers",
              "dfabench_register_commands")


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
        raise DfabenchError(f"cannot import {module_name!r} for {ref!r}: {redact(exc)} "
                            f"(is the package providing {missing!r} installed? try: pip install {missing})") from None
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DfabenchError(f"{module_name!r} has no attribute {attr!r} (from {ref!r})") from None
    return obj


def _declared(value: Any) -> frozenset[str] | None:
    try:
        return frozenset(value) if not isinstance(value, str) else frozenset({value})
    except TypeError:
        return None


def check_class_capabilities(entry: Any, factory: Any) -> None:
    """Capabilities have one source of truth: what ``register(capabilities=...)`` declares (it is what
    ``dfabench models`` lists without importing anything). A model class that declares its own
    ``capabilities`` must declare exactly the same; :class:`DfabenchError` otherwise."""
    if not isinstance(factory, type):
        return
    own = _declared(getattr(factory, "capabilities", None))
    if own and own != frozenset(entry.capabilities):
        raise DfabenchError(f"model {entry.name!r}: register() declares capabilities {sorted(entry.capabilities)} "
                            f"but its class {factory.__name__} declares {sorted(own)}; they must agree "
                            f"(plugin {entry.plugin or '?'}, distribution {entry.distribution or '?'})")


def check_model_capabilities(entry: Any, model: Any) -> Any:
    """A created model must have some of the capabilities its registration declares and none other
    (a model argument may narrow them: ``random`` with ``mode=score``); returns the model."""
    have = _declared(getattr(model, "capabilities", None))
    if have is None or not have or not have <= frozenset(entry.capabilities):
        raise DfabenchError(f"model {entry.name!r} was created with capabilities {sorted(have or ())} but its "
                            f"registration declares {sorted(entry.capabilities)}: a model has some of the declared "
                            f"capabilities and no other (plugin {entry.plugin or '?'}, distribution "
                            f"{entry.distribution or '?'})")
    return model


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    builtin: bool = False
    #: names this plugin registers that another registration claims too (refused; see Registry)
    clashes: list[str] = field(default_factory=list)


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
    #: the plugin module that registered the model (its package's source may be hashed, see source_identity)
    module: str | None = None

    def create(self, **kwargs: Any):
        factory = load_object(self.factory)
        check_class_capabilities(self, factory)
        try:
            return check_model_capabilities(self, factory(**kwargs))
        except TypeError as exc:
            raise DfabenchError(f"model {self.name!r}: bad model arguments {sorted(kwargs)}: {redact(exc)}") from None
        except DfabenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - wrong values, missing files or libraries, corrupt weights
            import os

            if os.environ.get("DFABENCH_DEBUG"):
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DfabenchError(f"model {self.name!r} could not be created: {type(exc).__name__}: "
                                f"{redact_clip(text, 500)} (DFABENCH_DEBUG=1 shows the traceback)") from None

    def source_identity(self) -> dict[str, str] | None:
        """What pins the plugin's code when its version cannot: ``{"install": "editable" | "unpackaged",
        "sha256": ...}`` over the plugin package's ``*.py`` files (paths and bytes), for a distribution
        installed editable (``pip install -e``) or a module loaded without one (``DFABENCH_PLUGINS``);
        ``None`` for a regular install, whose version is its identity, and for dfabench's own models.
        Computed on each call (the runner asks once per run, when it creates the model)."""
        if self.distribution == "dfabench" and self.plugin == "dfabench":
            return None
        install = "unpackaged" if self.distribution in (None, ENV_DISTRIBUTION) else _install_kind(self.distribution)
        if install is None:
            return None
        module = self.module or (self.factory if isinstance(self.factory, str) else None)
        digest = source_sha256([module.partition(":")[0]]) if module else None
        return {"install": install, "sha256": digest} if digest else None


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


@dataclass
class ParserEntry:
    """A named answer parser: ``parse(text)`` or ``parse(text, options)`` -> the parsed answer or ``None``."""

    name: str
    parse: str | Callable
    description: str = ""
    plugin: str = ""

    def load(self) -> Callable[..., Any]:
        return load_object(self.parse)


@dataclass
class CommandEntry:
    """A ``dfabench`` subcommand (``name``: its words, e.g. ``"judge"`` or ``"dfagpt train"``).

    ``add_arguments(parser)`` and ``handler(args) -> exit code`` are callables or ``"module:attr"``
    strings, imported only when the command's parser is built or it runs; a group (``dfagpt``) has neither.
    """

    name: str
    add_arguments: str | Callable | None = None
    handler: str | Callable | None = None
    help: str = ""
    plugin: str = ""

    @property
    def is_group(self) -> bool:
        return self.add_arguments is None

    def load_arguments(self) -> Callable[..., Any]:
        return load_object(self.add_arguments)

    def load_handler(self) -> Callable[..., Any]:
        return load_object(self.handler)


class NameClashError(DfabenchError):
    """A name (or alias) registered by more than one plugin: refused, whichever loaded last."""

    def __init__(self, kind: str, name: str, providers: list[str], via: str | None = None):
        self.kind, self.name, self.providers = kind, name, providers
        shown = f"{name!r} (an alias of {via!r})" if via else repr(name)
        super().__init__(f"{kind} {shown} is registered by more than one plugin: {'; '.join(providers)}; "
                         "it is refused until one of them is uninstalled or renames it (see `dfabench plugins`)")


class BrokenProviderError(DfabenchError):
    """A name that the plugin which would provide it could not register, because it failed to load."""


def _plugin_label(info: Any) -> str:
    if not isinstance(info, PluginInfo):
        return str(info or "?")
    dist = f"{info.distribution or info.module} {info.version or ''}".strip()
    return f"{dist} (plugin {info.name})"


def _squash(text: str | None) -> str:
    return "".join(c for c in (text or "").lower() if c.isalnum())


def _may_provide(info: PluginInfo, name: str) -> bool:
    """Whether a broken plugin looks like the one that provides ``name``: its entry-point name, its
    distribution or its module (less a ``dfabench`` prefix) is the name or begins it."""
    target = _squash(name)
    for candidate in (info.name, info.distribution, (info.module or "").partition(":")[0].split(".")[0]):
        squashed = _squash(candidate)
        for form in {squashed, squashed.removeprefix("dfabench")}:
            if len(form) >= 2 and target.startswith(form):
                return True
    return False


class Registry:
    """Name -> entry, with aliases and "did you mean" for unknown names.

    A name or alias that two registrations claim (two plugins, a plugin and the core, or one plugin
    twice) is a *clash*: it is refused (:class:`NameClashError` names every provider) instead of
    silently going to whichever loaded last; the registrations' other names keep working. An
    unknown name that a broken plugin would have provided is answered by naming that plugin and
    its load error (:class:`BrokenProviderError`), not by "did you mean".
    """

    def __init__(self, kind: str, case_insensitive: bool = True,
                 broken: Callable[[], list[PluginInfo]] | None = None):
        self.kind = kind
        self.entries: dict[str, Any] = {}
        self._aliases: dict[str, str] = {}
        #: folded key -> every claim of it: (spelling, canonical name, entry, owner)
        self._claims: dict[str, list[tuple[str, str, Any, Any]]] = {}
        self._order: list[tuple[str, Any]] = []
        self._fold = case_insensitive
        self._broken = broken or (lambda: [])

    def _key(self, name: str) -> str:
        return name.lower() if self._fold else name

    def add(self, name: str, entry: Any, aliases: Iterable[str] = (), owner: Any = None) -> None:
        """Register ``entry`` under ``name`` and ``aliases``; ``owner``: the :class:`PluginInfo` (or a
        label) of the plugin registering it, named when the name clashes."""
        owner = owner if owner is not None else getattr(entry, "plugin", None)
        seen: set[str] = set()
        for spelling in (name, *aliases):
            key = self._key(spelling)
            if key in seen:
                continue
            seen.add(key)
            self._claims.setdefault(key, []).append((spelling, name, entry, owner))
        self._order.append((name, entry))
        self._rebuild()

    def _rebuild(self) -> None:
        usable = {}
        for name, entry in self._order:
            claims = self._claims[self._key(name)]
            if len(claims) == 1:
                usable[name] = entry
        self.entries = usable
        self._aliases = {key: claims[0][1] for key, claims in self._claims.items()
                         if len(claims) == 1 and usable.get(claims[0][1]) is claims[0][2]}

    def clashes(self) -> dict[str, list[str]]:
        """Every refused name -> its providers (plugin labels, "as an alias of ..." where it is one)."""
        out: dict[str, list[str]] = {}
        for key, claims in self._claims.items():
            if len(claims) > 1:
                name = next((c[0] for c in claims if self._key(c[1]) == key), claims[0][0])
                out[name] = [_plugin_label(owner) + (f" as an alias of {canonical!r}" if self._key(canonical) != key
                                                     else "")
                             for _spelling, canonical, _entry, owner in claims]
        return dict(sorted(out.items()))

    def clash_owners(self) -> list[tuple[Any, str]]:
        """(owner, line) for every owner involved in a clash: what ``dfabench plugins`` shows."""
        out = []
        for claims in self._claims.values():
            if len(claims) > 1:
                for _spelling, _canonical, _entry, owner in claims:
                    others = [_plugin_label(o) for _s, _c, _e, o in claims if o is not owner] or ["itself"]
                    out.append((owner, f"{self.kind} {claims[0][0]!r} is also registered by {', '.join(others)}: "
                                       "refused"))
        return out

    def resolve(self, name: str) -> str:
        key = self._key(name)
        claims = self._claims.get(key, [])
        if len(claims) > 1:
            raise NameClashError(self.kind, name, self.clashes().get(claims[0][0]) or
                                 [_plugin_label(c[3]) for c in claims])
        canonical = self._aliases.get(key)
        if canonical is None:
            if claims:  # an alias of a name that clashes
                target = claims[0][1]
                raise NameClashError(self.kind, name, [_plugin_label(c[3]) for c in self._claims[self._key(target)]],
                                     via=target)
            raise self._unknown(name)
        return canonical

    def _unknown(self, name: str) -> DfabenchError:
        broken = self._broken()
        suspects = [info for info in broken if _may_provide(info, name)]
        if suspects:
            causes = "; ".join(f"{_plugin_label(info)} failed to load: {info.error}" for info in suspects)
            return BrokenProviderError(f"{self.kind} {name!r} is not available: the plugin that would provide it is "
                                       f"broken: {causes} (see `dfabench plugins`)")
        error = UnknownNameError(self.kind, name, list(self.entries))
        if broken:
            listed = "; ".join(f"{_plugin_label(info)}: {str(info.error)[:300]}" for info in broken)
            error.args = (f"{error} (note: {len(broken)} plugin(s) failed to load and may provide it: {listed})",)
        return error

    def get(self, name: str) -> Any:
        return self.entries[self.resolve(name)]

    def __contains__(self, name: str) -> bool:
        """Whether ``name`` resolves (a clashing name does not)."""
        return self._key(name) in self._aliases

    def __iter__(self):
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)


class TaskRegistry(Registry):
    """The task registry: lookups also accept loose spellings of an id (``dfd``, ``df_d`` -> ``DF-D``)."""

    def normalise(self, task_id: str) -> str:
        """``dfd``, ``df_d``, ``Df-D`` -> ``DF-D``; other ids are returned stripped."""
        raw = task_id.strip()
        if raw in self:
            return self.resolve(raw)
        squashed = raw.replace("-", "").replace("_", "").lower()
        for known in self:
            if known.replace("-", "").replace("_", "").lower() == squashed:
                return known
        return raw

    def get(self, name: str) -> TaskSpec:
        return self.entries[self.resolve(self.normalise(name))]


class PluginManager:
    """Loads the built-in plugin and every ``dfabench`` entry point, and fills the registries."""

    def __init__(self, load_entry_points: bool = True, extra_plugins: Iterable[Any] = ()):
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.models = Registry("model", broken=self.broken)
        self.tasks = TaskRegistry("task", broken=self.broken)
        self.importers = Registry("importer", broken=self.broken)
        self.metrics = Registry("metric", broken=self.broken)
        self.parsers = Registry("parser", case_insensitive=False, broken=self.broken)
        self.commands = Registry("command", case_insensitive=False, broken=self.broken)
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
        for registry in (self.models, self.tasks, self.importers, self.metrics, self.parsers, self.commands):
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
        def register(name: str, compute: str | Callable, *, tasks: Iterable[str] = (), description: str = "") -> None:
            self.metrics.add(name, MetricEntry(name, compute, tuple(tasks), description, info.name), owner=info)
        return register

    def _register_parsers(self, info: PluginInfo):
        def register(name: str, parse: str | Callable, *, description: str = "") -> None:
            if not isinstance(name, str) or not name.strip():
                raise DfabenchError(f"parser name must be a non-empty string, not {name!r}")
            self.parsers.add(name, ParserEntry(name, parse, description, info.name), owner=info)
        return register

    def parser_for(self, task: TaskSpec) -> Callable[..., Any]:
        """The parser ``task`` names; an unregistered name is an :class:`InputError` naming the spec's file."""
        if task.parser not in self.parsers:
            try:
                self.parsers.resolve(task.parser)
            except NameClashError as exc:
                raise InputError(task.source, str(exc), f"task {task.id!r}") from None
            except DfabenchError:
                pass
            raise InputError(task.source, f"parser {task.parser!r} is not registered (known: "
                             f"{', '.join(self.parsers) or 'none'}; a plugin adds one through "
                             "dfabench_register_parsers)", f"task {task.id!r}")
        return self.parsers.get(task.parser).load()

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
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {redact(exc)}{where}"


def _install_kind(distribution: str) -> str | None:
    """``"editable"`` for a distribution installed with ``pip install -e`` (PEP 610 ``direct_url.json``
    with ``dir_info.editable``), ``"unpackaged"`` when no such distribution is installed, else ``None``."""
    import json

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return "unpackaged"
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except (OSError, ValueError):
        return None
    return "editable" if isinstance(direct, dict) and (direct.get("dir_info") or {}).get("editable") else None


def _source_files(module_name: str) -> list[tuple[str, str]]:
    """``(label, path)`` of the ``*.py`` files of the top-level package (or single module) holding
    ``module_name``, without importing anything that is not imported yet."""
    import importlib.util
    import os
    import sys

    top = module_name.split(".")[0]
    module = sys.modules.get(top)
    try:
        spec = module.__spec__ if module is not None else importlib.util.find_spec(top)
    except Exception:  # noqa: BLE001 - not an importable name (a plugin object given in code): no source
        spec = None
    if spec is None:
        return []
    folders = list(spec.submodule_search_locations or ())
    if not folders:
        return [(f"{top}.py", spec.origin)] if spec.origin and spec.origin.endswith(".py") else []
    files = []
    for folder in folders:
        for base, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    files.append((f"{top}/{os.path.relpath(path, folder).replace(os.sep, '/')}", path))
    return files


def source_sha256(module_names: Iterable[str]) -> str | None:
    """SHA-256 over the source of the packages holding these modules: each ``*.py`` file's path
    (relative to its package, sorted) and bytes. ``None`` when none of them has source files."""
    import hashlib

    files = dict(f for name in module_names for f in _source_files(name))
    if not files:
        return None
    digest = hashlib.sha256(b"dfabench-plugin-source-v1\0")
    for label in sorted(files):
        try:
            with open(files[label], "rb") as handle:
                data = handle.read()
        except OSError:
            data = b"(unreadable)"
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


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


def get_task(task_id: str) -> TaskSpec:
    """A registered task by id or alias (case-insensitive; ``dfd`` finds ``DF-D``)."""
    return get_manager().tasks.get(task_id)


def normalise_task_id(task_id: str) -> str:
    """``dfd``, ``df_d``, ``Df-D`` -> ``DF-D``; other ids are returned stripped."""
    return get_manager().tasks.normalise(task_id)


def resolve_tasks(spec: str | list[str]) -> list[TaskSpec]:
    """Parse ``DF-D,DF-C`` (or a list) into task specs, in the given order, without duplicates; each
    one's parser must be registered (:meth:`PluginManager.parser_for`), so a bad spec fails before any work."""
    names = [v.strip() for v in spec.split(",") if v.strip()] if isinstance(spec, str) else list(spec)
    if not names:
        raise DfabenchError("no task given (e.g. --tasks DF-D,DF-C)")
    manager = get_manager()
    out: list[TaskSpec] = []
    for name in names:
        task = manager.tasks.get(name)
        manager.parser_for(task)
        if task not in out:
            out.append(task)
    return out
