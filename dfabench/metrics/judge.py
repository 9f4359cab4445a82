"""The ``judge`` metric provider: the LLM-judge score of a text task, from the per-sample ``judge`` fields
that ``dfabench judge`` writes (see :mod:`dfabench.judge`).

Metrics:

- ``judge_score``: mean judge score (0..1) over the successfully judged samples; ``n`` is their number.
  Empty answers count as judged with score 0 (the rubric's rule). Failed samples (the model failed) are
  not judged and not in ``n``.
- ``judge_failure_rate``: judge failures / (judged + judge failures); ``n`` = judged + failures. A judge
  failure (error, refusal, unparseable judgment) is never a score.

When nothing is judged yet, both are ``None`` with the reason ("run `dfabench judge ...`"). A judgment whose
``input_sha256`` no longer matches the sample (the answer or reference changed since) is stale: it is not
used and is counted as not judged. Samples judged under different judge identities
(:class:`dfabench.records.JudgeIdentity`: reported model, rubric name, version and SHA-256, image) are
never averaged together: ``judge_score`` is then ``None`` with the identities listed.
Confidence interval: cluster bootstrap of the mean over ``source_id``. Breakdowns: ``judge`` with the counts,
the failure kinds, the per-criterion means and the identity.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from dfabench.metrics import MetricContext, MetricOutput, MetricResult
from dfabench.metrics.judge_input import judge_input_sha256
from dfabench.records import JudgeIdentity

NOT_JUDGED = "not judged: run `dfabench judge RUN_DIR --judge-model ID`"


def judge_metrics(records: list[dict[str, Any]], context: MetricContext) -> MetricOutput:
    """Provider ``judge``: ``judge_score`` and ``judge_failure_rate`` (see the module docstring)."""
    from dfabench.metrics.statistics import bootstrap_mean  # numpy: loaded only when a score is computed

    scores: list[float] = []
    clusters: list[str] = []
    judged_ids: list[str] = []
    failures: Counter = Counter()
    criteria: dict[str, list[float]] = {}
    identities: Counter[tuple[Any, ...]] = Counter()  # JudgeIdentity.key() -> samples
    named: dict[tuple[Any, ...], JudgeIdentity] = {}
    n_model_failed = n_not_judged = n_stale = n_by_rule = 0
    for record in records:
        if record.get("error"):
            n_model_failed += 1
            continue
        judge = record.get("judge")
        if not isinstance(judge, dict):
            n_not_judged += 1
            continue
        if judge.get("input_sha256") and judge["input_sha256"] != judge_input_sha256(record):
            n_stale += 1
            continue
        if judge.get("error") or judge.get("score") is None:
            failures[judge.get("failure") or "error"] += 1
            continue
        score = float(judge["score"])
        if not math.isfinite(score):
            failures["non-finite score"] += 1
            continue
        if judge.get("by_rule"):
            n_by_rule += 1
        else:
            identity = JudgeIdentity.from_dict(judge)
            named.setdefault(identity.key(), identity)
            identities[identity.key()] += 1
        scores.append(score)
        clusters.append(str(record.get("source_id") or record["id"]))
        judged_ids.append(str(record["id"]))
        for name, value in (judge.get("criteria") or {}).items():
            criteria.setdefault(name, []).append(float(value))

    n_failed = sum(failures.values())
    output = MetricOutput()
    output.breakdowns["judge"] = {
        "n_judged": len(scores), "n_failed": n_failed, "failure_kinds": dict(failures),
        "n_not_judged": n_not_judged, "n_stale": n_stale, "n_empty_answers_scored_0": n_by_rule,
        "n_model_failed": n_model_failed,
        "per_criterion": {name: sum(v) / len(v) for name, v in sorted(criteria.items())},
        "identities": [{**named[key].to_dict(), "n": n} for key, n in identities.most_common()],
    }
    for sample_id, score in zip(judged_ids, scores, strict=True):
        output.per_sample[sample_id] = {"judge_score": score}

    attempted = len(scores) + n_failed
    if attempted == 0:
        output.metrics["judge_score"] = MetricResult.undefined(NOT_JUDGED)
        output.metrics["judge_failure_rate"] = MetricResult.undefined(NOT_JUDGED)
        return output
    output.metrics["judge_failure_rate"] = MetricResult(value=n_failed / attempted, n=attempted)
    if len(identities) > 1:
        listed = "; ".join(f"{named[key].label()} ({n})" for key, n in identities.most_common())
        output.metrics["judge_score"] = MetricResult.undefined(
            f"samples were judged by different judges ({listed}); re-judge them all with "
            "`dfabench judge RUN_DIR --refresh`",
            n=len(scores))
        return output
    if not scores:
        output.metrics["judge_score"] = MetricResult.undefined(
            f"every judgment failed ({n_failed}: {', '.join(f'{n} {k}' for k, n in failures.most_common())})", n=0)
        return output
    low, high = bootstrap_mean(scores, clusters, n_boot=context.n_boot, seed=context.seed,
                               confidence=context.confidence)
    output.metrics["judge_score"] = MetricResult(value=math.fsum(scores) / len(scores), ci_low=low, ci_high=high,
                                                 n=len(scores))
    return output
