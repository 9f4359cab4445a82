"""What a plugin registers: one entry type per registry, and the lazy ``"module:attr"`` loader.

An entry holds what ``dfabench models`` (or ``tasks``, ``importers``, ...) lists without importing the
plugin's heavy code: a factory, importer, metric, parser, sample filter or command handler is kept as a
``"module:attr"`` string and imported by :func:`load_object` only when it is used. :class:`PluginInfo`
is what the manager (:mod:`dfabench.plugins`) records of each plugin: where it comes from, its hooks, its
load error and its name clashes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.provenance import ENV_DISTRIBUTION, install_kind, source_sha256
from dfabench.redact import redact, redact_clip


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

    def argument_problem(self, args: dict[str, Any]) -> str | None:
        """Why the factory would refuse ``args`` by name (an unknown or missing argument), read from its signature
        without creating the model (no weights are loaded); None when they bind, or when the factory takes any
        keyword (its own code checks them when the model is created)."""
        import inspect

        try:
            factory = load_object(self.factory)
        except Exception:  # noqa: BLE001 - a plugin that cannot load here says so when the model is created
            return None
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):
            return None  # no signature to read: the factory says when called
        parameters = signature.parameters.values()
        if any(p.kind == p.VAR_KEYWORD for p in parameters):
            return None
        names = [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        known = f" (known: {', '.join(names) or 'none'})"
        unknown = [a for a in args if a not in names]
        if unknown:
            import difflib

            close = {a: difflib.get_close_matches(a, names, n=1, cutoff=0.6) for a in unknown}
            hints = [f"{a!r} -> {c[0]!r}" for a, c in close.items() if c]
            hint = f"; did you mean {', '.join(hints)}?" if hints else ""
            return f"model {self.name!r}: unknown model argument(s) {', '.join(unknown)}{known}{hint}"
        try:
            signature.bind(**args)
        except TypeError as exc:
            return f"model {self.name!r}: bad model arguments ({exc}){known}"
        return None

    def source_identity(self) -> dict[str, str] | None:
        """What pins the plugin's code when its version cannot: ``{"install": "editable" | "unpackaged",
        "sha256": ...}`` over the plugin package's ``*.py`` files (paths and bytes), for a distribution
        installed editable (``pip install -e``) or a module loaded without one (``DFABENCH_PLUGINS``);
        ``None`` for a regular install, whose version is its identity, and for dfabench's own models.
        Computed on each call (the runner asks once per run, when it creates the model)."""
        if self.distribution == "dfabench" and self.plugin == "dfabench":
            return None
        install = "unpackaged" if self.distribution in (None, ENV_DISTRIBUTION) else install_kind(self.distribution)
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
    """A metric provider: ``compute(records, context) -> MetricOutput``.

    ``tolerance``: the absolute difference within which ``dfabench verify`` accepts a re-derived number of
    this provider (0: exactly, to :data:`dfabench.evidence.EXACT`). A provider whose numbers come from
    floating-point inference of a neural model (sentence embeddings) is reproducible across machines only
    to the last digits (CPUs with other vector units sum in another order); it declares how far."""

    name: str
    compute: str | Callable
    tasks: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""
    tolerance: float = 0.0

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


@dataclass
class SampleFilterEntry:
    """A named rule for the samples a task takes (a task spec's ``samples`` field).

    ``select(task, sample)`` returns ``None`` when the task takes the sample, else the reason it is left
    out (counted by reason in the run's selection record, never silent)."""

    name: str
    select: str | Callable
    description: str = ""
    plugin: str = ""

    def load(self) -> Callable[..., Any]:
        return load_object(self.select)
