"""What a judge run did: per-task counts (:class:`TaskSummary`, :class:`JudgeSummary`) and what is printed (the dry
run's plan and first request, the summary after judging)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dfabench.judge.client import CallResult, Tally
from dfabench.judge.plan import TaskPlan
from dfabench.judge.settings import JudgeSettings


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


def summarise(plan: TaskPlan, results: dict[str, CallResult], dry_run: bool) -> TaskSummary:
    """The counts of one task's judging (``dry_run``: what would be done)."""
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



def _redact_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shown = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{**part, "image_url": {"url": f"<data URL, {len(part['image_url']['url'])} characters>"}}
                       if part.get("type") == "image_url" else part for part in content]
        shown.append({**message, "content": content})
    return shown


def print_dry_run(plans: list[TaskPlan], settings: JudgeSettings, out: Any) -> None:
    """What a dry run shows: the plan of each task, the call count and the first request (images elided)."""
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


def print_summary(summary: JudgeSummary, settings: JudgeSettings, out: Any) -> None:
    """The outcome of a judge run: per task, then requests, tokens, cost and time."""
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

