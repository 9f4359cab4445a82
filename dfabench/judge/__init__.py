"""The judge stage: ``dfabench judge RUN_DIR --judge NAME --judge-arg k=v`` (or the shorthand ``--judge-model ID
[--base-url URL]`` for the ``openai`` plugin) grades the text answers of a run with an LLM judge.

**The judge is a model in a role.** Any registered generate-capable model judges (:mod:`dfabench.roles`): a hosted
API or a vLLM / SGLang / llama.cpp server through the ``openai`` plugin, a local transformers model (``hf``), an
lmms-eval model. It is created exactly like a model under test, with the same plugins, retries, concurrency and
identity (:class:`dfabench.records.ModelIdentity`); the judge stage has no HTTP client of its own.

**What is sent.** For each answered sample of the judged tasks (by default the run's tasks whose spec lists
the ``judge`` metric: AD and FC; ``--tasks AD,FC,FL`` to choose), one request: the rubric's system message, then a
user message with the question the model was asked, the reference text, the model's answer and the rubric's
criteria; with ``--with-image`` the benchmark image too: the image that the benchmark's manifest names for the
sample id (inside the benchmark folder, whose fingerprint must be the run's), never a path taken from the sample
log. The question, the reference and the answer are untrusted data: each sits in a block delimited by tags that
carry a nonce which occurs in none of them (``<candidate-NONCE>`` ... ``</candidate-NONCE>``), so an answer cannot
close its block, and the rubric tells the judge that what is inside is data to grade, never instructions.

**Structured output.** The judgment is one JSON object (a number per criterion and a short rationale;
:meth:`Rubric.json_schema`). ``--judge-output auto`` (the default) asks for the strongest form the judge model
enforces: the rubric's JSON Schema (``response_format`` json_schema: OpenAI, vLLM, SGLang, llama.cpp), else JSON
mode, else free text prompted for the object; an endpoint that refuses json_schema is asked again in JSON mode, and
then without. Whatever the mode, the reply is parsed strictly (a reply that is not exactly one such object, a
single ```json fence allowed, is an unparseable judgment). The mode each judgment was produced under is part of its
judge identity. Failed samples (the model failed: ``error`` set) are not judged; an empty answer scores 0 by the
rubric's rule, without a call.

**Rubrics** are versioned YAML files in ``dfabench/resources/rubrics/`` (a task spec's ``rubric`` field names the
default: ``artifact-description-v2`` for AD and FL, ``conversation-v2`` for FC; the v1 files, whose ``<<<``/``>>>``
blocks an answer could close, stay loadable for the records of old runs but are refused for judging;
``metric_options: {judge: {rubric: ...}}`` in a spec or ``--rubric NAME|PATH`` overrides). A sample's judge score
is the mean of its criteria divided by the scale maximum (0..1).

**Judge identity** = the model id *as the judge reports it* (``Response.model``: a hosted API's dated snapshot),
the rubric name, version and SHA-256, whether the image was sent, and the output mode; recorded with the judge
model's fingerprint in ``run.json["judge"]`` (never a key nor credentials) and in every sample's ``judge`` field;
judge scores are comparable only under the same identity. The recorded ``endpoint`` comes from the judge model's
own identity, not from its URLs: one server is named; an ``openai`` pool of servers names none (adding a server
keeps the cached judgments).

**Ensembles** (:mod:`.ensemble`): ``--judge`` given more than once (each ``--judge-arg`` belongs to the ``--judge``
before it) makes several judges one identity: the mean per criterion; a sample any member fails is a judge failure
of the ensemble (never a partial mean), each member's coverage reported; its identity is the members' sorted
identities and the rule; each member's judgments are cached (and archived) as a single judge's; run.json records the
members' identities, calibration fingerprints and pairwise agreement.

**Failures.** The judge model retries what its plugin retries (the ``openai`` plugin: 429 with ``Retry-After``,
5xx, timeouts, dropped connections, malformed bodies). A judge failure or an unparseable judgment is recorded in
the sample's ``judge.error`` with its kind and counted, never scored: the judge score is the mean over judged
samples, and the failure rate is reported beside it. When every call fails for the key or the model (401/403/404)
or none reaches the judge, nothing is written.

**Cache and resume.** Every answered batch of judgments is committed at once (while the next batches are being
answered: :func:`.call.run_calls` pipelines them) to an SQLite cache
(``judge-cache.sqlite`` in the run folder, or ``--cache PATH``) keyed by the judge (its model fingerprint, the
output mode, rubric and its SHA-256, image or not, reply limit), the task, the sample id, the question, the answer
and the reference. Re-judging asks only for what the cache lacks, so a judge run that was interrupted or killed
resumes where it stopped; failures are not cached and are tried again; ``--refresh`` asks again for everything.
``--sample N`` judges a fixed, seeded subset of each task (recorded; such scores are never ranked with full
judgments). After judging, the run is re-scored (:func:`dfabench.scoring.rescore_record`) and the per-sample logs and
``run.json`` are committed as one transaction of the run folder (:mod:`dfabench.store`). A log that does not
match its SHA-256 in run.json is refused before any call; a run folder changed by another process while it was
being judged is refused at the commit (the judgments are cached: run the command again).

**Secrets.** The key is read from the environment variable ``--api-key-env`` (default ``OPENAI_API_KEY``);
with ``--base-url`` and no such variable, a placeholder is sent (local servers need none). The key is never
written, printed or stored; error messages are scrubbed of it.

**Layout.** :mod:`.rubric` (rubrics, the prompt, the judgment's JSON Schema and parser), :mod:`.settings`,
:mod:`.plan` (tasks, rubric, cache, work items, output mode; the judge identity of :mod:`dfabench.records`),
:mod:`.call` (requests to the judge model — a registered model in the ``judge`` role, :mod:`dfabench.roles` — and
strict parsing of its answers), :mod:`.entries` (per-sample judge fields), :mod:`.ensemble` (several judges as
one), :mod:`.stage` (:func:`judge_run`), :mod:`.report` (counts and printing). The command line is
:mod:`dfabench.cli.judge`. What other modules and plugins import is re-exported here.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the names this package exports -> the module that defines them, imported on first use: ``dfabench --help``
#: builds ``dfabench judge``'s options from :mod:`.settings` and :mod:`.rubric` without loading the client
_EXPORTS = {
    "CACHE_FILE": "dfabench.judge.settings",
    "CallResult": "dfabench.judge.call",
    "Criterion": "dfabench.judge.rubric",
    "DATA_BLOCKS": "dfabench.judge.rubric",
    "DEFAULT_API_KEY_ENV": "dfabench.judge.settings",
    "DEFAULT_CONCURRENCY": "dfabench.judge.settings",
    "DEFAULT_MAX_RETRIES": "dfabench.judge.settings",
    "DEFAULT_TIMEOUT": "dfabench.judge.settings",
    "FALLBACK_RUBRIC": "dfabench.judge.rubric",
    "JUDGE_CACHE_VERSION": "dfabench.judge.plan",
    "JudgeAbort": "dfabench.judge.settings",
    "JudgeSettings": "dfabench.judge.settings",
    "JudgeSummary": "dfabench.judge.report",
    "JudgmentError": "dfabench.judge.rubric",
    "NONCE_PROMPT_FORMAT": "dfabench.judge.rubric",
    "PLACEHOLDER_KEY": "dfabench.judge.settings",
    "RUBRIC_DIR": "dfabench.judge.rubric",
    "Rubric": "dfabench.judge.rubric",
    "Tally": "dfabench.judge.call",
    "TaskPlan": "dfabench.judge.plan",
    "TaskSummary": "dfabench.judge.report",
    "WorkItem": "dfabench.judge.plan",
    "_clip": "dfabench.judge.rubric",
    "apply_ensemble": "dfabench.judge.ensemble",
    "apply_judgments": "dfabench.judge.stage",
    "benchmark_image": "dfabench.judge.plan",
    "cache_key": "dfabench.judge.plan",
    "data_block": "dfabench.judge.rubric",
    "data_nonce": "dfabench.judge.rubric",
    "ensemble_request": "dfabench.judge.ensemble",
    "judge_endpoint": "dfabench.judge.plan",
    "judge_identity": "dfabench.judge.plan",
    "judge_input_sha256": "dfabench.metrics.judge_input",
    "judge_request": "dfabench.judge.call",
    "output_mode": "dfabench.judge.plan",
    "read_response": "dfabench.judge.call",
    "sampled_ids": "dfabench.judge.plan",
    "judge_run": "dfabench.judge.stage",
    "judged_tasks": "dfabench.judge.plan",
    "list_rubrics": "dfabench.judge.rubric",
    "load_rubric": "dfabench.judge.rubric",
    "parse_judgment": "dfabench.judge.rubric",
    "plan_judging": "dfabench.judge.plan",
    "public_endpoint": "dfabench.judge.settings",
    "retry_after_seconds": "dfabench.retry",
    "run_benchmark": "dfabench.judge.plan",
    "run_calls": "dfabench.judge.call",
    "schema_problem": "dfabench.judge.rubric",
}

__all__ = [
    "CACHE_FILE",
    "CallResult",
    "Criterion",
    "DATA_BLOCKS",
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "FALLBACK_RUBRIC",
    "JUDGE_CACHE_VERSION",
    "JudgeAbort",
    "JudgeSettings",
    "JudgeSummary",
    "JudgmentError",
    "NONCE_PROMPT_FORMAT",
    "PLACEHOLDER_KEY",
    "RUBRIC_DIR",
    "Rubric",
    "Tally",
    "TaskPlan",
    "TaskSummary",
    "WorkItem",
    "_clip",
    "apply_ensemble",
    "apply_judgments",
    "benchmark_image",
    "cache_key",
    "data_block",
    "data_nonce",
    "ensemble_request",
    "judge_endpoint",
    "judge_identity",
    "judge_input_sha256",
    "judge_request",
    "judge_run",
    "judged_tasks",
    "list_rubrics",
    "load_rubric",
    "output_mode",
    "parse_judgment",
    "plan_judging",
    "public_endpoint",
    "read_response",
    "retry_after_seconds",
    "run_benchmark",
    "run_calls",
    "sampled_ids",
    "schema_problem",
]


def __getattr__(name: str) -> Any:
    """Import an exported name (:data:`_EXPORTS`) on first use."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
