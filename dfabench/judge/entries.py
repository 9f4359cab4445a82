"""The per-sample ``judge`` fields of one judge's plan (:func:`judge_entries`) and how they are written into the sample
records (:func:`write_entries`); the stage writes them for one judge, :mod:`.ensemble` combines several judges'."""

from __future__ import annotations

from collections import Counter
from typing import Any

from dfabench.judge.call import CallResult
from dfabench.judge.plan import TaskPlan
from dfabench.metrics.judge_input import answer_and_references


def judge_entries(plan: TaskPlan, results: dict[str, CallResult], fallback: str
                  ) -> tuple[dict[str, dict[str, Any]], Counter, Counter]:
    """Each sample's ``judge`` field (sample id -> entry), the reported model ids and the output modes produced."""
    rubric = plan.rubric

    def grader(model: str | None, output: str | None = plan.identity.output) -> dict[str, Any]:
        # the judge identity each result was produced under (``dfabench verify`` checks run.json against it)
        return plan.identity.reported(model, output).to_dict()

    by_id: dict[str, dict[str, Any]] = {}
    models: Counter = Counter()
    outputs: Counter = Counter()
    for sample_id, value in plan.cached.items():
        model, output = value.get("model") or fallback, value.get("output") or plan.identity.output
        models[model] += 1
        outputs[output] += 1
        by_id[sample_id] = {"score": value["score"], "criteria": value["criteria"], "rationale": value.get("rationale"),
                            **grader(model, output), "cached": True,
                            "tokens": value.get("tokens"), "input_sha256": value["input_sha256"], "error": None}
    for item in plan.items:
        result = results.get(item.key) or CallResult(ok=False, error="not called", kind="not called")
        model = result.model or fallback
        output = result.output or plan.identity.output
        entry: dict[str, Any] = {**grader(model, output), "cached": False, "attempts": result.attempts,
                                 "tokens": {"prompt": result.prompt_tokens, "completion": result.completion_tokens},
                                 "input_sha256": item.input_sha256}
        if result.ok and result.judgment is not None:
            models[model] += 1
            outputs[output] += 1
            entry.update(score=result.judgment["score"], criteria=result.judgment["criteria"],
                         rationale=result.judgment.get("rationale"), error=None)
        else:
            entry.update(score=None, criteria=None, rationale=None, error=result.error, failure=result.kind)
        by_id[item.sample_id] = entry
    zero = {c.id: rubric.scale_min for c in rubric.criteria}
    for sample_id, value in plan.by_rule.items():
        by_id[sample_id] = {"score": 0.0, "criteria": dict(zero), "rationale": "empty answer: 0 by the rubric's rule",
                            **grader(None, None), "by_rule": True, "cached": False,
                            "input_sha256": value["input_sha256"], "error": None}
    for sample_id, reason in plan.errors.items():
        by_id[sample_id] = {"score": None, **grader(None, None), "error": reason, "failure": "no_call",
                            "input_sha256": None}
    return by_id, models, outputs


def write_entries(plan: TaskPlan, by_id: dict[str, dict[str, Any]]) -> None:
    """Write each sample's ``judge`` field (None for a sample this judge run does not judge)."""
    for sample in plan.records:
        entry = by_id.get(str(sample["id"]))
        if entry is not None:
            sample["judge"] = entry
        elif str(sample["id"]) in plan.not_sampled:
            sample["judge"] = None  # outside this --sample subset: an earlier judgment is not this judge run's
        elif sample.get("error") or not answer_and_references(sample)[1]:
            sample["judge"] = None
