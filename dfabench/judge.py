"""The judge stage: ``dfabench judge RUN_DIR --judge-model ID`` grades the text answers of a run with an
LLM judge behind any OpenAI-compatible chat-completions endpoint.

**What is sent.** For each answered sample of the judged tasks (by default the run's tasks whose spec lists
the ``judge`` metric: AD and FC; ``--tasks AD,FC,FL`` to choose), one chat request: the rubric's system
message, then a user message with the question the model was asked, the reference text, the model's answer
and the rubric's criteria; with ``--with-image`` the benchmark image too, as a base64 data URL: the image that
the benchmark's manifest names for the sample id (inside the benchmark folder, whose fingerprint must be the
run's), never a path taken from the sample log. The question, the reference and the answer are untrusted data:
each sits in a block delimited by tags that carry a nonce which occurs in none of them (``<candidate-NONCE>`` ...
``</candidate-NONCE>``), so an answer cannot close its block, and the rubric tells the judge that what is inside
is data to grade, never instructions. The judge replies with one JSON object (one number per criterion and a
short rationale; :meth:`Rubric.json_schema`), requested with ``response_format={"type": "json_object"}`` unless
``--no-json-mode``; a reply that is not exactly one such object (a single ```json fence allowed) is an
unparseable judgment. Failed samples (the model failed: ``error`` set) are not judged; an empty answer
scores 0 by the rubric's rule, without a call.

**Rubrics** are versioned YAML files in ``dfabench/resources/rubrics/`` (``artifact-description-v2`` for AD and
FL, ``conversation-v2`` for FC; the v1 files, whose ``<<<``/``>>>`` blocks an answer could close, stay loadable
for the records of old runs but are refused for judging; a task spec may name another in
``metric_options: {judge: {rubric: ...}}``, ``--rubric NAME|PATH`` overrides). A sample's judge score is the
mean of its criteria divided by the scale maximum (0..1).

**Judge identity** = the model id *as the endpoint reports it* (``response.model``), the rubric name and
version, and whether the image was sent. It is written to ``run.json["judge"]`` (with the rubric's SHA-256 and
the endpoint's host, never a key nor credentials) and to every sample's ``judge`` field; judge scores are
comparable only under the same identity.

**Reliability.** Requests run concurrently (``--concurrency``, default 32) with a per-request timeout
(``--timeout``); 429 (waits for ``Retry-After``), 5xx, timeouts, dropped connections and malformed bodies are
retried with exponential backoff (``--max-retries``); 400-type errors and refusals are not. A wrong key or an
unknown judge model stops the run (exit 2) before anything is written. A judge failure or an unparseable
judgment is recorded in the sample's ``judge.error`` and counted, never scored: the judge score is the mean
over judged samples, and the failure rate is reported beside it.

**Cache and resume.** Every successful judgment is committed at once to an SQLite cache (``judge-cache.sqlite``
in the run folder, or ``--cache PATH``) keyed by the judge (requested model, endpoint, rubric and its SHA-256,
image or not, settings), the task, the sample id, the question, the answer and the reference. Re-judging calls
the endpoint only for what the cache lacks, so a judge run that was interrupted or killed resumes where it
stopped; failures are not cached and are tried again; ``--refresh`` asks again for everything. After
judging, the run is re-scored (:func:`dfabench.scoring.rescore_record`) and the per-sample logs and
``run.json`` are committed as one transaction of the run folder (:mod:`dfabench.store`). A log that does not
match its SHA-256 in run.json is refused before any call; a run folder changed by another process while it was
being judged is refused at the commit (the judgments are cached: run the command again).

**Secrets.** The key is read from the environment variable ``--api-key-env`` (default ``OPENAI_API_KEY``);
with ``--base-url`` and no such variable, a placeholder is sent (local servers need none). The key is never
written, printed or stored; error messages are scrubbed of it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import mimetypes
import os
import random
import re
import string
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from dfabench.errors import DfabenchError, InputError
from dfabench.redact import redact_clip, register_secret
from dfabench.retry import retry_after_seconds
from dfabench.store import RunFolder, Transaction, canonical_json, samples_file_name, sha256_text

RUBRIC_DIR = Path(__file__).resolve().parent / "resources" / "rubrics"
DEFAULT_RUBRICS = {"AD": "artifact-description-v2", "FL": "artifact-description-v2", "FC": "conversation-v2"}
FALLBACK_RUBRIC = "artifact-description-v2"
#: ``prompt_format`` of a rubric whose untrusted texts are substituted as nonce-delimited blocks
NONCE_PROMPT_FORMAT = 2
#: the untrusted texts of a judge prompt, each substituted as a delimited block of its own
DATA_BLOCKS = ("question", "reference", "candidate")
DEFAULT_CONCURRENCY = 32
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 4
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
CACHE_FILE = "judge-cache.sqlite"
PLACEHOLDER_KEY = "sk-no-key-required"
MAX_BACKOFF_S = 60.0
#: the judge settings that are part of the cache key (a change re-judges)
JUDGE_CACHE_VERSION = 1


class JudgeAbort(DfabenchError):
    """The judge cannot work at all (wrong key, unknown model, endpoint unreachable): nothing is written."""


class JudgmentError(ValueError):
    """A judge reply that is not a valid judgment; the message says why."""


# ---------------------------------------------------------------------------------------------
# Rubrics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    question: str


@dataclass(frozen=True)
class Rubric:
    """A versioned grading rubric (one YAML file)."""

    name: str
    version: str
    criteria: tuple[Criterion, ...]
    scale_min: float
    scale_max: float
    system: str
    user: str
    rules: tuple[str, ...] = ()
    image_note: str = ""
    max_tokens: int = 300
    description: str = ""
    sha256: str = ""
    path: str = ""
    #: 1: the untrusted texts are substituted as they are (between ``<<<``/``>>>`` in the v1 files: an answer can
    #: close the block); 2 (:data:`NONCE_PROMPT_FORMAT`): each is substituted as a nonce-delimited block
    prompt_format: int = 1

    @property
    def label(self) -> str:
        return f"{self.name}-v{self.version}"

    @property
    def keys(self) -> list[str]:
        return [c.id for c in self.criteria]

    @property
    def delimits_data(self) -> bool:
        """Whether the prompt puts every untrusted text in a block that the text cannot close."""
        return self.prompt_format >= NONCE_PROMPT_FORMAT

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of a valid judgment: one number in the scale per criterion (all required), an optional
        ``rationale`` string, nothing else."""
        number = {"type": "number", "minimum": self.scale_min, "maximum": self.scale_max}
        properties: dict[str, Any] = {key: dict(number) for key in self.keys}
        properties["rationale"] = {"type": "string"}
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"judgment ({self.label})",
                "type": "object", "properties": properties, "required": list(self.keys),
                "additionalProperties": False}

    def render(self, question: str | None, reference: str, candidate: str, with_image: bool) -> str:
        criteria = "\n".join(f"- {c.id} ({c.title}): {' '.join(c.question.split())}" for c in self.criteria)
        rules = "\n".join(f"- {' '.join(rule.split())}" for rule in self.rules)
        texts = {"question": (question or "(not recorded)").strip(), "reference": reference.strip(),
                 "candidate": candidate.strip()}
        fields: dict[str, str] = dict(texts)
        if self.delimits_data:
            nonce = data_nonce(*texts.values())
            fields = {name: data_block(name, text, nonce) for name, text in texts.items()}
            fields["nonce"] = nonce
        return self.user.format(
            **fields, criteria=criteria, rules=rules, min=_fmt_number(self.scale_min),
            max=_fmt_number(self.scale_max),
            image_note=(" ".join(self.image_note.split()) + "\n") if with_image and self.image_note else "",
            keys=", ".join(f'"{k}"' for k in self.keys))

    def messages(self, question: str | None, reference: str, candidate: str,
                 image_url: str | None = None) -> list[dict[str, Any]]:
        text = self.render(question, reference, candidate, with_image=image_url is not None)
        content: Any = text
        if image_url is not None:
            content = [{"type": "image_url", "image_url": {"url": image_url}}, {"type": "text", "text": text}]
        return [{"role": "system", "content": " ".join(self.system.split())}, {"role": "user", "content": content}]

    def parse(self, text: str | None) -> dict[str, Any]:
        """The judgment in a reply: ``{"criteria": {id: number}, "score": 0..1, "rationale": str}``."""
        return parse_judgment(text, self)


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def data_nonce(*texts: str) -> str:
    """A nonce for delimiting ``texts`` in a prompt: 16 hex digits of a hash of the texts (the same prompt for the
    same inputs), drawn again until it occurs in none of them (case-insensitively). A text cannot hold the hash
    of itself, so an answer cannot know the tag that closes its block."""
    seed = canonical_json(list(texts))
    lowered = [text.lower() for text in texts]
    draw = 0
    while True:
        nonce = sha256_text(f"dfabench-judge-nonce\0{draw}\0{seed}")[:16]
        if not any(nonce in text for text in lowered):
            return nonce
        draw += 1


def data_block(name: str, text: str, nonce: str) -> str:
    """``text`` between ``<name-NONCE>`` and ``</name-NONCE>`` lines (see :func:`data_nonce`)."""
    return f"<{name}-{nonce}>\n{text}\n</{name}-{nonce}>"


def list_rubrics() -> list[str]:
    """Names (``name-vN``) of the rubrics shipped with dfabench."""
    return sorted(p.stem for p in RUBRIC_DIR.glob("*.yaml"))


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A shipped rubric by name (``artifact-description-v1``; without ``-vN``: the latest), or a YAML file."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        name = str(name_or_path)
        candidates = [RUBRIC_DIR / f"{name}.yaml"]
        if not candidates[0].exists():
            versions = sorted(RUBRIC_DIR.glob(f"{name}-v*.yaml"), key=lambda p: _version_key(p.stem))
            candidates = versions[-1:]
        if not candidates or not candidates[0].exists():
            raise DfabenchError(f"unknown rubric {name!r} (shipped: {', '.join(list_rubrics())}; or give a YAML file)")
        path = candidates[0]
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(path, f"malformed YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "a rubric must be a mapping")
    for key in ("name", "version", "criteria", "scale", "system", "user"):
        if key not in data:
            raise InputError(path, f"rubric has no {key!r}")
    criteria = []
    for i, item in enumerate(data["criteria"] or []):
        if not isinstance(item, dict) or not item.get("id") or not item.get("question"):
            raise InputError(path, "each criterion needs an 'id' and a 'question'", f"criterion {i + 1}")
        criteria.append(Criterion(str(item["id"]), str(item.get("title") or item["id"]), str(item["question"])))
    if not criteria:
        raise InputError(path, "rubric has no criteria")
    scale = data["scale"] or {}
    try:
        low, high = float(scale["min"]), float(scale["max"])
    except (KeyError, TypeError, ValueError):
        raise InputError(path, "scale must be {min: number, max: number}") from None
    if not high > low:
        raise InputError(path, "scale max must be above min")
    prompt_format = data.get("prompt_format", 1)
    if prompt_format not in (1, NONCE_PROMPT_FORMAT):
        raise InputError(path, f"prompt_format must be 1 or {NONCE_PROMPT_FORMAT}, not {prompt_format!r}")
    user = str(data["user"])
    _check_template(path, user, prompt_format)
    return Rubric(name=str(data["name"]), version=str(data["version"]), criteria=tuple(criteria), scale_min=low,
                  scale_max=high, system=str(data["system"]), user=user,
                  rules=tuple(str(r) for r in data.get("rules") or ()), image_note=str(data.get("image_note") or ""),
                  max_tokens=int(data.get("max_tokens") or 300), description=str(data.get("description") or ""),
                  sha256=sha256_text(text.replace("\r\n", "\n")), path=str(path), prompt_format=prompt_format)


_TEMPLATE_FIELDS = frozenset(DATA_BLOCKS + ("nonce", "criteria", "rules", "min", "max", "image_note", "keys"))


def _check_template(path: Path, user: str, prompt_format: int) -> None:
    """Refuse a ``user`` template with unknown placeholders; in the nonce format, each untrusted text must be
    placed once (it becomes a whole delimited block) and the tags named by ``{nonce}``."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(user) if name is not None]
    except ValueError as exc:
        raise InputError(path, f"malformed 'user' template ({exc})") from None
    unknown = sorted(set(names) - _TEMPLATE_FIELDS)
    if unknown:
        raise InputError(path, f"unknown placeholder(s) in 'user': {', '.join('{' + n + '}' for n in unknown)} "
                               f"(known: {', '.join(sorted(_TEMPLATE_FIELDS))})")
    if prompt_format == NONCE_PROMPT_FORMAT:
        for block in DATA_BLOCKS:
            if names.count(block) != 1:
                raise InputError(path, f"'user' must hold {{{block}}} exactly once (it is replaced by the whole "
                                       f"<{block}-NONCE> block)")
        if "nonce" not in names:
            raise InputError(path, "'user' must tell the judge the tags' {nonce}")


def _version_key(stem: str) -> tuple[int, ...]:
    tail = stem.rsplit("-v", 1)[-1]
    return tuple(int(p) if p.isdigit() else 0 for p in tail.split("."))


def parse_judgment(text: str | None, rubric: Rubric) -> dict[str, Any]:
    """Parse and validate a judge reply. Raises :class:`JudgmentError` with the reason.

    The reply must be exactly one JSON object that validates against :meth:`Rubric.json_schema` (surrounding
    whitespace and a single ```json fence allowed): text around it, a second object (an answer's injected
    ``{"...": 5}`` quoted before the real grading), duplicate keys, unknown keys, a criterion that is missing,
    not a number or out of the scale all make the judgment unparseable, never a score.
    """
    if text is None or not text.strip():
        raise JudgmentError("empty judgment")
    body = _unfenced(text.strip())
    if "{" not in body:
        raise JudgmentError(f"no JSON object in the judgment: {_clip(text)!r}")
    if not body.startswith("{"):
        raise JudgmentError(f"the judgment must be one JSON object and nothing else, but text comes before it: "
                            f"{_clip(text)!r}")
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except JudgmentError:
        raise
    except ValueError as exc:
        why = "more than one JSON object or text after it" if getattr(exc, "msg", "") == "Extra data" else (
            getattr(exc, "msg", None) or str(exc))
        raise JudgmentError(f"not exactly one JSON object in the judgment ({why}): {_clip(text)!r}") from None
    problem = schema_problem(data, rubric.json_schema())
    if problem is not None:
        raise JudgmentError(problem)
    values = {key: float(data[key]) for key in rubric.keys}
    span = rubric.scale_max - rubric.scale_min
    score = sum((v - rubric.scale_min) / span for v in values.values()) / len(values)
    rationale = data.get("rationale")
    return {"criteria": values, "score": score, "rationale": _clip(str(rationale), 500) if rationale else None}


def _unfenced(body: str) -> str:
    """The inside of one Markdown code fence (```json ... ```) around the whole reply; else the reply."""
    if not body.startswith("```"):
        return body
    match = re.fullmatch(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```", body, re.S | re.I)
    if match is None or "```" in match.group(1):
        raise JudgmentError(f"the judgment must be one JSON object in at most one ```json fence: {_clip(body)!r}")
    return match.group(1).strip()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise JudgmentError(f"the judgment gives {', '.join(map(repr, repeated))} more than once")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise JudgmentError(f"{name} is not a valid JSON number")


_JSON_TYPES: dict[str, Any] = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def schema_problem(value: Any, schema: dict[str, Any], where: str = "the judgment") -> str | None:
    """Why ``value`` does not validate against ``schema`` (None when it does). The subset of JSON Schema that
    :meth:`Rubric.json_schema` uses: ``type``, ``properties``, ``required``, ``additionalProperties: false``,
    ``minimum``, ``maximum``."""
    kind = schema.get("type")
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"{where} is not a number: {value!r}"
        if kind == "integer" and not float(value).is_integer():
            return f"{where} is not an integer: {value!r}"
        low, high = schema.get("minimum"), schema.get("maximum")
        if (low is not None and value < low) or (high is not None and value > high):
            return (f"{where} = {_fmt_number(value)} is outside {_fmt_number(low if low is not None else -math.inf)}.."
                    f"{_fmt_number(high if high is not None else math.inf)}")
        return None
    if kind is not None and not isinstance(value, _JSON_TYPES[kind]):
        return f"{where} is not a JSON {kind}: {_clip(repr(value))}"
    if kind == "object":
        properties = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key not in value:
                return f"the judgment has no {key!r}"
        if schema.get("additionalProperties") is False:
            unknown = sorted(set(value) - set(properties))
            if unknown:
                return (f"the judgment has unknown key(s) {', '.join(map(repr, unknown))} "
                        f"(expected {sorted(properties)})")
        for key, sub in properties.items():
            if key in value:
                problem = schema_problem(value[key], sub, repr(key))
                if problem is not None:
                    return problem
    return None


def _clip(text: str, limit: int = 120) -> str:
    """Redacted first (:mod:`dfabench.redact`), cut after: a secret across the cut leaves nothing."""
    return redact_clip(text, limit)


# ---------------------------------------------------------------------------------------------
# Settings and work items
# ---------------------------------------------------------------------------------------------


@dataclass
class JudgeSettings:
    """How to reach the judge and how to ask it."""

    model: str
    base_url: str | None = field(default=None, repr=False)  # may hold credentials: never shown
    api_key_env: str = DEFAULT_API_KEY_ENV
    with_image: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    rubric: str | None = None
    json_mode: bool = True
    max_tokens: int | None = None
    price_input: float | None = None
    price_output: float | None = None
    cache_path: str | None = None
    refresh: bool = False
    backoff_base: float = 0.5

    def endpoint(self) -> str:
        """The base URL without credentials, query or fragment (what may be recorded)."""
        return public_endpoint(self.base_url)

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            register_secret(key)  # whatever prints a message later scrubs it, whatever the variable's name
            return key
        if self.base_url:
            return PLACEHOLDER_KEY
        raise DfabenchError(f"no API key: set the environment variable {self.api_key_env} (or give --base-url "
                            "for a local server that needs none)")


def public_endpoint(base_url: str | None) -> str:
    if not base_url:
        return "https://api.openai.com/v1"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


@dataclass
class WorkItem:
    task: str
    sample_id: str
    key: str
    input_sha256: str
    messages: list[dict[str, Any]]
    rubric: Rubric


@dataclass
class TaskPlan:
    task: str
    rubric: Rubric
    records: list[dict[str, Any]]
    items: list[WorkItem] = field(default_factory=list)
    by_rule: dict[str, dict[str, Any]] = field(default_factory=dict)
    cached: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # sample id -> reason (no call possible)
    n_failed_samples: int = 0
    n_no_reference: int = 0


def _answer_and_references(record: dict[str, Any]) -> tuple[str, list[str]]:
    from dfabench.metrics.text import candidate_text, reference_texts

    return candidate_text(record), reference_texts(record)


def judge_input_sha256(record: dict[str, Any]) -> str:
    """Hash of what a judgment depends on in the sample: question, answer, reference(s)."""
    candidate, references = _answer_and_references(record)
    return sha256_text(canonical_json([record.get("prompt"), candidate, references]))


def _identity(settings: JudgeSettings, rubric: Rubric) -> dict[str, Any]:
    return {"requested_model": settings.model, "endpoint": settings.endpoint(), "rubric": rubric.name,
            "rubric_version": rubric.version, "rubric_sha256": rubric.sha256, "with_image": settings.with_image,
            "json_mode": settings.json_mode, "max_tokens": settings.max_tokens or rubric.max_tokens,
            "cache_version": JUDGE_CACHE_VERSION}


def run_benchmark(record: dict[str, Any]) -> Any:
    """The benchmark a run was made on (:class:`dfabench.data.manifest.Benchmark`), loaded from the folder its
    record names and refused (:class:`DfabenchError`, exit 2) when that folder is not there or its fingerprint is
    not the run's: the judge sends only images that the run's own benchmark manifest names."""
    from dfabench.data.manifest import load_benchmark

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


def _image_url(path: Path) -> str:
    data = path.read_bytes()
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _rubric_for(task: str, info: dict[str, Any], settings: JudgeSettings) -> Rubric:
    if settings.rubric:
        return load_rubric(settings.rubric)
    options = ((info.get("spec") or {}).get("metric_options") or {}).get("judge") or {}
    return load_rubric(options.get("rubric") or DEFAULT_RUBRICS.get(task.upper(), FALLBACK_RUBRIC))


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


def plan_judging(folder: RunFolder, record: dict[str, Any], settings: JudgeSettings, tasks: list[str],
                 cache: Any) -> list[TaskPlan]:
    """What each task needs: cached judgments, rule-scored empty answers, and the calls to make.

    With ``--with-image`` the images come from the run's benchmark manifest, by sample id (:func:`run_benchmark`,
    :func:`benchmark_image`); a sample log's own ``image`` field is never read.
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
        identity = _identity(settings, rubric)
        plan = TaskPlan(task=task, rubric=rubric, records=folder.read_samples(task))
        keys: dict[str, WorkItem] = {}
        for sample in plan.records:
            sample_id = str(sample["id"])
            if sample.get("error"):
                plan.n_failed_samples += 1
                continue
            candidate, references = _answer_and_references(sample)
            if not references:
                plan.n_no_reference += 1
                continue
            digest = judge_input_sha256(sample)
            if not candidate.strip():
                plan.by_rule[sample_id] = {"input_sha256": digest}
                continue
            image_sha = None
            image_url = None
            if benchmark is not None:
                try:
                    image_url = _image_url(benchmark_image(benchmark.root, images.get(sample_id), sample_id))
                except JudgmentError as exc:
                    plan.errors[sample_id] = str(exc)
                    continue
                image_sha = sha256_text(image_url)
            key = sha256_text(canonical_json({"judge": identity, "task": task, "sample": sample_id,
                                              "question": sample.get("prompt"), "candidate": candidate,
                                              "references": references, "image": image_sha}))
            reference = references[0] if len(references) == 1 else "\n---\n".join(references)
            keys[key] = WorkItem(task=task, sample_id=sample_id, key=key, input_sha256=digest, rubric=rubric,
                                 messages=rubric.messages(sample.get("prompt"), reference, candidate, image_url))
        found = cache.get_many(list(keys)) if keys and not settings.refresh else {}
        for key, item in keys.items():
            if key in found:
                plan.cached[item.sample_id] = {**found[key], "input_sha256": item.input_sha256}
            else:
                plan.items.append(item)
        plans.append(plan)
    return plans


# ---------------------------------------------------------------------------------------------
# Calling the endpoint
# ---------------------------------------------------------------------------------------------


@dataclass
class CallResult:
    ok: bool
    judgment: dict[str, Any] | None = None
    error: str | None = None
    kind: str | None = None  # failure kind: refusal, unparseable, http_4xx, timeout, ...
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0


@dataclass
class Tally:
    """HTTP attempts and tokens over a judge run."""

    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: Counter = field(default_factory=Counter)

    def cost(self, settings: JudgeSettings) -> float | None:
        if settings.price_input is None and settings.price_output is None:
            return None
        return (self.prompt_tokens * (settings.price_input or 0.0)
                + self.completion_tokens * (settings.price_output or 0.0)) / 1e6


class _Scrubber:
    """Error text from the endpoint, made safe to record: the key and every credential redacted
    (:func:`dfabench.redact.redact_clip`), one line, at most 300 characters."""

    def __init__(self, secret: str | None):
        self.secrets = (secret,) if secret and secret != PLACEHOLDER_KEY else ()

    def __call__(self, text: str) -> str:
        return redact_clip(text, 300, self.secrets, one_line=True)


async def _call_once(client: Any, item: WorkItem, settings: JudgeSettings) -> Any:
    kwargs: dict[str, Any] = {"model": settings.model, "messages": item.messages, "temperature": 0,
                              "max_tokens": settings.max_tokens or item.rubric.max_tokens}
    if settings.json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    # the client's own timeout covers each read; wait_for bounds the whole request
    return await asyncio.wait_for(client.chat.completions.create(**kwargs), timeout=settings.timeout + 1.0)


async def judge_one(client: Any, item: WorkItem, settings: JudgeSettings, tally: Tally, scrub: _Scrubber,
                    rng: random.Random) -> CallResult:
    """One judgment with retries; raises :class:`JudgeAbort` when the judge cannot work at all."""
    import openai

    result = CallResult(ok=False)
    for attempt in range(settings.max_retries + 1):
        result.attempts = attempt + 1
        tally.attempts += 1
        wait: float | None = None
        try:
            response = await _call_once(client, item, settings)
        except openai.AuthenticationError as exc:
            raise JudgeAbort(f"the judge endpoint refused the key from {settings.api_key_env}: "
                             f"{scrub(_api_message(exc))}") from None
        except openai.NotFoundError as exc:
            raise JudgeAbort(f"judge model {settings.model!r} not found at {settings.endpoint()}: "
                             f"{scrub(_api_message(exc))}") from None
        except openai.RateLimitError as exc:
            result.kind, result.error = "rate_limited", f"rate limited (429): {scrub(_api_message(exc))}"
            wait = retry_after_seconds(getattr(exc.response, "headers", None))
        except openai.InternalServerError as exc:
            result.kind = f"http_{exc.status_code}"
            result.error = f"server error ({exc.status_code}): {scrub(_api_message(exc))}"
        except openai.APIStatusError as exc:  # other 4xx: the request itself is refused, do not retry
            result.kind = f"http_{exc.status_code}"
            if exc.status_code in (408, 409):  # request timeout, conflict: transient
                result.error = f"transient error ({exc.status_code}): {scrub(_api_message(exc))}"
                tally.retries[result.kind] += 1
                if attempt < settings.max_retries:
                    await asyncio.sleep(min(settings.backoff_base * (2 ** attempt) * (0.5 + rng.random()),
                                            MAX_BACKOFF_S))
                    continue
                break
            result.error = f"request refused ({exc.status_code}): {scrub(_api_message(exc))}"
            return result
        except (openai.APITimeoutError, asyncio.TimeoutError):
            result.kind, result.error = "timeout", f"no reply within {settings.timeout:g} s"
        except openai.APIConnectionError as exc:
            result.kind, result.error = "connection", f"connection failed: {scrub(str(exc))}"
        except (ValueError, openai.APIResponseValidationError) as exc:
            result.kind, result.error = "malformed_response", f"malformed response body: {scrub(str(exc))}"
        else:
            return _read_response(response, item, result, tally, scrub)
        tally.retries[result.kind or "?"] += 1
        if attempt == settings.max_retries:
            break
        if wait is None:
            wait = settings.backoff_base * (2 ** attempt) * (0.5 + rng.random())
        await asyncio.sleep(min(wait, MAX_BACKOFF_S))
    result.error = f"{result.error} (after {result.attempts} attempts)"
    return result


def _api_message(exc: Any) -> str:
    return str(getattr(exc, "message", None) or exc)


def _read_response(response: Any, item: WorkItem, result: CallResult, tally: Tally, scrub: _Scrubber) -> CallResult:
    usage = getattr(response, "usage", None)
    if usage is not None:
        result.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        result.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        tally.prompt_tokens += result.prompt_tokens
        tally.completion_tokens += result.completion_tokens
    result.model = getattr(response, "model", None) or None
    choices = getattr(response, "choices", None) or []
    if not choices:
        result.kind, result.error = "empty_reply", "the judge reply has no choices"
        return result
    message = choices[0].message
    refusal = getattr(message, "refusal", None)
    if refusal:
        result.kind, result.error = "refusal", f"judge refused: {scrub(refusal)}"
        return result
    try:
        result.judgment = item.rubric.parse(message.content)
    except JudgmentError as exc:
        truncated = " (the reply was cut at max_tokens)" if choices[0].finish_reason == "length" else ""
        result.kind, result.error = "unparseable", f"unparseable judgment: {scrub(str(exc))}{truncated}"
        return result
    result.ok = True
    return result


async def run_calls(items: list[WorkItem], settings: JudgeSettings, cache: Any, tally: Tally,
                    client: Any = None, progress: Any = None) -> dict[str, CallResult]:
    """Judge ``items`` concurrently; each success is committed to ``cache`` as soon as it arrives.

    Returns ``{item.key: CallResult}``; raises :class:`JudgeAbort` (after cancelling the rest) when the
    judge cannot work at all.
    """
    if not items:
        return {}
    if client is None:
        client = make_client(settings)
    scrub = _Scrubber(os.environ.get(settings.api_key_env))
    semaphore = asyncio.Semaphore(max(1, settings.concurrency))
    rng = random.Random(0)
    results: dict[str, CallResult] = {}
    started = time.monotonic()
    last_report = [started]

    async def one(item: WorkItem) -> None:
        async with semaphore:
            result = await judge_one(client, item, settings, tally, scrub, rng)
        results[item.key] = result
        if result.ok and result.judgment is not None:
            cache.put_many([(item.key, {**result.judgment, "model": result.model or settings.model,
                                        "tokens": {"prompt": result.prompt_tokens,
                                                   "completion": result.completion_tokens}})])
        if progress is not None and time.monotonic() - last_report[0] >= 10:
            last_report[0] = time.monotonic()
            progress.write(f"  judged {len(results)}/{len(items)} ({time.monotonic() - started:.0f} s)\n")

    tasks = [asyncio.ensure_future(one(item)) for item in items]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        close = getattr(client, "close", None)
        if close is not None:
            try:
                await close()
            except Exception:  # noqa: BLE001 - closing a client never hides the run's outcome
                pass
    return results


def make_client(settings: JudgeSettings) -> Any:
    try:
        import openai
    except ImportError:
        raise DfabenchError("the judge needs the openai package: pip install 'dfabench[judge]'") from None
    return openai.AsyncOpenAI(api_key=settings.api_key(), base_url=settings.base_url, max_retries=0,
                              timeout=settings.timeout)


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


@dataclass
class TaskSummary:
    task: str
    rubric: str
    n_samples: int = 0
    n_judged: int = 0
    n_cached: int = 0
    n_called: int = 0
    n_by_rule: int = 0
    n_failed: int = 0
    n_failed_samples: int = 0
    n_no_reference: int = 0
    failures: Counter = field(default_factory=Counter)


@dataclass
class JudgeSummary:
    tasks: dict[str, TaskSummary] = field(default_factory=dict)
    models: Counter = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)
    cost: float | None = None
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def n_failed(self) -> int:
        return sum(t.n_failed for t in self.tasks.values())

    @property
    def n_called(self) -> int:
        return sum(t.n_called for t in self.tasks.values())


class _NoCache:
    """What a dry run reads when there is no cache yet (a dry run creates no file)."""

    path = None

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        return {}

    def __len__(self) -> int:
        return 0

    def close(self) -> None:
        return None


def _cache(folder: RunFolder, settings: JudgeSettings, dry_run: bool = False) -> Any:
    from dfabench.store import ResponseCache

    path = Path(settings.cache_path) if settings.cache_path else folder.path / CACHE_FILE
    if dry_run and not path.exists():
        return _NoCache()
    return ResponseCache(path)


def judge_run(run_dir: str | Path, settings: JudgeSettings, tasks: list[str] | None = None, *,
              dry_run: bool = False, stream: Any = None, client: Any = None, rescore: bool = True) -> JudgeSummary:
    """Judge the text tasks of a run folder, write the results and re-score the run."""
    out = stream or sys.stderr
    folder = RunFolder(run_dir)
    record = folder.read_record()
    snapshot = canonical_json(record)
    chosen = judged_tasks(record, folder, tasks)
    if not chosen:
        raise DfabenchError(f"{folder.path}: no text task to judge (tasks: {', '.join(record.get('tasks', {}))})")
    if settings.concurrency < 1 or settings.max_retries < 0 or settings.timeout <= 0:
        raise DfabenchError("--concurrency must be >= 1, --max-retries >= 0 and --timeout > 0")
    if not dry_run:
        folder.check_integrity(record, "judge it")  # before any call or file
    cache = _cache(folder, settings, dry_run)
    summary = JudgeSummary(dry_run=dry_run)
    started = time.monotonic()
    try:
        plans = plan_judging(folder, record, settings, chosen, cache)
        items = [item for plan in plans for item in plan.items]
        if dry_run:
            _print_dry_run(plans, settings, out)
            for plan in plans:
                summary.tasks[plan.task] = _summarise(plan, {}, dry_run=True)
            return summary
        if items:
            out.write(f"judging {len(items)} samples with {settings.model} at {settings.endpoint()} "
                      f"(concurrency {settings.concurrency})\n")
        try:
            results = asyncio.run(run_calls(items, settings, cache, summary.tally, client=client, progress=out))
        except KeyboardInterrupt:
            out.write(f"interrupted: {len(cache)} judgments are cached in {cache.path}; run the same command "
                      "again to resume\n")
            raise
    finally:
        cache.close()
    if results and all(r.kind == "connection" for r in results.values()):
        # nothing reached the judge: keep the run's earlier judgments rather than record failures
        example = next(iter(results.values())).error
        raise DfabenchError(f"the judge endpoint {settings.endpoint()} could not be reached ({example}); "
                            "nothing was changed")
    identities = {}
    for plan in plans:
        task_summary = _summarise(plan, results, dry_run=False)
        summary.tasks[plan.task] = task_summary
        models = _apply(plan, results, settings)
        summary.models.update(models)
        identities[plan.task] = {"model": _main_model(models, settings), "rubric": plan.rubric.name,
                                 "rubric_version": plan.rubric.version, "rubric_sha256": plan.rubric.sha256,
                                 "with_image": settings.with_image, "n_judged": task_summary.n_judged,
                                 "n_failed": task_summary.n_failed}
    summary.cost = summary.tally.cost(settings)
    summary.seconds = time.monotonic() - started
    with folder.transaction() as tx:  # one commit: the judged logs, their re-scored metrics, run.json
        record = folder.read_record()
        if canonical_json(record) != snapshot:
            raise DfabenchError(f"{folder.path} was changed by another process while it was being judged; nothing "
                                "was written: run the same command again (the judgments are cached)")
        folder.check_integrity(record, "judge it")
        _write_judged(tx, folder, record, plans, identities, chosen, settings, summary, rescore)
    _print_summary(summary, settings, out)
    return summary


def _write_judged(tx: Transaction, folder: RunFolder, record: dict[str, Any], plans: list[TaskPlan],
                  identities: dict[str, Any], chosen: list[str], settings: JudgeSettings, summary: JudgeSummary,
                  rescore: bool) -> None:
    """Stage the judged logs (re-scored unless ``rescore`` is false), their hashes and the judge
    identity in run.json."""
    previous = record.get("judge") or {}
    first = identities[chosen[0]]
    record["judge"] = {
        "model": first["model"], "rubric": first["rubric"], "rubric_version": first["rubric_version"],
        "rubric_sha256": first["rubric_sha256"], "with_image": settings.with_image,
        "endpoint": settings.endpoint(), "tasks": {**(previous.get("tasks") or {}), **identities},
        "last_run": {"calls": summary.tally.attempts, "prompt_tokens": summary.tally.prompt_tokens,
                     "completion_tokens": summary.tally.completion_tokens, "cost_usd": summary.cost,
                     "seconds": round(summary.seconds, 3), "models_reported": dict(summary.models)},
    }
    judged = {plan.task: plan.records for plan in plans}
    if rescore:
        from dfabench.scoring import rescore_record

        rescore_record(folder, record, chosen, write_samples=False, samples=judged)
    for task, records in judged.items():
        log = record.setdefault("samples", {}).get(task) or {}
        record["samples"][task] = {**log, "file": samples_file_name(task), "sha256": tx.write_samples(task, records)}
    tx.write_record(record)


def _main_model(models: Counter, settings: JudgeSettings) -> str:
    return models.most_common(1)[0][0] if models else settings.model


def _summarise(plan: TaskPlan, results: dict[str, CallResult], dry_run: bool) -> TaskSummary:
    summary = TaskSummary(task=plan.task, rubric=plan.rubric.label, n_samples=len(plan.records),
                          n_cached=len(plan.cached), n_by_rule=len(plan.by_rule), n_called=len(plan.items),
                          n_failed_samples=plan.n_failed_samples, n_no_reference=plan.n_no_reference)
    if dry_run:
        return summary
    summary.n_judged = len(plan.cached) + len(plan.by_rule)
    for reason in plan.errors.values():
        summary.n_failed += 1
        summary.failures["no call: " + reason.split(":")[0]] += 1
    for item in plan.items:
        result = results.get(item.key)
        if result is not None and result.ok:
            summary.n_judged += 1
        else:
            summary.n_failed += 1
            summary.failures[(result.kind if result else None) or "not called"] += 1
    return summary


def _apply(plan: TaskPlan, results: dict[str, CallResult], settings: JudgeSettings) -> Counter:
    """Write each sample's ``judge`` field; returns the reported model ids."""
    rubric = plan.rubric
    # the judge identity each result was produced under (``dfabench verify`` checks run.json against it)
    base = {"rubric": rubric.name, "rubric_version": rubric.version, "rubric_sha256": rubric.sha256,
            "with_image": settings.with_image}
    by_id: dict[str, dict[str, Any]] = {}
    models: Counter = Counter()
    for sample_id, value in plan.cached.items():
        models[value.get("model") or settings.model] += 1
        by_id[sample_id] = {"score": value["score"], "criteria": value["criteria"], "rationale": value.get("rationale"),
                            "model": value.get("model") or settings.model, **base, "cached": True,
                            "tokens": value.get("tokens"), "input_sha256": value["input_sha256"], "error": None}
    for item in plan.items:
        result = results.get(item.key) or CallResult(ok=False, error="not called", kind="not called")
        model = result.model or settings.model
        entry: dict[str, Any] = {"model": model, **base, "cached": False, "attempts": result.attempts,
                                 "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                                 "input_sha256": item.input_sha256}
        if result.ok and result.judgment is not None:
            models[model] += 1
            entry.update(score=result.judgment["score"], criteria=result.judgment["criteria"],
                         rationale=result.judgment.get("rationale"), error=None)
        else:
            entry.update(score=None, criteria=None, rationale=None, error=result.error, failure=result.kind)
        by_id[item.sample_id] = entry
    zero = {c.id: rubric.scale_min for c in rubric.criteria}
    for sample_id, value in plan.by_rule.items():
        by_id[sample_id] = {"score": 0.0, "criteria": dict(zero), "rationale": "empty answer: 0 by the rubric's rule",
                            "model": None, **base, "by_rule": True, "cached": False,
                            "input_sha256": value["input_sha256"], "error": None}
    for sample_id, reason in plan.errors.items():
        by_id[sample_id] = {"score": None, "model": None, **base, "error": reason, "failure": "no_call",
                            "input_sha256": None}
    for sample in plan.records:
        entry = by_id.get(str(sample["id"]))
        if entry is not None:
            sample["judge"] = entry
        elif sample.get("error") or not _answer_and_references(sample)[1]:
            sample["judge"] = None
    return models


def _redact_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{**part, "image_url": {"url": f"<data URL, {len(part['image_url']['url'])} characters>"}}
                       if part.get("type") == "image_url" else part for part in content]
        shown.append({**message, "content": content})
    return shown


def _print_dry_run(plans: list[TaskPlan], settings: JudgeSettings, out: Any) -> None:
    has_key = bool(os.environ.get(settings.api_key_env))
    key_note = f"key from ${settings.api_key_env}: {'set' if has_key else 'not set'}"
    out.write(f"dry run: judge {settings.model} at {settings.endpoint()} ({key_note}), "
              f"image {'sent' if settings.with_image else 'not sent'}, concurrency {settings.concurrency}\n")
    total = 0
    for plan in plans:
        total += len(plan.items)
        out.write(f"{plan.task}: {len(plan.records)} samples, rubric {plan.rubric.label}: {len(plan.items)} to judge, "
                  f"{len(plan.cached)} cached, {len(plan.by_rule)} empty answers (0 by rule), "
                  f"{plan.n_failed_samples} failed samples and {plan.n_no_reference} without reference (not judged)"
                  + (f", {len(plan.errors)} that cannot be sent ({next(iter(plan.errors.values()))})"
                     if plan.errors else "") + "\n")
    out.write(f"calls that would be made: {total} (plus retries)\n")
    first = next((plan.items[0] for plan in plans if plan.items), None)
    if first is not None:
        request = {"model": settings.model, "messages": _redact_images(first.messages), "temperature": 0,
                   "max_tokens": settings.max_tokens or first.rubric.max_tokens}
        if settings.json_mode:
            request["response_format"] = {"type": "json_object"}
        shown = json.dumps(request, indent=2, ensure_ascii=False)
        out.write(f"first request ({first.task} {first.sample_id}):\n{shown}\n")


def _print_summary(summary: JudgeSummary, settings: JudgeSettings, out: Any) -> None:
    for task in summary.tasks.values():
        failures = ", ".join(f"{n} {kind}" for kind, n in task.failures.most_common())
        out.write(f"{task.task}: {task.n_judged} judged ({task.n_cached} cached, {task.n_by_rule} empty answers "
                  f"scored 0 by rule), {task.n_failed} judge failures{f' ({failures})' if failures else ''}, "
                  f"{task.n_failed_samples} failed samples not judged; rubric {task.rubric}\n")
    tally = summary.tally
    cost = f", cost ${summary.cost:.4f}" if summary.cost is not None else ""
    models = ", ".join(summary.models) or settings.model
    out.write(f"judge {models}: {tally.attempts} requests, {tally.prompt_tokens} prompt + {tally.completion_tokens} "
              f"completion tokens{cost}, {summary.seconds:.1f} s\n")
    if summary.n_failed:
        out.write(f"{summary.n_failed} judgments failed (recorded per sample, not scored); run the same command "
                  "again to retry them\n")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dfabench judge``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to judge")
    parser.add_argument("--judge-model", required=True, metavar="ID", help="the judge model id at the endpoint")
    parser.add_argument("--base-url", metavar="URL",
                        help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1 for vLLM or llama.cpp); "
                             "default: OpenAI")
    parser.add_argument("--api-key-env", default=DEFAULT_API_KEY_ENV, metavar="VAR",
                        help=f"environment variable holding the key (default {DEFAULT_API_KEY_ENV}); never stored")
    parser.add_argument("--with-image", action="store_true", help="send the benchmark image too (judge must see)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"requests in flight (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"per-request timeout in seconds (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                        help=f"retries on 429/5xx/timeouts/malformed replies (default {DEFAULT_MAX_RETRIES})")
    parser.add_argument("--tasks", metavar="AD,FC,FL", help="tasks to judge (default: the run's text tasks)")
    parser.add_argument("--rubric", metavar="NAME|PATH",
                        help=f"rubric for every judged task (shipped: {', '.join(list_rubrics())})")
    parser.add_argument("--cache", metavar="PATH", help=f"judge cache (default RUN_DIR/{CACHE_FILE})")
    parser.add_argument("--refresh", action="store_true",
                        help="ask the judge again for every sample, even when the cache has the judgment")
    parser.add_argument("--no-json-mode", action="store_true",
                        help="do not send response_format=json_object (for servers without it)")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="judge reply limit (default: the rubric's)")
    parser.add_argument("--price-in", type=float, metavar="USD", help="price per million prompt tokens (for the cost)")
    parser.add_argument("--price-out", type=float, metavar="USD",
                        help="price per million completion tokens (for the cost)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent and the call count; no call")


def settings_from_args(args: argparse.Namespace) -> JudgeSettings:
    return JudgeSettings(model=args.judge_model, base_url=args.base_url, api_key_env=args.api_key_env,
                         with_image=args.with_image, concurrency=args.concurrency, timeout=args.timeout,
                         max_retries=args.max_retries, rubric=args.rubric, json_mode=not args.no_json_mode,
                         max_tokens=args.max_tokens, price_input=args.price_in, price_output=args.price_out,
                         cache_path=args.cache, refresh=args.refresh)


def judge_command(args: argparse.Namespace) -> int:
    """``dfabench judge``: 0 when every answered sample is judged, 1 when some judgments failed."""
    settings = settings_from_args(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if not args.dry_run:
        settings.api_key()  # fail early, before any work, when there is no key
    summary = judge_run(args.run_dir, settings, tasks, dry_run=args.dry_run,
                        stream=sys.stdout if args.dry_run else sys.stderr)
    if args.dry_run:
        return 0
    return 1 if summary.n_failed else 0
