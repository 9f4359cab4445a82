"""Judge ensembles: several judges averaged as one judge identity.

``dfabench judge RUN --judge openai --judge-arg model=A --judge hf --judge-arg path=B`` (``--judge`` given more
than once; each ``--judge-arg`` belongs to the ``--judge`` before it) makes an ensemble. Each member is a judge in
its own right: its own model in the ``judge`` role, output mode, cache keys (:func:`dfabench.judge.plan.cache_key`
with the member's identity: a member that judged the run before, alone or in another ensemble, is not asked again)
and calibration run. Their judgments are then combined per sample:

- **the rule is the mean**, per criterion; the sample's score is the mean of the members' scores (the same number:
  a score is linear in its criteria);
- **a sample that any member fails** (a model error, a refusal, an unparseable judgment, a budget stop) **is a
  judge failure of the ensemble** (``failure: member_<kind>``), never a mean of the members that answered: a partial
  mean would be another judge's number under the ensemble's name. Each member's coverage (judged and failed per
  task) is recorded beside it, so a member that fails often is visible;
- an empty answer scores 0 by the rubric's rule, without a call, as for one judge.

**Identity.** The ensemble is one :class:`~dfabench.records.JudgeIdentity`: ``model`` is
``ensemble(M1 [OUT1] + M2 [OUT2])`` with the members' reported model ids and output modes, sorted (the order of the
options does not matter), ``output`` is ``ensemble-mean`` (the rule) and ``judge_fingerprint`` hashes the rule and
the members' sorted fingerprints and output modes. Every per-sample ``judge`` field carries it, with ``members``
(each member's identity, score, criteria and failure); ``run.json["judge"]["ensemble"]`` records the rule, what a
member failure does, and per member its identity, coverage and calibration (with its behavioural fingerprint);
``run.json["judge"]["agreement"]`` holds the members' pairwise agreement (:func:`dfabench.judge.agree.compare`:
Spearman, Kendall tau-b, weighted kappa per criterion) over the samples both judged. Each member's judgments are
archived as a single judge's are (``judgments-<member>.jsonl``), so ``dfabench judge agree`` can compare them later.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from dfabench.judge.agree import archive_name, compare
from dfabench.judge.calibration import Calibration, calibration_report
from dfabench.judge.call import CallResult
from dfabench.judge.entries import judge_entries, write_entries
from dfabench.judge.plan import TaskPlan
from dfabench.judge.report import JudgeSummary, TaskSummary, summarise
from dfabench.judge.settings import JudgeSettings
from dfabench.records import JudgeIdentity
from dfabench.roles import RoleModel
from dfabench.store import canonical_json, sha256_text

#: how the members' judgments are combined
RULE = "mean"
#: the ``output`` of an ensemble's identity (its rule)
OUTPUT = f"ensemble-{RULE}"
ON_MEMBER_FAILURE = ("the sample is a judge failure of the ensemble (never a mean of the members that answered); "
                     "each member's coverage is reported")


@dataclass
class Member:
    """One judge of a judge run (the only one, or an ensemble member) and what the stage made of it."""

    settings: JudgeSettings
    judge: RoleModel
    output: str
    own: bool = True  # created by the stage (closed at the end)
    plans: list[TaskPlan] = field(default_factory=list)
    calibrations: list = field(default_factory=list)
    results: dict[str, CallResult] = field(default_factory=dict)


def member_labels(members: list[Member]) -> list[str]:
    """How each member is named in records and messages (``NAME (served id)``; numbered when two read the same)."""
    labels = [member.judge.label for member in members]
    counts = Counter(labels)
    seen: Counter = Counter()
    out = []
    for label in labels:
        seen[label] += 1
        out.append(f"{label} #{seen[label]}" if counts[label] > 1 else label)
    return out


def _tag(model: Any, output: Any) -> str:
    return f"{model} [{output}]"


def ensemble_model(tags: list[str]) -> str:
    """``ensemble(A [json_schema] + B [text])``: the members, sorted."""
    return f"ensemble({' + '.join(sorted(tags))})"


def ensemble_request(identities: list[JudgeIdentity]) -> JudgeIdentity:
    """The ensemble's identity as requested, from its members' (one task): the rule and the sorted members."""
    members = sorted(canonical_json({"judge_fingerprint": i.judge_fingerprint, "output": i.output,
                                     "requested_model": i.requested_model}) for i in identities)
    fingerprint = sha256_text(canonical_json({"rule": RULE, "members": members}))
    return replace(identities[0], model=None, endpoint=None, output=OUTPUT, judge_fingerprint=fingerprint,
                   requested_model=ensemble_model([_tag(i.requested_model, i.output) for i in identities]),
                   json_mode=all(i.json_mode for i in identities))


def combine(request: JudgeIdentity, entries: list[dict[str, dict[str, Any]]], labels: list[str]
            ) -> tuple[dict[str, dict[str, Any]], Counter]:
    """The ensemble's per-sample ``judge`` fields from each member's (sample id -> entry; every member has the same
    ids: they planned the same samples). Returns them and the ensemble model ids they carry."""
    combined: dict[str, dict[str, Any]] = {}
    models: Counter = Counter()
    for sample_id, first in entries[0].items():
        own = [member[sample_id] for member in entries]
        if first.get("by_rule") or first.get("failure") == "no_call":
            combined[sample_id] = {**first, **request.reported(None, OUTPUT).to_dict()}
            continue
        members = []
        for label, entry in zip(labels, own, strict=True):
            member = {"judge": label, **JudgeIdentity.from_dict(entry).to_dict(), "score": entry.get("score"),
                      "criteria": entry.get("criteria"), "cached": bool(entry.get("cached"))}
            if entry.get("score") is None:
                member.update(error=entry.get("error"), failure=entry.get("failure") or "error")
            members.append(member)
        model = ensemble_model([_tag(m["model"], m.get("output")) for m in members])
        entry: dict[str, Any] = {**request.reported(model, OUTPUT).to_dict(), "rule": RULE,
                                 "cached": all(m["cached"] for m in members), "input_sha256": first["input_sha256"],
                                 "members": members}
        failed = [m for m in members if m["score"] is None]
        if failed:
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            entry.update(score=None, criteria=None, rationale=None, failure=f"member_{failed[0]['failure']}",
                         error=f"ensemble member {failed[0]['judge']} failed{more}: {failed[0].get('error')}")
        else:
            keys = list(members[0]["criteria"] or {})
            entry.update(score=math.fsum(m["score"] for m in members) / len(members),
                         criteria={k: math.fsum(m["criteria"][k] for m in members) / len(members) for k in keys},
                         rationale=f"the mean of {len(members)} judges' judgments", error=None)
            models[model] += 1
        combined[sample_id] = entry
    return combined, models


def _summarise(plan: TaskPlan, combined: dict[str, dict[str, Any]]) -> TaskSummary:
    """The ensemble's counts of one task (a sample is cached when every member's judgment was)."""
    out = summarise(plan, {}, dry_run=True)
    out.n_cached = out.n_called = 0
    for entry in combined.values():
        if entry.get("by_rule"):
            out.n_judged += 1
            continue
        if entry.get("failure") == "no_call":
            out.n_failed += 1
            out.failures["no call: " + str(entry.get("error") or "").split(":")[0]] += 1
            continue
        if entry.get("cached"):
            out.n_cached += 1
        else:
            out.n_called += 1
        if entry.get("score") is None:
            out.n_failed += 1
            out.failures[entry.get("failure") or "error"] += 1
        else:
            out.n_judged += 1
    return out


def _most_common(counter: Counter, default: Any) -> Any:
    return counter.most_common(1)[0][0] if counter else default


def _calibration_scores(member: Member) -> dict[str, tuple[Calibration, dict[str, float | None]]]:
    """rubric -> (its calibration set, item id -> the member's score; None: failed)."""
    out = {}
    for calibration, asked, cached in member.calibrations:
        scores: dict[str, float | None] = {item.id: None for item in calibration.items}
        scores.update(cached)
        for item in asked:
            result = member.results.get(item.key)
            scores[item.sample_id] = result.judgment["score"] if result is not None and result.ok else None
        out[calibration.rubric] = (calibration, scores)
    return out


def apply_ensemble(record: dict[str, Any], members: list[Member], settings: JudgeSettings, summary: JudgeSummary,
                   started: float) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, list]]]:
    """Combine the members' judgments into the samples (the first member's plans hold the records written) and
    write the ensemble's record into ``record["judge"]`` (in memory). Returns the judged records by task and the
    members' judgment archives (file name -> task -> records)."""
    import time

    labels = member_labels(members)
    identities: dict[str, dict[str, Any]] = {}
    coverage: list[dict[str, Any]] = [{} for _ in members]
    member_identity: list[Counter] = [Counter() for _ in members]
    grades: list[dict[tuple[str, str], dict[str, Any]]] = [{} for _ in members]
    archives: dict[str, dict[str, list]] = {}
    rubrics: dict[str, tuple[Any, list[str]]] = {}
    for index, plan in enumerate(members[0].plans):
        task = plan.task
        entries = []
        for number, member in enumerate(members):
            own = member.plans[index]
            by_id, models, outputs = judge_entries(own, member.results, member.judge.served_id)
            summary.models.update(models)
            entries.append(by_id)
            counts = summarise(own, member.results, dry_run=False)
            coverage[number][task] = {"n_judged": counts.n_judged, "n_failed": counts.n_failed,
                                      "n_cached": counts.n_cached, "failures": dict(counts.failures)}
            identity = own.identity.reported(_most_common(models, member.judge.served_id),
                                             _most_common(outputs, own.identity.output))
            member_identity[number][canonical_json(identity.to_dict())] += 1
            archives.setdefault(archive_name(identity), {})[task] = [
                {"id": sample_id, "judge": entry} for sample_id, entry in by_id.items()]
            for sample_id, entry in by_id.items():
                if entry.get("score") is not None and not entry.get("by_rule"):
                    grades[number][(task, sample_id)] = {"score": entry["score"], "criteria": entry.get("criteria")}
        request = ensemble_request([member.plans[index].identity for member in members])
        combined, models = combine(request, entries, labels)
        write_entries(plan, combined)
        task_summary = _summarise(plan, combined)
        summary.tasks[task] = task_summary
        identity = request.reported(_most_common(models, request.requested_model), OUTPUT)
        identities[task] = {**identity.to_dict(), "n_judged": task_summary.n_judged,
                            "n_failed": task_summary.n_failed, "rule": RULE,
                            "members": [{"judge": label, **coverage[n][task]} for n, label in enumerate(labels)]}
        if settings.sample is not None:
            identities[task]["sample"] = {"n": settings.sample, "seed": settings.seed,
                                          "n_not_sampled": plan.n_not_sampled}
        rubrics.setdefault(plan.rubric.label, (plan.rubric, []))[1].append(task)

    calibration, member_calibration = _calibration(members)
    summary.cost = summary.tally.cost(settings)
    summary.seconds = time.monotonic() - started
    previous = record.get("judge") or {}
    first = JudgeIdentity.from_dict(identities[members[0].plans[0].task])
    described = []
    for number, (member, label) in enumerate(zip(members, labels, strict=True)):
        described.append({
            "judge": label, "name": member.judge.identity.name, "requested_model": member.judge.served_id,
            "identity": _json(_most_common(member_identity[number], "{}")),
            "judge_fingerprint": member.judge.identity.fingerprint, "output": member.output,
            "endpoint": member.plans[0].identity.endpoint, "coverage": coverage[number],
            "calibration": {rubric: {k: report[k] for k in ("fingerprint", "flagged", "n", "n_in_range", "n_failed",
                                                             "bias", "scores")}
                            for rubric, report in member_calibration[number].items()}})
    agreement = {}
    for rubric_label, (rubric, tasks) in rubrics.items():
        criteria = {c.id: (rubric.scale_min, rubric.scale_max) for c in rubric.criteria}
        for i in range(len(members)):
            for j in range(i + 1, len(members)):
                pick_i = {k: v for k, v in grades[i].items() if k[0] in tasks}
                pick_j = {k: v for k, v in grades[j].items() if k[0] in tasks}
                name = f"{labels[i]} vs {labels[j]}" + (f" ({rubric_label})" if len(rubrics) > 1 else "")
                agreement[name] = {**compare(pick_i, pick_j, criteria), "tasks": tasks, "rubric": rubric_label,
                                   "judges": [labels[i], labels[j]], "ensemble_members": True}
    record["judge"] = {
        **first.to_dict(), "endpoint": None, "tasks": {**(previous.get("tasks") or {}), **identities},
        "last_run": {"calls": summary.tally.attempts, "prompt_tokens": summary.tally.prompt_tokens,
                     "completion_tokens": summary.tally.completion_tokens, "cost_usd": summary.cost,
                     "seconds": round(summary.seconds, 3), "models_reported": dict(summary.models)},
        "ensemble": {"rule": RULE, "on_member_failure": ON_MEMBER_FAILURE, "members": described},
        "agreement": agreement,
    }
    if calibration:
        record["judge"]["calibration"] = calibration
        summary.calibration = calibration
    summary.ensemble = record["judge"]["ensemble"]
    summary.agreement = agreement
    return {plan.task: plan.records for plan in members[0].plans}, archives


def _json(text: str) -> Any:
    import json

    return json.loads(text)


def _calibration(members: list[Member]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ensemble's calibration reports (an item's score: the members' mean; failed when any member failed it)
    and each member's own."""
    per_member = [_calibration_scores(member) for member in members]
    own = [{rubric: calibration_report(calibration, scores) for rubric, (calibration, scores) in found.items()}
           for found in per_member]
    combined = {}
    for rubric, (calibration, _) in per_member[0].items():
        if not all(rubric in found for found in per_member):
            continue
        scores: dict[str, float | None] = {}
        for item in calibration.items:
            values = [found[rubric][1].get(item.id) for found in per_member]
            scores[item.id] = None if any(v is None for v in values) else math.fsum(values) / len(values)
        combined[rubric] = calibration_report(calibration, scores)
    return combined, own
