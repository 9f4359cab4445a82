"""What a judge run did: per-task counts (:class:`TaskSummary`, :class:`JudgeSummary`) and what is printed (the dry
run's plan and first request, the summary after judging)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dfabench.judge.calibration import describe
from dfabench.judge.call import CallResult, Tally, judge_request
from dfabench.judge.plan import TaskPlan
from dfabench.judge.settings import JudgeSettings
from dfabench.roles import RoleModel


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
    n_not_sampled: int = 0
    failures: Counter = field(default_factory=Counter)


@dataclass
class JudgeSummary:
    tasks: dict[str, TaskSummary] = field(default_factory=dict)
    models: Counter = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)
    cost: float | None = None
    seconds: float = 0.0
    dry_run: bool = False
    #: rubric -> its calibration report (dfabench.judge.calibration)
    calibration: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: an ensemble: run.json's ``judge.ensemble`` (rule, members, their coverage and calibration; else None)
    ensemble: dict[str, Any] | None = None
    #: an ensemble: its members' pairwise agreement (run.json's ``judge.agreement``)
    agreement: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        return sum(t.n_failed for t in self.tasks.values())

    @property
    def n_called(self) -> int:
        return sum(t.n_called for t in self.tasks.values())


def summarise(plan: TaskPlan, results: dict[str, CallResult], dry_run: bool) -> TaskSummary:
    """The counts of one task's judging (``dry_run``: what would be done)."""
    summary = TaskSummary(task=plan.task, rubric=plan.rubric.label, n_samples=len(plan.records),
                          n_cached=len(plan.cached), n_by_rule=len(plan.by_rule), n_called=len(plan.items),
                          n_failed_samples=plan.n_failed_samples, n_no_reference=plan.n_no_reference,
                          n_not_sampled=plan.n_not_sampled)
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



def print_dry_run(plans: list[TaskPlan], settings: JudgeSettings, out: Any, judge: RoleModel, output: str) -> None:
    """What a dry run shows: the plan of each task, the call count and the first request (the image not shown)."""
    out.write(f"dry run: judge {judge.label}, output {output}, image "
              f"{'sent' if settings.with_image else 'not sent'}\n")
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
        request = judge_request(first, output, settings) if first.image_path is None else None
        shown_request = {"model": judge.served_id, "messages": first.messages,
                         "max_new_tokens": settings.max_tokens or first.rubric.max_tokens, "temperature": 0,
                         "image": first.image_path}
        if request is not None and request.response_format is not None:
            shown_request["response_format"] = request.response_format
        elif output != "text":
            shown_request["response_format"] = {"type": output}
        shown = json.dumps(shown_request, indent=2, ensure_ascii=False)
        out.write(f"first request ({first.task} {first.sample_id}), as dfabench hands it to the judge model (its "
                  f"plugin turns it into its own API call):\n{shown}\n")


def print_summary(summary: JudgeSummary, settings: JudgeSettings, out: Any) -> None:
    """The outcome of a judge run: per task, then requests, tokens, cost and time."""
    for task in summary.tasks.values():
        failures = ", ".join(f"{n} {kind}" for kind, n in task.failures.most_common())
        out.write(f"{task.task}: {task.n_judged} judged ({task.n_cached} cached, {task.n_by_rule} empty answers "
                  f"scored 0 by rule), {task.n_failed} judge failures{f' ({failures})' if failures else ''}, "
                  f"{task.n_failed_samples} failed samples not judged"
                  + (f", {task.n_not_sampled} left out by --sample (a subset: never ranked with full judgments)"
                     if task.n_not_sampled else "") + f"; rubric {task.rubric}\n")
    tally = summary.tally
    cost = f", cost ${summary.cost:.4f}" if summary.cost is not None else ""
    models = ", ".join(summary.models) or settings.label()
    out.write(f"judge {models}: {tally.attempts} requests, {tally.prompt_tokens} prompt + {tally.completion_tokens} "
              f"completion tokens{cost}, {summary.seconds:.1f} s\n")
    for report in summary.calibration.values():
        out.write(describe(report) + "\n")
    for line in ensemble_lines(summary.ensemble, summary.agreement):
        out.write(line + "\n")
    if summary.n_failed:
        out.write(f"{summary.n_failed} judgments failed (recorded per sample, not scored); run the same command "
                  "again to retry them\n")



def ensemble_lines(ensemble: dict[str, Any] | None, agreement: dict[str, dict[str, Any]] | None) -> list[str]:
    """An ensemble's members (coverage per task, calibration fingerprint) and their agreement, one line each (the
    texts are a record's: the caller escapes them for a terminal)."""
    if not isinstance(ensemble, dict):
        return []
    members = [m for m in ensemble.get("members") or [] if isinstance(m, dict)]
    lines = [f"ensemble of {len(members)} judges, rule {ensemble.get('rule')}; a sample any member fails is a judge "
             "failure of the ensemble"]
    for member in members:
        coverage = ", ".join(f"{task} {c.get('n_judged', 0)} judged / {c.get('n_failed', 0)} failed"
                             for task, c in (member.get("coverage") or {}).items() if isinstance(c, dict))
        calibration = "; ".join(f"calibration {str(c.get('fingerprint'))[:12]}" + (" FLAGGED" if c.get("flagged")
                                                                                   else "")
                                for c in (member.get("calibration") or {}).values() if isinstance(c, dict))
        lines.append(f"  member {member.get('judge')} [{member.get('output')}]: {coverage or 'nothing judged'}"
                     + (f"; {calibration}" if calibration else ""))
    for pair, figures in (agreement or {}).items():
        score = (figures or {}).get("score") or {}
        rho, tau = score.get("spearman"), score.get("kendall_tau_b")
        lines.append(f"  agreement {pair}: {score.get('n', 0)} samples, Spearman "
                     f"{'undefined' if rho is None else f'{rho:.3f}'}, Kendall "
                     f"{'undefined' if tau is None else f'{tau:.3f}'} on the overall score")
    return lines
