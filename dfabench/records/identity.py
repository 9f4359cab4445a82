"""The model identity and the judge identity, each defined once: who answered, who graded, and how each
is written in the records.

**Model.** :class:`ModelIdentity` is what ``run.json["model"]`` holds: the registration (name, plugin,
distribution, version), the ``--model-arg`` values and what the model adds itself (weights hash,
endpoint model id), both stored scrubbed of credentials, its capabilities, the arguments that do not
change answers (``operational_args``) and, for an editable or unpackaged plugin, its source hash. Its
:attr:`ModelIdentity.fingerprint` (the answering identity: everything but the operational arguments,
the capabilities and the plugin's entry-point name) keys the response cache, is carried by every
per-sample record, and is recomputed by ``dfabench verify``.

**Judge.**

A judge score is comparable with another only when both were produced under the same
:class:`JudgeIdentity` key: the judge model *as the endpoint reports it*, the rubric's name, version and
SHA-256 (two rubric files that share a version but differ in text are two judges), and whether the
image was sent. The same type is used

- by the judge stage (:mod:`dfabench.judge`): the cache key hashes :meth:`JudgeIdentity.request_dict`
  (what was asked: requested model, endpoint, rubric, image, JSON mode, reply limit); every per-sample
  judge result, ``run.json["judge"]`` and ``run.json["judge"]["tasks"][T]`` carry :meth:`JudgeIdentity.to_dict`;
- by the ``judge`` metric (:mod:`dfabench.metrics.judge`), which never averages samples of two keys;
- by the leaderboard (:mod:`dfabench.leaderboard`), which ranks judge scores together only under one
  :meth:`JudgeIdentity.label`;
- by ``dfabench verify`` (:mod:`dfabench.verify`), which checks that run.json names the identity the
  per-sample results carry.

The JSON fields are those dfabench has always written (``model``, ``rubric``, ``rubric_version``,
``rubric_sha256``, ``with_image``; ``endpoint`` at the run level). The records are untrusted when read
back: :meth:`JudgeIdentity.from_dict` accepts whatever JSON a field holds and keeps the identity
hashable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dfabench.files import canonical_json, sha256_text
from dfabench.redact import scrub_value

#: the fields of a judge result that say who graded it (the comparability key), in the order they are written
GRADER_FIELDS = ("model", "rubric", "rubric_version", "rubric_sha256", "with_image")


@dataclass(frozen=True)
class ModelIdentity:
    """Who answered: ``run.json["model"]`` (see the module docstring). Build it with :meth:`create` (from a
    registered model) or :meth:`from_dict` (a record read back); :meth:`to_dict` is what is written."""

    name: str
    plugin: str | None = None
    distribution: str | None = None
    version: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    identity: Mapping[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    source: Mapping[str, str] | None = None
    operational_args: tuple[str, ...] = ()

    @classmethod
    def create(cls, entry: Any, args: Mapping[str, Any], model: Any) -> ModelIdentity:
        """The identity of ``model``, created from the registry ``entry`` with ``args``. The arguments and the
        model's own identity are scrubbed of credentials (:func:`dfabench.redact.scrub_value`) before anything
        is hashed: credentials are operational, changing only them keeps the cached answers."""
        source = getattr(entry, "source_identity", lambda: None)()
        return cls(name=entry.name, plugin=entry.plugin, distribution=entry.distribution, version=entry.version,
                   args=scrub_value(dict(args)), identity=scrub_value(model.identity()),
                   capabilities=tuple(sorted(model.capabilities)), source=source or None,
                   operational_args=tuple(sorted(set(getattr(model, "operational_args", ())))))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelIdentity:
        """The identity a (validated) run record names; a stored ``fingerprint`` is not trusted: use
        :attr:`fingerprint` to recompute it."""
        return cls(name=data.get("name"), plugin=data.get("plugin"), distribution=data.get("distribution"),
                   version=data.get("version"), args=data.get("args") or {}, identity=data.get("identity"),
                   capabilities=tuple(data.get("capabilities") or ()), source=data.get("source") or None,
                   operational_args=tuple(data.get("operational_args") or ()))

    def answering(self) -> dict[str, Any]:
        """What decides the answers: name, distribution, version, the arguments that change answers and the
        model's own identity (and its plugin's source, when the version does not pin it)."""
        operational = set(self.operational_args)
        out = {"name": self.name, "distribution": self.distribution, "version": self.version,
               "args": {k: v for k, v in (self.args or {}).items() if k not in operational},
               "identity": self.identity}
        if self.source:
            out["source"] = self.source
        return out

    @property
    def fingerprint(self) -> str:
        """SHA-256 of :meth:`answering`: keys the response cache; every per-sample record carries it."""
        return sha256_text(canonical_json(self.answering()))

    def to_dict(self) -> dict[str, Any]:
        """``run.json["model"]``, in the order dfabench has always written it."""
        out: dict[str, Any] = {"name": self.name, "plugin": self.plugin, "distribution": self.distribution,
                               "version": self.version, "args": dict(self.args or {}), "identity": self.identity,
                               "capabilities": list(self.capabilities)}
        if self.source:
            out["source"] = dict(self.source)
        out["operational_args"] = list(self.operational_args)
        out["fingerprint"] = self.fingerprint
        return out


def model_fingerprint(model: Mapping[str, Any]) -> str:
    """The fingerprint of a model record (``run.json["model"]``), recomputed from its fields."""
    return ModelIdentity.from_dict(model).fingerprint


def _scalar(value: Any) -> Any:
    """A JSON value as a hashable one: scalars as they are, anything else as its canonical JSON text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else canonical_json(value)


@dataclass(frozen=True)
class JudgeIdentity:
    """Who graded a judge result, and how it was asked.

    ``model`` is the judge model as the endpoint reports it (``response.model``; None before a call, and for
    results that no model produced: empty answers scored 0 by the rubric's rule). ``output`` is how the judgment
    was asked for and produced: ``json_schema`` (the rubric's JSON Schema enforced), ``json_object`` (JSON mode)
    or ``text`` (prompted for JSON, parsed strictly); None in records written before dfabench recorded it.
    ``judge_fingerprint`` is the judge model's :class:`ModelIdentity` fingerprint (the judge is a model in a
    role: :mod:`dfabench.roles`). ``requested_model``, ``endpoint`` (public: no credentials, query nor
    fragment), ``json_mode`` and ``max_tokens`` say how the judge was asked; with the fingerprint they key the
    judge cache, but only the reported model, the rubric, the image and the output mode are :meth:`key`.
    """

    model: str | None
    rubric: str | None
    rubric_version: Any
    rubric_sha256: str | None
    with_image: bool = False
    requested_model: str | None = None
    endpoint: str | None = None
    json_mode: bool = True
    max_tokens: int | None = None
    output: str | None = None
    judge_fingerprint: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> JudgeIdentity:
        """The identity a record names: a per-sample ``judge`` result, ``run.json["judge"]`` or one of its
        ``tasks``. Fields it does not have are None; other fields of the mapping are ignored."""
        data = data if isinstance(data, dict) else {}
        return cls(model=_scalar(data.get("model")), rubric=_scalar(data.get("rubric")),
                   rubric_version=_scalar(data.get("rubric_version")),
                   rubric_sha256=_scalar(data.get("rubric_sha256")), with_image=bool(data.get("with_image")),
                   endpoint=_scalar(data.get("endpoint")), output=_scalar(data.get("output")),
                   judge_fingerprint=_scalar(data.get("judge_fingerprint")))

    def reported(self, model: str | None, output: str | None = None) -> JudgeIdentity:
        """This identity with the model the endpoint reported (and the output mode the reply was produced under;
        None keeps the requested one)."""
        return replace(self, model=model, output=output if output is not None else self.output)

    def key(self) -> tuple[Any, ...]:
        """What decides whether two judge scores are comparable: reported model, rubric name, version and
        SHA-256, image or not, output mode."""
        return (self.model, self.rubric, self.rubric_version, self.rubric_sha256, self.with_image, self.output)

    def label(self) -> str:
        """``MODEL / RUBRIC vVERSION #SHA8 +image [OUTPUT]``: the identity in the leaderboard and in messages."""
        rubric_hash = f" #{str(self.rubric_sha256)[:8]}" if self.rubric_sha256 else ""
        return (f"{self.model} / {self.rubric} v{self.rubric_version}{rubric_hash}"
                + (" +image" if self.with_image else "") + (f" [{self.output}]" if self.output else ""))

    def to_dict(self) -> dict[str, Any]:
        """The fields every judge result and run.json's judge identities carry (:data:`GRADER_FIELDS`; ``output``
        and ``judge_fingerprint`` when known, so records written before them read back as they were)."""
        out = {"model": self.model, "rubric": self.rubric, "rubric_version": self.rubric_version,
               "rubric_sha256": self.rubric_sha256, "with_image": self.with_image}
        if self.output is not None:
            out["output"] = self.output
        if self.judge_fingerprint is not None:
            out["judge_fingerprint"] = self.judge_fingerprint
        return out

    def request_dict(self) -> dict[str, Any]:
        """How the judge is asked, before any reply: what the judge cache key hashes (a change re-judges)."""
        return {"requested_model": self.requested_model, "endpoint": self.endpoint, "rubric": self.rubric,
                "rubric_version": self.rubric_version, "rubric_sha256": self.rubric_sha256,
                "with_image": self.with_image, "json_mode": self.json_mode, "max_tokens": self.max_tokens,
                "output": self.output, "judge_fingerprint": self.judge_fingerprint}


def run_judge_identity(record: dict[str, Any], task: str | None = None) -> JudgeIdentity | None:
    """The judge identity run.json names for ``task`` (its ``judge.tasks`` entry, else the run-level one),
    or the run-level one when ``task`` is None; None when the run names no judge."""
    judge = record.get("judge")
    if not isinstance(judge, dict) or not judge:
        return None
    per_task = judge.get("tasks")
    chosen = (per_task.get(task) if task is not None and isinstance(per_task, dict) else None) or judge
    return JudgeIdentity.from_dict(chosen)


def judge_without_tasks(judge: dict[str, Any] | None, tasks: Iterable[str]) -> dict[str, Any] | None:
    """run.json's ``judge`` after ``tasks`` are run again: they lose their judgments (new answers), and so
    their per-task judge identity; the others keep theirs."""
    if not judge or not judge.get("tasks"):
        return judge
    dropped = set(tasks)
    return {**judge, "tasks": {task: value for task, value in judge["tasks"].items() if task not in dropped}}
