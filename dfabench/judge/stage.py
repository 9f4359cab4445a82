"""The judge stage as one straight line (:func:`judge_run`): read the run record and its logs (checked against
their hashes) -> plan -> call the judge -> apply the judgments to the samples and run.json's judge identity, in
memory -> re-score in memory -> one commit of the run folder (refused when another process changed the folder
meanwhile: the judgments are cached, so running the command again resumes)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.judge.client import CallResult, run_calls
from dfabench.judge.plan import TaskPlan, judged_tasks, plan_judging
from dfabench.judge.report import JudgeSummary, print_dry_run, print_summary, summarise
from dfabench.judge.settings import CACHE_FILE, JudgeSettings
from dfabench.metrics.judge_input import answer_and_references
from dfabench.scoring import rescore_record
from dfabench.store import ResponseCache, RunFolder, canonical_json, samples_file_name


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
    path = Path(settings.cache_path) if settings.cache_path else folder.path / CACHE_FILE
    if dry_run and not path.exists():
        return _NoCache()
    return ResponseCache(path)


def judge_run(run_dir: str | Path, settings: JudgeSettings, tasks: list[str] | None = None, *,
              dry_run: bool = False, stream: Any = None, client: Any = None, rescore: bool = True) -> JudgeSummary:
    """Judge the text tasks of a run folder, re-score them (unless ``rescore`` is false) and commit the judged
    logs and run.json as one transaction."""
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
        if dry_run:
            print_dry_run(plans, settings, out)
            for plan in plans:
                summary.tasks[plan.task] = summarise(plan, {}, dry_run=True)
            return summary
        results = _call(plans, settings, cache, summary, client, out)
    finally:
        cache.close()
    if results and all(r.kind == "connection" for r in results.values()):
        # nothing reached the judge: keep the run's earlier judgments rather than record failures
        example = next(iter(results.values())).error
        raise DfabenchError(f"the judge endpoint {settings.endpoint()} could not be reached ({example}); "
                            "nothing was changed")
    judged = apply_judgments(record, plans, results, settings, summary, started)
    if rescore:
        rescore_record(folder, record, chosen, write_samples=False, samples=judged)
    _commit(folder, snapshot, record, judged)
    print_summary(summary, settings, out)
    return summary


def _call(plans: list[TaskPlan], settings: JudgeSettings, cache: Any, summary: JudgeSummary, client: Any,
          out: Any) -> dict[str, CallResult]:
    """Make the calls the plans need (each success is cached as it arrives)."""
    items = [item for plan in plans for item in plan.items]
    if items:
        out.write(f"judging {len(items)} samples with {settings.model} at {settings.endpoint()} "
                  f"(concurrency {settings.concurrency})\n")
    try:
        return asyncio.run(run_calls(items, settings, cache, summary.tally, client=client, progress=out))
    except KeyboardInterrupt:
        out.write(f"interrupted: {len(cache)} judgments are cached in {cache.path}; run the same command "
                  "again to resume\n")
        raise


def apply_judgments(record: dict[str, Any], plans: list[TaskPlan], results: dict[str, CallResult],
                    settings: JudgeSettings, summary: JudgeSummary, started: float) -> dict[str, list[dict[str, Any]]]:
    """Write the judgments into the plans' sample records and the judge identity into ``record["judge"]`` (in
    memory; counted in ``summary``). Returns the judged sample records by task."""
    identities = {}
    for plan in plans:
        task_summary = summarise(plan, results, dry_run=False)
        summary.tasks[plan.task] = task_summary
        models = _apply(plan, results, settings)
        summary.models.update(models)
        identity = plan.identity.reported(_main_model(models, settings))
        identities[plan.task] = {**identity.to_dict(), "n_judged": task_summary.n_judged,
                                 "n_failed": task_summary.n_failed}
    summary.cost = summary.tally.cost(settings)
    summary.seconds = time.monotonic() - started
    previous = record.get("judge") or {}
    first = plans[0].identity.reported(identities[plans[0].task]["model"])
    record["judge"] = {
        **first.to_dict(), "endpoint": first.endpoint, "tasks": {**(previous.get("tasks") or {}), **identities},
        "last_run": {"calls": summary.tally.attempts, "prompt_tokens": summary.tally.prompt_tokens,
                     "completion_tokens": summary.tally.completion_tokens, "cost_usd": summary.cost,
                     "seconds": round(summary.seconds, 3), "models_reported": dict(summary.models)},
    }
    return {plan.task: plan.records for plan in plans}


def _commit(folder: RunFolder, snapshot: str, record: dict[str, Any], judged: dict[str, list[dict[str, Any]]]) -> None:
    """The one write: the judged logs, their hashes and run.json, as one transaction of the run folder; refused when
    the folder is no longer what was read (``snapshot``: run.json's canonical JSON; the logs: their hashes)."""
    with folder.transaction() as tx:
        current = folder.read_record()
        if canonical_json(current) != snapshot:
            raise DfabenchError(f"{folder.path} was changed by another process while it was being judged; nothing "
                                "was written: run the same command again (the judgments are cached)")
        folder.check_integrity(current, "judge it")
        for task, records in judged.items():
            log = record.setdefault("samples", {}).get(task) or {}
            record["samples"][task] = {**log, "file": samples_file_name(task),
                                       "sha256": tx.write_samples(task, records)}
        tx.write_record(record)


def _main_model(models: Counter, settings: JudgeSettings) -> str:
    return models.most_common(1)[0][0] if models else settings.model


def _apply(plan: TaskPlan, results: dict[str, CallResult], settings: JudgeSettings) -> Counter:
    """Write each sample's ``judge`` field; returns the reported model ids."""
    rubric = plan.rubric

    def grader(model: str | None) -> dict[str, Any]:
        # the judge identity each result was produced under (``dfabench verify`` checks run.json against it)
        return plan.identity.reported(model).to_dict()

    by_id: dict[str, dict[str, Any]] = {}
    models: Counter = Counter()
    for sample_id, value in plan.cached.items():
        models[value.get("model") or settings.model] += 1
        by_id[sample_id] = {"score": value["score"], "criteria": value["criteria"], "rationale": value.get("rationale"),
                            **grader(value.get("model") or settings.model), "cached": True,
                            "tokens": value.get("tokens"), "input_sha256": value["input_sha256"], "error": None}
    for item in plan.items:
        result = results.get(item.key) or CallResult(ok=False, error="not called", kind="not called")
        model = result.model or settings.model
        entry: dict[str, Any] = {**grader(model), "cached": False, "attempts": result.attempts,
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
                            **grader(None), "by_rule": True, "cached": False,
                            "input_sha256": value["input_sha256"], "error": None}
    for sample_id, reason in plan.errors.items():
        by_id[sample_id] = {"score": None, **grader(None), "error": reason, "failure": "no_call",
                            "input_sha256": None}
    for sample in plan.records:
        entry = by_id.get(str(sample["id"]))
        if entry is not None:
            sample["judge"] = entry
        elif sample.get("error") or not answer_and_references(sample)[1]:
            sample["judge"] = None
    return models
