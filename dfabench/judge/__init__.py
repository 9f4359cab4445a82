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

**Layout.** :mod:`.rubric` (rubrics, the prompt, the judgment's JSON Schema and parser), :mod:`.settings`,
:mod:`.plan` (tasks, rubric, cache, work items; the judge identity of :mod:`dfabench.records`), :mod:`.client`
(the HTTP client and its retries), :mod:`.stage` (:func:`judge_run`), :mod:`.report` (counts and printing). The
command line is :mod:`dfabench.cli.judge`. What other modules and plugins import is re-exported here.
"""

from __future__ import annotations

import importlib
from typing import Any

#: the names this package exports -> the module that defines them, imported on first use: ``dfabench --help``
#: builds ``dfabench judge``'s options from :mod:`.settings` and :mod:`.rubric` without loading the client
_EXPORTS = {
    "CACHE_FILE": "dfabench.judge.settings",
    "CallResult": "dfabench.judge.client",
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
    "MAX_BACKOFF_S": "dfabench.judge.client",
    "NONCE_PROMPT_FORMAT": "dfabench.judge.rubric",
    "PLACEHOLDER_KEY": "dfabench.judge.settings",
    "RUBRIC_DIR": "dfabench.judge.rubric",
    "Rubric": "dfabench.judge.rubric",
    "Tally": "dfabench.judge.client",
    "TaskPlan": "dfabench.judge.plan",
    "TaskSummary": "dfabench.judge.report",
    "WorkItem": "dfabench.judge.plan",
    "_Scrubber": "dfabench.judge.client",
    "_clip": "dfabench.judge.rubric",
    "apply_judgments": "dfabench.judge.stage",
    "benchmark_image": "dfabench.judge.plan",
    "cache_key": "dfabench.judge.plan",
    "data_block": "dfabench.judge.rubric",
    "data_nonce": "dfabench.judge.rubric",
    "judge_identity": "dfabench.judge.plan",
    "judge_input_sha256": "dfabench.metrics.judge_input",
    "judge_one": "dfabench.judge.client",
    "judge_run": "dfabench.judge.stage",
    "judged_tasks": "dfabench.judge.plan",
    "list_rubrics": "dfabench.judge.rubric",
    "load_rubric": "dfabench.judge.rubric",
    "make_client": "dfabench.judge.client",
    "parse_judgment": "dfabench.judge.rubric",
    "plan_judging": "dfabench.judge.plan",
    "public_endpoint": "dfabench.judge.settings",
    "retry_after_seconds": "dfabench.retry",
    "run_benchmark": "dfabench.judge.plan",
    "run_calls": "dfabench.judge.client",
    "schema_problem": "dfabench.judge.rubric",
}

__all__ = [
    "CACHE_FILE", "DATA_BLOCKS", "DEFAULT_API_KEY_ENV", "DEFAULT_CONCURRENCY", "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT", "FALLBACK_RUBRIC", "JUDGE_CACHE_VERSION", "MAX_BACKOFF_S",
    "NONCE_PROMPT_FORMAT", "PLACEHOLDER_KEY", "RUBRIC_DIR", "CallResult", "Criterion", "JudgeAbort", "JudgeSettings",
    "JudgeSummary", "JudgmentError", "Rubric", "Tally", "TaskPlan", "TaskSummary", "WorkItem", "_Scrubber", "_clip",
    "apply_judgments", "benchmark_image", "cache_key", "data_block", "data_nonce", "judge_identity",
    "judge_input_sha256", "judge_one", "judge_run", "judged_tasks", "list_rubrics", "load_rubric", "make_client",
    "parse_judgment", "plan_judging", "public_endpoint", "retry_after_seconds", "run_benchmark", "run_calls",
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
