"""Planning a judge run: which tasks, which rubric, which samples are cached, scored 0 by rule, cannot be sent
(an image outside the benchmark folder) or need a call, and the cache key of each (:func:`judge_identity`)."""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.data.manifest import load_benchmark
from dfabench.errors import DfabenchError
from dfabench.judge.rubric import (
    FALLBACK_RUBRIC,
    NONCE_PROMPT_FORMAT,
    JudgmentError,
    Rubric,
    list_rubrics,
    load_rubric,
)
from dfabench.judge.settings import JudgeSettings, public_endpoint
from dfabench.metrics.judge_input import answer_and_references, judge_input_sha256
from dfabench.plugins import get_manager
from dfabench.records import JudgeIdentity
from dfabench.roles import RoleModel
from dfabench.store import RunFolder, canonical_json, sha256_file, sha256_text

#: the version of the judge cache key's layout (2: the judge is a model in a role, keyed by its fingerprint and
#: the output mode)
JUDGE_CACHE_VERSION = 2


@dataclass
class WorkItem:
    task: str
    sample_id: str
    key: str
    input_sha256: str
    messages: list[dict[str, Any]]
    rubric: Rubric
    #: the benchmark image sent with the prompt (``--with-image``), else None
    image_path: str | None = None


@dataclass
class TaskPlan:
    task: str
    rubric: Rubric
    identity: JudgeIdentity  # as requested (model None): each result adds the model the endpoint reported
    records: list[dict[str, Any]]
    items: list[WorkItem] = field(default_factory=list)
    by_rule: dict[str, dict[str, Any]] = field(default_factory=dict)
    cached: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # sample id -> reason (no call possible)
    n_failed_samples: int = 0
    n_no_reference: int = 0
    #: samples left out by ``--sample N`` (judged: a fixed, seeded subset); their earlier judgments are dropped
    not_sampled: set[str] = field(default_factory=set)

    @property
    def n_not_sampled(self) -> int:
        return len(self.not_sampled)


def output_mode(settings: JudgeSettings, judge: RoleModel) -> str:
    """How judgments are asked for: ``--judge-output``, or (``auto``) the strongest the judge model enforces."""
    if settings.output != "auto":
        return settings.output
    for mode in ("json_schema", "json_object"):
        if mode in judge.structured_output:
            return mode
    return "text"


def judge_identity(settings: JudgeSettings, rubric: Rubric, judge: RoleModel | None = None,
                   output: str | None = None) -> JudgeIdentity:
    """The judge identity as requested (the reported model and the output mode produced come with each reply:
    :meth:`JudgeIdentity.reported`); ``judge``: the judge model in its role (None: a plan without one)."""
    return JudgeIdentity(model=None, rubric=rubric.name, rubric_version=rubric.version, rubric_sha256=rubric.sha256,
                         with_image=settings.with_image,
                         requested_model=judge.served_id if judge is not None else settings.label(),
                         endpoint=judge_endpoint(settings, judge), json_mode=output in ("json_schema", "json_object"),
                         max_tokens=settings.max_tokens or rubric.max_tokens, output=output,
                         judge_fingerprint=judge.identity.fingerprint if judge is not None else None)


def judge_endpoint(settings: JudgeSettings, judge: RoleModel | None = None) -> str | None:
    """The endpoint a judge identity names (public: no credentials), from the judge model's own identity, never
    from its list of URLs: the ``openai`` plugin over one server names it (as ``--base-url`` gives it, the form
    dfabench has always recorded and keyed the cache with); a pool of servers names none (its identity is what
    the servers serve, not where: adding or replacing a server keeps the cached judgments); another model names
    what its identity calls ``endpoint``, else nothing."""
    own = judge.identity.identity if judge is not None and isinstance(judge.identity.identity, Mapping) else {}
    if settings.judge != "openai":
        return own.get("endpoint") if judge is not None else None
    if judge is not None and "endpoint" not in own:
        return None  # a pool (several base URLs): no server is named
    args = judge.identity.args if judge is not None and isinstance(judge.identity.args, Mapping) else {}
    base_url = args.get("base_url") or settings.base_url
    if isinstance(base_url, (list, tuple)) or (isinstance(base_url, str) and "," in base_url):
        return None
    return public_endpoint(base_url if isinstance(base_url, str) else None)


def cache_key(identity: JudgeIdentity, task: str, sample: dict[str, Any], candidate: str, references: list[str],
              image_sha256: str | None) -> str:
    """The judge cache key of one judgment: the judge as requested, the task, the sample and its texts, the image."""
    return sha256_text(canonical_json({"judge": {**identity.request_dict(), "cache_version": JUDGE_CACHE_VERSION},
                                       "task": task, "sample": str(sample["id"]), "question": sample.get("prompt"),
                                       "candidate": candidate, "references": references, "image": image_sha256}))


def run_benchmark(record: dict[str, Any]) -> Any:
    """The benchmark a run was made on (:class:`dfabench.data.manifest.Benchmark`), loaded from the folder its
    record names and refused (:class:`DfabenchError`, exit 2) when that folder is not there or its fingerprint is
    not the run's: the judge sends only images that the run's own benchmark manifest names."""
    bench = record.get("benchmark") or {}
    path = bench.get("path")
    if not path or not Path(path).is_dir():
        raise DfabenchError(f"--with-image needs the benchmark images, but the run's benchmark folder {path!r} "
                            "is not there")
    benchmark = load_benchmark(path)
    recorded, actual = bench.get("fingerprint"), benchmark.fingerprint()
    if actual != recorded:
        raise DfabenchError(f"--with-image: the benchmark at {path} has fingerprint {actual[:12]}, but the run was "
                            f"made on {str(recorded)[:12]}; its images are not the run's (nothing was sent)")
    return benchmark


def benchmark_image(root: Path, relative: str | None, sample_id: str) -> Path:
    """The image file of a manifest record, inside the benchmark folder: a relative ``/`` path without ``..``
    whose real path (symbolic links resolved) stays in the folder. Raises :class:`JudgmentError` otherwise."""
    if relative is None:
        raise JudgmentError(f"sample {sample_id!r} is not in the benchmark manifest: no image to send")
    if (not isinstance(relative, str) or not relative or relative.startswith("/") or "\\" in relative
            or "\0" in relative or relative[1:2] == ":" or ".." in relative.split("/")):
        raise JudgmentError(f"the manifest's image path {relative!r} for sample {sample_id!r} is not a relative "
                            "path inside the benchmark folder")
    path = root / relative
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(path)]) != real_root:
        raise JudgmentError(f"the image {relative!r} of sample {sample_id!r} leads outside the benchmark folder "
                            "(through a symbolic link)")
    if not path.is_file():
        raise JudgmentError(f"image not found: {path}")
    return path


def _rubric_for(task: str, info: dict[str, Any], settings: JudgeSettings) -> Rubric:
    if settings.rubric:
        return load_rubric(settings.rubric)
    options = ((info.get("spec") or {}).get("metric_options") or {}).get("judge") or {}
    return load_rubric(options.get("rubric") or _spec_rubric(task) or FALLBACK_RUBRIC)


def _spec_rubric(task: str) -> str | None:
    """The ``rubric`` field of the installed task spec (None for a task no installed plugin defines)."""
    registry = get_manager().tasks
    return registry.get(task).rubric if task in registry else None


def judged_tasks(record: dict[str, Any], folder: RunFolder, wanted: list[str] | None) -> list[str]:
    """The tasks to judge: the ``wanted`` ones, else the run's tasks whose spec lists the ``judge`` metric,
    else its text tasks (parser ``text``)."""
    available = [t for t in record.get("tasks", {}) if folder.samples_path(t).exists()]
    if wanted:
        chosen = []
        lookup = {_norm_task(t): t for t in available}
        for name in wanted:
            task = lookup.get(_norm_task(name))
            if task is None:
                raise DfabenchError(f"task {name!r} is not in this run (its tasks: {', '.join(available) or 'none'})")
            if ((record["tasks"][task].get("spec") or {}).get("parser")) != "text":
                raise DfabenchError(f"task {task} has no free-text answer to judge (the judge grades AD, FC and "
                                    "FL reports)")
            chosen.append(task)
        return chosen
    specs = {t: record["tasks"][t].get("spec") or {} for t in available}
    listing = [t for t in available if "judge" in (specs[t].get("metrics") or [])]
    return listing or [t for t in available if specs[t].get("parser") == "text"]


def _norm_task(name: str) -> str:
    return name.replace("-", "").replace("_", "").lower()


def sampled_ids(records: list[dict[str, Any]], n: int | None, seed: int) -> set[str] | None:
    """The ids ``--sample N`` judges: a fixed subset drawn with ``seed`` from the sorted ids (the same for the
    same log, whatever order it was written in); None: every sample."""
    if n is None:
        return None
    if n < 1:
        raise DfabenchError(f"--sample must be at least 1, not {n}")
    ids = sorted(str(r["id"]) for r in records)
    return set(random.Random(f"dfabench-judge-sample\0{seed}").sample(ids, min(n, len(ids))))


def plan_judging(folder: RunFolder, record: dict[str, Any], settings: JudgeSettings, tasks: list[str],
                 cache: Any, judge: RoleModel | None = None, output: str | None = None) -> list[TaskPlan]:
    """What each task needs: cached judgments, rule-scored empty answers, and the calls to make.

    With ``--with-image`` the images come from the run's benchmark manifest, by sample id (:func:`run_benchmark`,
    :func:`benchmark_image`); a sample log's own ``image`` field is never read. With ``--sample N`` only a fixed,
    seeded subset of each task's samples is judged (:func:`sampled_ids`).
    """
    benchmark = run_benchmark(record) if settings.with_image else None
    images = {sample.id: sample.image for sample in benchmark.samples} if benchmark is not None else {}
    plans = []
    for task in tasks:
        rubric = _rubric_for(task, record["tasks"][task], settings)
        if not rubric.delimits_data:
            raise DfabenchError(f"rubric {rubric.label} ({rubric.path}) puts the answer into the judge prompt "
                                "without delimiters that the answer cannot forge (prompt_format 1); judge with a "
                                f"prompt_format {NONCE_PROMPT_FORMAT} rubric (shipped: {', '.join(list_rubrics())})")
        identity = judge_identity(settings, rubric, judge, output)
        plan = TaskPlan(task=task, rubric=rubric, identity=identity, records=folder.read_samples(task))
        chosen = sampled_ids(plan.records, settings.sample, settings.seed)
        keys: dict[str, WorkItem] = {}
        for sample in plan.records:
            sample_id = str(sample["id"])
            if chosen is not None and sample_id not in chosen:
                plan.not_sampled.add(sample_id)
                continue
            if sample.get("error"):
                plan.n_failed_samples += 1
                continue
            candidate, references = answer_and_references(sample)
            if not references:
                plan.n_no_reference += 1
                continue
            digest = judge_input_sha256(sample)
            if not candidate.strip():
                plan.by_rule[sample_id] = {"input_sha256": digest}
                continue
            image_sha = None
            image_path = None
            if benchmark is not None:
                try:
                    image_path = benchmark_image(benchmark.root, images.get(sample_id), sample_id)
                except JudgmentError as exc:
                    plan.errors[sample_id] = str(exc)
                    continue
                image_sha = sha256_file(image_path)
            key = cache_key(identity, task, sample, candidate, references, image_sha)
            reference = references[0] if len(references) == 1 else "\n---\n".join(references)
            keys[key] = WorkItem(task=task, sample_id=sample_id, key=key, input_sha256=digest, rubric=rubric,
                                 messages=rubric.messages(sample.get("prompt"), reference, candidate,
                                                          with_image=image_path is not None),
                                 image_path=str(image_path) if image_path is not None else None)
        found = cache.get_many(list(keys)) if keys and not settings.refresh else {}
        for key, item in keys.items():
            if key in found:
                plan.cached[item.sample_id] = {**found[key], "input_sha256": item.input_sha256}
            else:
                plan.items.append(item)
        plans.append(plan)
    return plans
