"""The judge identity, defined once: who graded a judge score, and how it is written in the records.

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

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from dfabench.store import canonical_json

#: the fields of a judge result that say who graded it (the comparability key), in the order they are written
GRADER_FIELDS = ("model", "rubric", "rubric_version", "rubric_sha256", "with_image")


def _scalar(value: Any) -> Any:
    """A JSON value as a hashable one: scalars as they are, anything else as its canonical JSON text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else canonical_json(value)


@dataclass(frozen=True)
class JudgeIdentity:
    """Who graded a judge result, and how it was asked.

    ``model`` is the judge model as the endpoint reports it (``response.model``; None before a call, and for
    results that no model produced: empty answers scored 0 by the rubric's rule). ``requested_model``,
    ``endpoint`` (public: no credentials, query nor fragment), ``json_mode`` and ``max_tokens`` say how the
    judge was asked; they key the judge cache but are not part of :meth:`key`.
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

    @classmethod
    def from_dict(cls, data: Any) -> JudgeIdentity:
        """The identity a record names: a per-sample ``judge`` result, ``run.json["judge"]`` or one of its
        ``tasks``. Fields it does not have are None; other fields of the mapping are ignored."""
        data = data if isinstance(data, dict) else {}
        return cls(model=_scalar(data.get("model")), rubric=_scalar(data.get("rubric")),
                   rubric_version=_scalar(data.get("rubric_version")),
                   rubric_sha256=_scalar(data.get("rubric_sha256")), with_image=bool(data.get("with_image")),
                   endpoint=_scalar(data.get("endpoint")))

    def reported(self, model: str | None) -> JudgeIdentity:
        """This identity with the model the endpoint reported."""
        return replace(self, model=model)

    def key(self) -> tuple[Any, ...]:
        """What decides whether two judge scores are comparable: reported model, rubric name, version and
        SHA-256, image or not."""
        return (self.model, self.rubric, self.rubric_version, self.rubric_sha256, self.with_image)

    def label(self) -> str:
        """``MODEL / RUBRIC vVERSION #SHA8 +image``: the identity in the leaderboard and in messages."""
        rubric_hash = f" #{str(self.rubric_sha256)[:8]}" if self.rubric_sha256 else ""
        return (f"{self.model} / {self.rubric} v{self.rubric_version}{rubric_hash}"
                + (" +image" if self.with_image else ""))

    def to_dict(self) -> dict[str, Any]:
        """The fields every judge result and run.json's judge identities carry (:data:`GRADER_FIELDS`)."""
        return {"model": self.model, "rubric": self.rubric, "rubric_version": self.rubric_version,
                "rubric_sha256": self.rubric_sha256, "with_image": self.with_image}

    def request_dict(self) -> dict[str, Any]:
        """How the judge is asked, before any reply: what the judge cache key hashes (a change re-judges)."""
        return {"requested_model": self.requested_model, "endpoint": self.endpoint, "rubric": self.rubric,
                "rubric_version": self.rubric_version, "rubric_sha256": self.rubric_sha256,
                "with_image": self.with_image, "json_mode": self.json_mode, "max_tokens": self.max_tokens}


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
