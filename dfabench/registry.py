"""Name -> entry registries with aliases, refused name clashes and "did you mean".

One :class:`Registry` per kind of thing plugins register (models, tasks, importers, metrics, parsers,
sample filters, commands); :class:`TaskRegistry` also accepts loose spellings of a task id. The plugin
manager (:mod:`dfabench.plugins`) owns the registries and fills them from the hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from dfabench.entries import PluginInfo
from dfabench.errors import DfabenchError, UnknownNameError
from dfabench.tasks import TaskSpec


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


#: the models of the first-party plugins (plugins/ of the dfabench repository), for the hint of an unknown one
FIRST_PARTY_MODELS = {
    "dfabench-openai": ("openai", "openai-compatible"),
    "dfabench-hf": ("hf", "transformers"),
    "dfabench-lmms": ("lmms", "lmms-eval"),
    "dfabench-dfagpt": ("dfagpt", "dfa-gpt"),
    "dfabench-detectors": ("dfb-*", "learned-mobilenet"),
    "dfabench-baselines": ("spectrum", "noise-inconsistency"),
}


def first_party_model_hint(name: str) -> str | None:
    """Which first-party plugin provides the model ``name``, and how to install it (``None``: none does)."""
    key = name.strip().lower()
    for distribution, names in FIRST_PARTY_MODELS.items():
        if any(key == n or (n.endswith("*") and key.startswith(n[:-1])) for n in names):
            return (f"it is provided by the first-party plugin {distribution}, which is not installed "
                    f"(pip install -e plugins/{distribution})")
    return None


class Registry:
    """Name -> entry, with aliases and "did you mean" for unknown names.

    A name or alias that two registrations claim (two plugins, a plugin and the core, or one plugin
    twice) is a *clash*: it is refused (:class:`NameClashError` names every provider) instead of
    silently going to whichever loaded last; the registrations' other names keep working. An
    unknown name that a broken plugin would have provided is answered by naming that plugin and
    its load error (:class:`BrokenProviderError`), not by "did you mean".
    """

    def __init__(self, kind: str, case_insensitive: bool = True,
                 broken: Callable[[], list[PluginInfo]] | None = None,
                 hint: Callable[[str], str | None] | None = None):
        self.kind = kind
        self._hint = hint or (lambda name: None)
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
        # a plugin that failed to import may have provided anything; one whose hook of another kind raised, not this
        own_hook = "dfabench_register_" + self.kind.replace(" ", "_") + "s"
        broken = [info for info in self._broken() if not str(info.error).startswith("dfabench_register_")
                  or str(info.error).startswith(own_hook + ":")]
        suspects = [info for info in broken if _may_provide(info, name)]
        if suspects:
            causes = "; ".join(f"{_plugin_label(info)} failed to load: {info.error}" for info in suspects)
            return BrokenProviderError(f"{self.kind} {name!r} is not available: the plugin that would provide it is "
                                       f"broken: {causes} (see `dfabench plugins`)")
        error = UnknownNameError(self.kind, name, list(self.entries))
        head = f"unknown {self.kind} {name!r}"
        near = str(error).removeprefix(head).removeprefix("; ").strip()  # "did you mean ...? (known: ...)"
        causes = []  # the likely causes first, then the near names
        if broken:
            listed = "; ".join(f"{_plugin_label(info)}: {str(info.error)[:300]}" for info in broken)
            causes.append(f"{len(broken)} plugin(s) failed to load and may provide it: {listed} "
                          "(see `dfabench plugins`)")
        hint = self._hint(name)
        if hint:
            causes.append(hint)
        message = head + (": " + "; ".join(causes) if causes else "")
        if near:
            message += ("; " if causes or near.startswith("did") else " ") + near
        error.args = (message,)
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
        """A task by id or alias; ``TASK@NAME`` is the prompt variant NAME of TASK (:meth:`TaskSpec.with_variant`:
        an unknown variant is an error that lists the task's variants)."""
        from dfabench.tasks import VARIANT_SEPARATOR

        base, separator, variant = name.partition(VARIANT_SEPARATOR)
        spec = self.entries[self.resolve(self.normalise(base))]
        return spec.with_variant(variant.strip().lower()) if separator else spec
