"""Task specs: what is asked, of which samples, how the answer is parsed and scored.

A task spec is a small YAML file (``tasks/*.yaml``, shipped in the wheel as the package
``dfabench.task_specs``); plugins add more through ``dfabench_register_tasks``. Fields:

``id``, ``name``, ``aliases``, ``version``, ``description`` — identity and documentation;
``requires`` — model capabilities that can serve the task, in order of preference
(``generate``, ``score``, ``localize``); ``samples`` — the sample filter that says which benchmark
samples the task uses: ``all``, ``fake``, ``described`` (fakes with a reference description),
``masked`` (fakes with a mask), ``conversation`` (samples with conversations) — see
:mod:`dfabench.selection` — or one a plugin adds through ``dfabench_register_sample_filters``;
``reference`` — what the answer is compared with (``label``, ``category``, ``description``,
``conversation``, ``mask_and_description``); ``system`` and ``prompt`` — the chat prompt (the image is
attached to the first user turn); ``parser`` — the name of a registered parser: ``detection``,
``category`` or ``text`` (see :mod:`dfabench.parsing`) or one a plugin adds through
``dfabench_register_parsers``; ``choices`` / ``fake_choice`` — answer options whose log-probabilities
give a DF-D score; ``generation`` — ``max_new_tokens``, ``temperature``, ``top_p``; ``metrics`` — metric
providers.

Fields that say how the task is *presented and served*, never what it measures (so they are outside the
fingerprint, and changing them changes no recorded number): ``order`` — where it is listed (``dfabench
tasks``, ``dfabench chat``, the leaderboard; ascending, then by id); ``columns`` — its leaderboard columns,
the first being the ranking key; ``chat`` — the ``dfabench chat`` command that asks its prompt
(``/detect``); ``rubric`` — the judge rubric ``dfabench judge`` uses for it by default (the judge
identity of every judged sample names the rubric and its SHA-256, so scores under two rubrics are never
averaged or ranked together).

**Prompt variants.** ``parser_options`` maps option letters to answers (``{A: fake, B: real}``, ``{A: FS,
...}``) for a prompt that offers lettered options; the parser reads a lettered answer through it.
``variants`` lists paraphrases of the question: a mapping ``NAME -> {prompt, system, choices, fake_choice,
parser_options, generation, description}`` (``prompt`` required). The spec's own ``prompt`` is the variant
``default`` (the DFA-Bench question); :meth:`TaskSpec.with_variant` gives the spec of another: id
``TASK@NAME`` (``DF-D@lettered``), the base's fields with the variant's prompt, its own ``choices`` /
``fake_choice`` / ``parser_options`` (they belong to a phrasing: never inherited from the base) and the
base's ``system`` and ``generation`` unless it gives its own. ``variants`` is outside the base's
fingerprint (the default question measures the same whatever paraphrases are listed beside it); each
variant's spec has its own fingerprint, over its id, its name (``variant``) and its prompt, so a variant run
keys the response cache, the run record and the leaderboard under ``TASK@NAME``, never under ``TASK``.

The **fingerprint** is a SHA-256 over every field that can change a number (everything but ``name``,
``description``, ``aliases``, ``variants`` and the presentation fields; ``variant`` and ``parser_options``
only where set, so that specs without them keep their fingerprints), so silent prompt drift is visible and runs
with different specs are never ranked together.

This module is a *pure spec*: it knows the fields and their meaning and imports nothing of the
plugin machinery. Looking a task up by id or alias (:func:`dfabench.plugins.get_task`,
:func:`dfabench.plugins.normalise_task_id`, :func:`dfabench.plugins.resolve_tasks`) and checking
that a spec's ``parser`` is registered belong to the plugin manager, which imports this module
(never the other way round).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError
from dfabench.models import CAPABILITIES, GenerationSettings

#: the sample filters dfabench ships (:mod:`dfabench.selection`); a spec may name any registered filter
BUILTIN_SAMPLE_FILTERS = ("all", "fake", "described", "masked", "conversation")
REFERENCES = ("label", "category", "description", "conversation", "mask_and_description")
#: the parsers dfabench ships (registered by :mod:`dfabench.builtin`); a spec may name any registered parser
BUILTIN_PARSERS = ("detection", "category", "text")
_DOC_FIELDS = ("name", "description", "aliases")
#: how a task is listed and served; outside the fingerprint (see the module docstring)
_PRESENTATION_FIELDS = ("order", "columns", "chat", "rubric")
#: ``order`` of a spec that gives none: after the built-in tasks
DEFAULT_ORDER = 1000
_FIELDS = {"id", "name", "aliases", "version", "description", "requires", "samples", "reference", "system",
           "prompt", "parser", "choices", "fake_choice", "generation", "metrics", "metric_options",
           "parser_options", "variants", "variant", *_PRESENTATION_FIELDS}
#: the name of a spec's own prompt among its variants
DEFAULT_VARIANT = "default"
#: what ``--prompt-variant`` takes for every variant; not a variant name
ALL_VARIANTS = "all"
#: between a task id and a variant name in the variant's id (``DF-D@lettered``)
VARIANT_SEPARATOR = "@"
#: the fields a variant may give
VARIANT_FIELDS = ("prompt", "system", "choices", "fake_choice", "parser_options", "generation", "description")
_VARIANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


@dataclass(frozen=True)
class TaskSpec:
    id: str
    version: str
    requires: tuple[str, ...]
    samples: str
    reference: str
    prompt: str
    parser: str
    metrics: tuple[str, ...]
    name: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()
    system: str | None = None
    choices: tuple[str, ...] = ()
    fake_choice: str | None = None
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    order: int = DEFAULT_ORDER
    columns: tuple[str, ...] = ()
    chat: str | None = None
    rubric: str | None = None
    #: option letter -> answer (or option text), for a prompt with lettered options
    parser_options: Mapping[str, str] = field(default_factory=dict)
    #: the paraphrases of the question: name -> the variant's fields (see the module docstring)
    variants: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: the name of the variant this spec is (None: the spec's own prompt, the variant ``default``)
    variant: str | None = None
    source: str = ""
    plugin: str = ""

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, spec: Mapping[str, Any] | str | Path, plugin: str = "") -> TaskSpec:
        """Build a spec from a mapping or a YAML file; raises :class:`InputError` when malformed."""
        if isinstance(spec, (str, Path)) or hasattr(spec, "read_text"):
            source = str(spec)
            data = _read_yaml(spec)
        else:
            source, data = f"<{plugin or 'spec'}>", dict(spec)
        return cls.from_dict(data, source=source, plugin=plugin)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<spec>", plugin: str = "") -> TaskSpec:
        def fail(problem: str) -> InputError:
            return InputError(source, problem, f"task {data.get('id', '?')!r}" if isinstance(data, Mapping) else None)

        if not isinstance(data, Mapping):
            raise InputError(source, "a task spec must be a mapping")
        unknown = set(data) - _FIELDS
        if unknown:
            raise fail(f"unknown field(s) {sorted(unknown)}")
        for name in ("id", "version", "requires", "samples", "reference", "prompt", "parser", "metrics"):
            if data.get(name) in (None, "", []):
                raise fail(f"missing field {name!r}")
        requires = tuple(_as_list(data["requires"]))
        if not requires or set(requires) - set(CAPABILITIES):
            raise fail(f"'requires' must list capabilities among {CAPABILITIES}, got {list(requires)}")
        if not isinstance(data["samples"], str) or not data["samples"].strip():
            raise fail(f"'samples' must be the name of a registered sample filter, got {data['samples']!r}")
        if data["reference"] not in REFERENCES:
            raise fail(f"'reference' must be one of {REFERENCES}, got {data['reference']!r}")
        if not isinstance(data["parser"], str) or not data["parser"].strip():
            raise fail(f"'parser' must be the name of a registered parser, got {data['parser']!r}")
        choices = tuple(str(c) for c in _as_list(data.get("choices") or []))
        fake_choice = data.get("fake_choice")
        if choices and (len(choices) != 2 or fake_choice not in choices):
            raise fail("'choices' must list two answers and 'fake_choice' must be one of them")
        generation = data.get("generation") or {}
        if not isinstance(generation, Mapping):
            raise fail("'generation' must be a mapping")
        try:
            settings = GenerationSettings(**generation)
        except TypeError as exc:
            raise fail(f"bad 'generation' settings: {exc}") from None
        metric_options = data.get("metric_options") or {}
        if not isinstance(metric_options, Mapping):
            raise fail("'metric_options' must be a mapping of provider name -> options")
        order = data.get("order", DEFAULT_ORDER)
        if isinstance(order, bool) or not isinstance(order, int):
            raise fail(f"'order' must be an integer, got {order!r}")
        chat = data.get("chat")
        if chat is not None and (not isinstance(chat, str) or not chat.startswith("/") or len(chat.split()) != 1):
            raise fail(f"'chat' must be one word starting with '/', e.g. /detect; got {chat!r}")
        rubric = data.get("rubric")
        if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
            raise fail(f"'rubric' must be the name or path of a judge rubric, got {rubric!r}")
        parser_options = _parser_options(data.get("parser_options"), "parser_options", fail)
        variant = data.get("variant")
        task_id = str(data["id"])
        if variant is not None:
            if not isinstance(variant, str) or not _VARIANT_NAME.match(variant) or variant in (
                    DEFAULT_VARIANT, ALL_VARIANTS):
                raise fail(f"'variant' must be a variant name (lower-case letters, digits, '-', '_'), got {variant!r}")
            if not task_id.endswith(VARIANT_SEPARATOR + variant) or task_id.count(VARIANT_SEPARATOR) != 1:
                raise fail(f"the spec of variant {variant!r} must have the id TASK{VARIANT_SEPARATOR}{variant}, "
                           f"not {task_id!r}")
            if data.get("variants"):
                raise fail("a prompt variant cannot list variants of its own")
        elif VARIANT_SEPARATOR in task_id:
            raise fail(f"'id' must not contain {VARIANT_SEPARATOR!r} (it joins a task and its prompt variant)")
        variants = _variants(data.get("variants"), fail)
        if variants and data["reference"] == "conversation":
            raise fail("'variants': a conversation task asks the sample's own questions, not 'prompt'")
        spec = cls(
            id=str(data["id"]), version=str(data["version"]), requires=requires, samples=data["samples"].strip(),
            reference=data["reference"], prompt=str(data["prompt"]).strip(), parser=data["parser"].strip(),
            metrics=tuple(_as_list(data["metrics"])), name=str(data.get("name", "")),
            description=str(data.get("description", "")).strip(),
            aliases=tuple(_as_list(data.get("aliases") or [])),
            system=(str(data["system"]).strip() if data.get("system") else None), choices=choices,
            fake_choice=fake_choice, generation=settings, metric_options=dict(metric_options),
            order=order, columns=tuple(str(c) for c in _as_list(data.get("columns") or [])),
            chat=chat.lower() if chat else None, rubric=rubric.strip() if rubric else None,
            parser_options=parser_options, variants=variants, variant=variant, source=source, plugin=plugin,
        )
        for name in variants:  # each variant is a whole spec: a bad one fails here, naming its field
            try:
                spec.with_variant(name)
            except InputError as exc:
                raise fail(f"variants.{name}: {exc.problem}") from None
        return spec

    # ------------------------------------------------------------------ identity

    def canonical(self) -> dict[str, Any]:
        """The fields that can change a number, as plain data."""
        return {
            "id": self.id, "version": self.version, "requires": list(self.requires), "samples": self.samples,
            "reference": self.reference, "system": self.system, "prompt": self.prompt, "parser": self.parser,
            "choices": list(self.choices), "fake_choice": self.fake_choice,
            "generation": self.generation.to_dict(), "metrics": list(self.metrics),
            "metric_options": dict(self.metric_options),
            # only where set: the specs without them keep the fingerprints they always had
            **({"parser_options": dict(self.parser_options)} if self.parser_options else {}),
            **({"variant": self.variant} if self.variant is not None else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        out = self.canonical()
        out.update(name=self.name, description=self.description, aliases=list(self.aliases), order=self.order,
                   columns=list(self.columns), chat=self.chat, rubric=self.rubric)
        if self.variants:
            out["variants"] = {name: dict(fields) for name, fields in self.variants.items()}
        return out

    # ------------------------------------------------------------------ prompt variants

    @property
    def base_id(self) -> str:
        """The task this spec is a variant of (its own id when it is no variant)."""
        return self.id.split(VARIANT_SEPARATOR, 1)[0]

    @property
    def variant_name(self) -> str:
        """The variant this spec is: its name, or ``default``."""
        return self.variant or DEFAULT_VARIANT

    @property
    def variant_names(self) -> tuple[str, ...]:
        """``default`` and the names of the listed variants, in the spec's order."""
        return (DEFAULT_VARIANT, *self.variants)

    def with_variant(self, name: str) -> TaskSpec:
        """The spec of prompt variant ``name`` (``default``: this spec itself); see the module docstring."""
        if name == DEFAULT_VARIANT:
            return self
        if self.variant is not None:
            raise DfabenchError(f"{self.id} is itself a prompt variant of {self.base_id}")
        if name not in self.variants:
            raise DfabenchError(f"task {self.id} has no prompt variant {name!r} (its variants: "
                                f"{', '.join(self.variant_names)}; their questions: `dfabench tasks --json`)")
        fields = self.variants[name]
        generation = {k: v for k, v in self.generation.to_dict().items() if k != "seed"}
        generation.update(fields.get("generation") or {})
        data = {**self.canonical(), "id": f"{self.id}{VARIANT_SEPARATOR}{name}", "variant": name,
                "prompt": fields["prompt"], "system": fields.get("system", self.system),
                "choices": list(fields.get("choices") or []), "fake_choice": fields.get("fake_choice"),
                "parser_options": dict(fields.get("parser_options") or {}), "generation": generation,
                "name": f"{self.name} ({name})" if self.name else name,
                "description": fields.get("description") or self.description, "order": self.order,
                "columns": list(self.columns), "rubric": self.rubric}
        return TaskSpec.from_dict(data, source=self.source, plugin=self.plugin)

    @property
    def sort_key(self) -> tuple[int, str]:
        """Where the task is listed: by ``order``, then by id."""
        return (self.order, self.id)

    @property
    def fingerprint(self) -> str:
        from dfabench.store import canonical_json

        return hashlib.sha256(canonical_json(self.canonical()).encode()).hexdigest()

    # ------------------------------------------------------------------ use

    def serves(self, capabilities: frozenset[str] | set[str]) -> str | None:
        """The capability this task will use with a model that has ``capabilities`` (None: n/a)."""
        for capability in self.requires:
            if capability in capabilities:
                return capability
        return None

    def messages(self, sample=None) -> list[dict[str, Any]]:
        """The chat messages for one sample (transformers chat-template convention)."""
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        if self.reference == "conversation" and sample is not None and sample.conversations:
            turns = list(sample.conversations)
            # Everything before the last answer is the history; the last answer is the reference.
            last_answer = max(i for i, t in enumerate(turns) if t["from"] == "gpt")
            first_user = True
            for turn in turns[:last_answer]:
                text = turn["value"].replace("<image>", "").strip()
                if turn["from"] == "human":
                    content = [{"type": "text", "text": text}]
                    if first_user:
                        content.insert(0, {"type": "image"})
                        first_user = False
                    messages.append({"role": "user", "content": content})
                else:
                    messages.append({"role": "assistant", "content": [{"type": "text", "text": text}]})
            return messages
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": self.prompt}]})
        return messages

    def fake_probability(self, logprobs: Mapping[str, float] | None) -> float | None:
        """P(fake answer): the softmax over the log-probabilities of the two answer options (DF-D's
        ``yes``/``no``); ``None`` when the model gave none of them or the task has no options."""
        import math

        if not logprobs or not self.choices or self.fake_choice is None:
            return None
        try:
            values = [float(logprobs[c]) for c in self.choices]
        except (KeyError, TypeError, ValueError):
            return None
        if any(math.isnan(v) or v == math.inf for v in values) or all(v == -math.inf for v in values):
            return None
        top = max(values)
        weights = [math.exp(v - top) for v in values]
        return weights[self.choices.index(self.fake_choice)] / sum(weights)

    def reference_of(self, sample) -> Any:
        if self.reference == "label":
            return sample.label
        if self.reference == "category":
            return sample.category
        if self.reference == "description":
            return sample.description
        if self.reference == "conversation":
            turns = list(sample.conversations or ())
            answers = [t["value"] for t in turns if t["from"] == "gpt"]
            return answers[-1] if answers else None
        return {"text": sample.description, "mask": sample.mask}


def _parser_options(value: Any, where: str, fail) -> dict[str, str]:
    """``parser_options`` checked: a mapping of option letters (one letter each) to non-empty text."""
    if value in (None, {}):
        return {}
    if not isinstance(value, Mapping):
        raise fail(f"'{where}' must be a mapping of option letter -> answer, e.g. {{A: fake, B: real}}")
    out: dict[str, str] = {}
    for letter, answer in value.items():
        key = str(letter).strip().upper()
        if not re.fullmatch(r"[A-Z]", key) or key in out:
            raise fail(f"'{where}': option keys must be distinct single letters, got {letter!r}")
        if not isinstance(answer, str) or not answer.strip():
            raise fail(f"'{where}.{key}' must be the answer the letter stands for, got {answer!r}")
        out[key] = answer.strip()
    return out


def _variants(value: Any, fail) -> dict[str, dict[str, Any]]:
    """``variants`` checked for shape (each variant is then built as a whole spec by ``from_dict``)."""
    if value in (None, {}):
        return {}
    if not isinstance(value, Mapping):
        raise fail("'variants' must be a mapping of variant name -> {prompt, ...}")
    out: dict[str, dict[str, Any]] = {}
    for name, fields in value.items():
        if not isinstance(name, str) or not _VARIANT_NAME.match(name) or name in (DEFAULT_VARIANT, ALL_VARIANTS):
            raise fail(f"'variants': {name!r} is not a variant name (lower-case letters, digits, '-', '_'; "
                       f"not {DEFAULT_VARIANT!r}, the spec's own prompt, nor {ALL_VARIANTS!r})")
        if not isinstance(fields, Mapping):
            raise fail(f"'variants.{name}' must be a mapping with at least 'prompt'")
        unknown = set(fields) - set(VARIANT_FIELDS)
        if unknown:
            raise fail(f"'variants.{name}': unknown field(s) {sorted(unknown)} (a variant gives "
                       f"{', '.join(VARIANT_FIELDS)})")
        if not isinstance(fields.get("prompt"), str) or not fields["prompt"].strip():
            raise fail(f"'variants.{name}.prompt' must be the question's text")
        if fields.get("generation") is not None and not isinstance(fields["generation"], Mapping):
            raise fail(f"'variants.{name}.generation' must be a mapping")
        out[name] = {k: (dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, (list, tuple)) else v)
                     for k, v in fields.items()}
    return out


def expand_variants(tasks: list[TaskSpec], selection: str | None) -> list[TaskSpec]:
    """The specs ``--prompt-variant`` asks for: ``None`` / ``default``: the tasks as they are; ``all``: each
    task's default and then each of its variants (a task without variants: its default only); ``A,B``: those
    variants of each task (every task must have them)."""
    if selection is None:
        return list(tasks)
    names = [n.strip().lower() for n in selection.split(",") if n.strip()]  # variant names are lower-case
    if not names:
        raise DfabenchError("--prompt-variant needs a variant name, a comma-separated list of them, or 'all'")
    out: list[TaskSpec] = []
    for task in tasks:
        if task.variant is not None:
            raise DfabenchError(f"{task.id} is itself a prompt variant: give --tasks {task.base_id} with "
                                f"--prompt-variant {selection}, or --tasks {task.id} alone")
        wanted = list(task.variant_names) if ALL_VARIANTS in names else names
        for name in wanted:
            spec = task.with_variant(name)
            if spec not in out:
                out.append(spec)
    return out


def split_variant(task_key: str) -> tuple[str, str]:
    """``DF-D@lettered`` -> ``("DF-D", "lettered")``; ``DF-D`` -> ``("DF-D", "default")``."""
    base, sep, name = task_key.partition(VARIANT_SEPARATOR)
    return base, (name if sep else DEFAULT_VARIANT)


def _as_list(value: Any) -> list:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def _read_yaml(path: Any) -> Any:
    import yaml

    try:
        text = (path if hasattr(path, "read_text") else Path(path)).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise InputError(path, f"malformed YAML ({getattr(exc, 'problem', None) or exc})", where) from None


def builtin_task_files() -> list[Any]:
    """The task specs shipped with dfabench (works in editable and non-editable installs)."""
    root = resources.files("dfabench.task_specs")
    return sorted((p for p in root.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
