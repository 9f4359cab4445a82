"""The judge stage as one straight line (:func:`judge_run`): read the run record and its logs (checked against
their hashes) -> create the judge model in its role -> plan -> ask the judge -> apply the judgments to the samples
and run.json's judge identity, in memory -> re-score in memory -> one commit of the run folder (refused when
another process changed the folder meanwhile: the judgments are cached, so running the command again resumes)."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.judge.agree import archive_name, merged_archive
from dfabench.judge.calibration import Calibration, calibration_items, calibration_report, load_calibration
from dfabench.judge.call import CallResult, run_calls
from dfabench.judge.ensemble import Member, apply_ensemble
from dfabench.judge.entries import judge_entries, write_entries
from dfabench.judge.plan import TaskPlan, WorkItem, judged_tasks, output_mode, plan_judging
from dfabench.judge.report import JudgeSummary, print_dry_run, print_summary, summarise
from dfabench.judge.settings import CACHE_FILE, JudgeSettings
from dfabench.records import run_judge_identity
from dfabench.roles import RoleModel, create_role_model
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


#: failure kinds that mean the judge cannot work at all (a wrong key, an unknown model): when every call fails
#: with one of them, nothing is written
_FATAL_KINDS = {"http_401": "the endpoint refused the key", "http_403": "the endpoint refused the key",
                "http_404": "the endpoint does not serve the judge model"}


def judge_run(run_dir: str | Path, settings: JudgeSettings, tasks: list[str] | None = None, *,
              dry_run: bool = False, stream: Any = None, judge: RoleModel | None = None,
              rescore: bool = True) -> JudgeSummary:
    """Judge the text tasks of a run folder, re-score them (unless ``rescore`` is false) and commit the judged
    logs and run.json as one transaction. ``judge``: the judge model in its role (default: created from
    ``settings``, and closed at the end); an ensemble (``settings.members``) creates its members itself."""
    out = stream or sys.stderr
    folder = RunFolder(run_dir)
    record = folder.read_record()
    snapshot = canonical_json(record)
    chosen = judged_tasks(record, folder, tasks)
    if not chosen:
        raise DfabenchError(f"{folder.path}: no text task to judge (tasks: {', '.join(record.get('tasks', {}))})")
    if settings.concurrency < 1 or settings.max_retries < 0 or settings.timeout <= 0:
        raise DfabenchError("--concurrency must be >= 1, --max-retries >= 0 and --timeout > 0")
    member_settings = settings.member_settings()
    if judge is not None and len(member_settings) > 1:
        raise DfabenchError("an ensemble creates its member judges itself (judge= is for one judge)")
    if not dry_run:
        folder.check_integrity(record, "judge it")  # before any call or file
    members = _create_members(member_settings, judge)
    cache = _cache(folder, settings, dry_run)
    summary = JudgeSummary(dry_run=dry_run)
    started = time.monotonic()
    try:
        for member in members:
            member.plans = plan_judging(folder, record, member.settings, chosen, cache, member.judge, member.output)
            member.calibrations = _plan_calibration(member.plans, member.settings, cache)
        if dry_run:
            for number, member in enumerate(members, 1):
                if len(members) > 1:
                    out.write(f"ensemble member {number} of {len(members)}:\n")
                print_dry_run(member.plans, member.settings, out, member.judge, member.output)
                n_calibration = sum(len(todo) for _, todo, _ in member.calibrations)
                if n_calibration:
                    out.write(f"calibration: {n_calibration} more calls (the rubrics' calibration sets)\n")
            for plan in members[0].plans:
                summary.tasks[plan.task] = summarise(plan, {}, dry_run=True)
            return summary
        for number, member in enumerate(members, 1):
            if len(members) > 1:
                out.write(f"ensemble member {number} of {len(members)}: {member.judge.label}\n")
            if settings.max_cost is not None and len(members) > 1:  # one budget for the whole ensemble
                member.settings.max_cost = max(0.0, settings.max_cost - summary.tally.spent)
            extra = [item for _, todo, _ in member.calibrations for item in todo]
            member.results = _call(member.plans, member.settings, cache, summary, member.judge, member.output, out,
                                   extra)
    finally:
        cache.close()
        for member in members:
            if member.own:
                member.judge.close()
    for member in members:
        _refuse_if_nothing_judged(member.results, member.settings, member.judge)
    if len(members) == 1:
        member = members[0]
        judged = apply_judgments(record, member.plans, member.results, settings, summary, started, member.judge)
        _record_calibration(record, member.calibrations, member.results, summary)
        archives: dict[str, dict[str, list]] = {}
    else:
        judged, archives = apply_ensemble(record, members, settings, summary, started)
    if rescore:
        rescore_record(folder, record, chosen, write_samples=False, samples=judged)
    _commit(folder, snapshot, record, judged, archives)
    print_summary(summary, settings, out)
    return summary


def _create_members(member_settings: list[JudgeSettings], judge: RoleModel | None) -> list[Member]:
    """The judge (or the ensemble's member judges), created in the ``judge`` role, with their output modes."""
    members: list[Member] = []
    try:
        for member in member_settings:
            own = judge is None
            model = judge if judge is not None else create_role_model("judge", *member.role())
            members.append(Member(settings=member, judge=model, output=output_mode(member, model), own=own))
    except BaseException:
        for member in members:
            if member.own:
                member.judge.close()
        raise
    return members


def _refuse_if_nothing_judged(results: dict[str, CallResult], settings: JudgeSettings, judge: RoleModel) -> None:
    """Nothing is written when no call reached the judge (connection failures: the run keeps its earlier
    judgments) or every call was refused for the key or the model."""
    if not results:
        return
    kinds = {r.kind for r in results.values()}
    example = next(iter(results.values())).error
    if kinds == {"connection"}:
        raise DfabenchError(f"the judge {judge.label} could not be reached ({example}); nothing was changed")
    if len(kinds) == 1 and next(iter(kinds)) in _FATAL_KINDS:
        raise DfabenchError(f"judge {judge.label}: {_FATAL_KINDS[next(iter(kinds))]} ({example}); nothing was "
                            "changed")


def _plan_calibration(plans: list[TaskPlan], settings: JudgeSettings, cache: Any
                      ) -> list[tuple[Calibration, list[WorkItem], dict[str, float]]]:
    """For each rubric of the run that ships a calibration set: (the set, the items to ask, the cached scores)."""
    if not settings.calibrate:
        return []
    out = []
    seen: set[str] = set()
    for plan in plans:
        if plan.rubric.label in seen:
            continue
        seen.add(plan.rubric.label)
        calibration = load_calibration(plan.rubric)
        if calibration is None:
            continue
        items = calibration_items(calibration, plan.rubric, plan.identity)
        found = cache.get_many([i.key for i in items]) if not settings.refresh else {}
        cached = {i.sample_id: found[i.key]["score"] for i in items if i.key in found}
        out.append((calibration, [i for i in items if i.key not in found], cached))
    return out


def _record_calibration(record: dict[str, Any], calibrations: list, results: dict[str, CallResult],
                        summary: JudgeSummary) -> None:
    """The calibration reports, into run.json's judge record and the summary."""
    reports = {}
    for calibration, asked, cached in calibrations:
        scores: dict[str, float | None] = {item.id: None for item in calibration.items}
        scores.update(cached)
        for item in asked:
            result = results.get(item.key)
            scores[item.sample_id] = result.judgment["score"] if result is not None and result.ok else None
        reports[calibration.rubric] = calibration_report(calibration, scores)
    if reports:
        record["judge"]["calibration"] = reports
        summary.calibration = reports


def _call(plans: list[TaskPlan], settings: JudgeSettings, cache: Any, summary: JudgeSummary, judge: RoleModel,
          output: str, out: Any, extra: list[WorkItem] = ()) -> dict[str, CallResult]:
    """Make the calls the plans need, and the ``extra`` ones (calibration; each answered batch is cached as it
    arrives)."""
    items = [item for plan in plans for item in plan.items] + list(extra)
    if items:
        out.write(f"judging {len(items)} samples with {judge.label}, output {output}\n")
    try:
        return run_calls(items, settings, cache, summary.tally, judge, output, progress=out)
    except KeyboardInterrupt:
        out.write(f"interrupted: {len(cache)} judgments are cached in {cache.path}; run the same command "
                  "again to resume\n")
        raise


def apply_judgments(record: dict[str, Any], plans: list[TaskPlan], results: dict[str, CallResult],
                    settings: JudgeSettings, summary: JudgeSummary, started: float,
                    judge: RoleModel | None = None) -> dict[str, list[dict[str, Any]]]:
    """Write the judgments into the plans' sample records and the judge identity into ``record["judge"]`` (in
    memory; counted in ``summary``). Returns the judged sample records by task."""
    identities = {}
    fallback = judge.served_id if judge is not None else settings.label()
    for plan in plans:
        task_summary = summarise(plan, results, dry_run=False)
        summary.tasks[plan.task] = task_summary
        models, outputs = _apply(plan, results, fallback)
        summary.models.update(models)
        identity = plan.identity.reported(_most_common(models, fallback), _most_common(outputs, plan.identity.output))
        identities[plan.task] = {**identity.to_dict(), "n_judged": task_summary.n_judged,
                                 "n_failed": task_summary.n_failed}
        if settings.sample is not None:
            identities[plan.task]["sample"] = {"n": settings.sample, "seed": settings.seed,
                                               "n_not_sampled": plan.n_not_sampled}
    summary.cost = summary.tally.cost(settings)
    summary.seconds = time.monotonic() - started
    previous = record.get("judge") or {}
    first = plans[0].identity.reported(identities[plans[0].task]["model"], identities[plans[0].task].get("output"))
    record["judge"] = {
        **first.to_dict(), "endpoint": first.endpoint, "tasks": {**(previous.get("tasks") or {}), **identities},
        "last_run": {"calls": summary.tally.attempts, "prompt_tokens": summary.tally.prompt_tokens,
                     "completion_tokens": summary.tally.completion_tokens, "cost_usd": summary.cost,
                     "seconds": round(summary.seconds, 3), "models_reported": dict(summary.models)},
    }
    return {plan.task: plan.records for plan in plans}


def _commit(folder: RunFolder, snapshot: str, record: dict[str, Any], judged: dict[str, list[dict[str, Any]]],
            extra_archives: dict[str, dict[str, list]] | None = None) -> None:
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
        # the archive of this judge's judgments: a later judge replaces the logs' judge fields, not this file
        # an ensemble's members keep theirs too (their judgments, for `dfabench judge agree`)
        for name, tasks in {**(extra_archives or {}), **_archives(record, judged)}.items():
            tx.write_text(name, merged_archive(folder, name, tasks))
        tx.write_record(record)


def _archives(record: dict[str, Any], judged: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, list]]:
    """Archive file name -> the judged tasks whose identity it is (one judge per task, as run.json names it)."""
    out: dict[str, dict[str, list]] = {}
    for task, records in judged.items():
        identity = run_judge_identity(record, task)
        if identity is not None:
            out.setdefault(archive_name(identity), {})[task] = records
    return out


def _most_common(counter: Counter, default: Any) -> Any:
    return counter.most_common(1)[0][0] if counter else default


def _apply(plan: TaskPlan, results: dict[str, CallResult], fallback: str) -> tuple[Counter, Counter]:
    """Write each sample's ``judge`` field; returns the reported model ids and the output modes produced."""
    by_id, models, outputs = judge_entries(plan, results, fallback)
    write_entries(plan, by_id)
    return models, outputs
