"""The checks ``dfabench verify`` runs, by part of the evidence, and the report they fill.

:class:`VerifyReport` collects what holds, what does not (``FAIL``) and what cannot be checked on this
machine; the check functions each compare one part of a run record with what it claims to rest on: a
per-sample log (:func:`check_log`, :func:`selection_problems`), the judge's results (:func:`check_judge`)
and the benchmark (:func:`check_benchmark`). :mod:`dfabench.verify` reads the run once and calls them.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dfabench.data.manifest import load_benchmark
from dfabench.errors import DfabenchError
from dfabench.metrics import MetricContext
from dfabench.metrics.judge import judge_metrics
from dfabench.records import JudgeIdentity, run_judge_identity
from dfabench.records.sample import SampleColumns, StringColumn
from dfabench.selection import select_samples

#: re-derived numbers must agree to this absolute difference (floating-point summation order only)
EXACT = 1e-9


@dataclass
class VerifyReport:
    target: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    #: checks that cannot run on this machine (a missing resource); the text says what to install
    unverifiable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.unverifiable

    def check(self, condition: bool, ok_text: str, fail_text: str) -> bool:
        (self.passed if condition else self.failed).append(ok_text if condition else fail_text)
        return condition

    def fail(self, text: str) -> None:
        self.failed.append(text)

    def cannot(self, text: str) -> None:
        self.unverifiable.append(text)

    def lines(self) -> list[str]:
        out = [f"ok    {line}" for line in self.passed] + [f"FAIL  {line}" for line in self.failed]
        out += [f"CANNOT CHECK HERE  {line}" for line in self.unverifiable]
        if self.failed:
            here = f"; {len(self.unverifiable)} check(s) cannot run here" if self.unverifiable else ""
            verdict = f"NOT VERIFIED ({len(self.failed)} problem(s){here})"
        elif self.unverifiable:
            verdict = f"NOT VERIFIED HERE ({len(self.unverifiable)} check(s) cannot run on this machine; see above)"
        else:
            verdict = "VERIFIED"
        out.append(f"{verdict}: {self.target}")
        return out


def same(a: Any, b: Any, tolerance: float = EXACT) -> bool:
    """Whether two JSON scalars are the same number or value (numbers within ``tolerance``)."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(float(a) - float(b)) <= max(tolerance, EXACT)
    return type(a) is type(b) and a == b


def same_tree(a: Any, b: Any, tolerance: float = EXACT) -> bool:
    """Whether two JSON values are the same tree, numbers within ``tolerance``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_tree(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_tree(x, y, tolerance) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return same(a, b, tolerance)


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _columns(samples: Sequence[dict[str, Any]]) -> SampleColumns:
    """The compact columns of a log (:class:`dfabench.store.SampleLog`) or of a list of records."""
    columns = getattr(samples, "columns", None)
    return columns if isinstance(columns, SampleColumns) else SampleColumns.from_records(samples)


def sorted_ids_sha256(ids: Iterable[Any]) -> str:
    """:func:`dfabench.selection.ids_sha256` (the SHA-256 of the sorted ids, one per line), hashed as it
    goes: no joined text of a million ids."""
    digest = hashlib.sha256()
    for k, sample_id in enumerate(sorted(str(i) for i in ids)):
        digest.update((sample_id if k == 0 else "\n" + sample_id).encode("utf-8"))
    return digest.hexdigest()


def check_log(report: VerifyReport, record: dict[str, Any], task_id: str, samples: Sequence[dict[str, Any]]) -> None:
    """A log's records name its task and the run's model, and are exactly the recorded selection.

    ``samples``: the records, or a log read as columns (:class:`dfabench.store.SampleLog`)."""
    columns = _columns(samples)
    tasks = columns["task"]
    other_task = tasks.rows_where(lambda v: v != task_id)
    n_other = int(other_task.sum())
    report.check(not n_other, f"{task_id}: every per-sample record names the task",
                 f"{task_id}: {n_other} per-sample records name another task "
                 f"(e.g. {short(tasks[int(np.flatnonzero(other_task)[0])]) if n_other else ''})")
    fingerprint = record["model"].get("fingerprint")
    fingerprints = columns["model_fingerprint"]
    counts = np.bincount(fingerprints.codes, minlength=len(fingerprints.values))
    foreign: Counter[str] = Counter()
    for code, value in enumerate(fingerprints.values):  # codes in order of first appearance, as the records go
        if value != fingerprint and counts[code]:
            foreign[str(value)] += int(counts[code])
    report.check(not foreign, f"{task_id}: every per-sample record was produced by the recorded model",
                 f"{task_id}: {sum(foreign.values())} per-sample records carry another model fingerprint "
                 f"({', '.join('none' if f == 'None' else f[:12] for f in foreign)}) than run.json's model "
                 f"({str(fingerprint)[:12]})")

    duplicated = columns.duplicate_ids() if isinstance(columns.ids, StringColumn) else sorted(
        i for i, n in Counter(str(i) for i in columns.ids).items() if n > 1)
    report.check(not duplicated, f"{task_id}: no sample is logged twice",
                 f"{task_id}: {len(duplicated)} sample ids are logged more than once (e.g. {duplicated[:3]})")
    selection = record["tasks"][task_id].get("selection")
    if not isinstance(selection, dict):
        report.fail(f"{task_id}: run.json has no selection record for the task (which samples were asked is "
                    "unknown); re-run it with this dfabench")
        return
    n = columns.n
    part = record["tasks"][task_id].get("shard") if record.get("shard") else None
    if isinstance(part, dict):  # a shard's log holds its part of the selection (dfabench.executors.shards)
        report.check(part.get("n") == n and part.get("ids_sha256") == sorted_ids_sha256(columns.ids),
                     f"{task_id}: the log holds the recorded shard of the selection ({n} samples)",
                     f"{task_id}: the log holds {n} samples whose ids are not the recorded shard "
                     f"({short(part.get('n'))} samples, ids {str(part.get('ids_sha256'))[:12]}): samples were "
                     "removed or added after the run")
    else:
        report.check(selection.get("n") == n and selection.get("ids_sha256") == sorted_ids_sha256(columns.ids),
                     f"{task_id}: the log holds the recorded selection ({n} samples)",
                     f"{task_id}: the log holds {n} samples whose ids are not the recorded selection "
                     f"({short(selection.get('n'))} samples, ids {str(selection.get('ids_sha256'))[:12]}): samples "
                     "were removed or added after the run")
    problems = selection_problems(selection, record)
    report.check(not problems, f"{task_id}: the selection record is consistent with the split and the limit",
                 f"{task_id}: the selection record is inconsistent: {'; '.join(problems)}")


def selection_problems(selection: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """Where a selection record contradicts itself or the run (split, ``--limit``, split size)."""
    counts = {k: selection.get(k) for k in ("n", "n_available", "n_pool")}
    excluded = selection.get("excluded")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()) or not (
            isinstance(excluded, dict)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in excluded.values())):
        return ["n, n_available, n_pool and the excluded counts must be non-negative integers"]
    problems = []
    bench = record["benchmark"]
    if selection.get("split") != bench.get("split"):
        problems.append(f"split {short(selection.get('split'))} but the run's split is {short(bench.get('split'))}")
    limit = selection.get("limit")
    if limit != record.get("limit"):
        problems.append(f"limit {short(limit)} but the run's --limit is {short(record.get('limit'))}")
    if bench.get("n_samples") is not None and counts["n_pool"] != bench.get("n_samples"):
        problems.append(f"{counts['n_pool']} samples in the split but the run says {short(bench.get('n_samples'))}")
    if counts["n_available"] + sum(excluded.values()) != counts["n_pool"]:
        problems.append(f"{counts['n_available']} taken + {sum(excluded.values())} left out != {counts['n_pool']} "
                        "in the split")
    expected = counts["n_available"] if limit is None else (
        min(limit, counts["n_available"]) if isinstance(limit, int) else None)
    if counts["n"] != expected:
        problems.append(f"n {counts['n']} but the split gives {counts['n_available']} samples"
                        + (f" and --limit {limit}" if limit is not None else ""))
    return problems


def judge_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The judge's counts (``n_judged``, ``n_failed``, ...) over per-sample records, by the judge metric's rule."""
    return judge_metrics(samples, MetricContext(task="", n_boot=1)).breakdowns["judge"]


def check_judge(report: VerifyReport, record: dict[str, Any], rederived: dict[str, Any],
                 logs: dict[str, list[dict[str, Any]]], fresh_tasks: set[str]) -> None:
    """run.json's judge identity (overall and per task) is the one the per-sample judge results were
    produced under, and its summary numbers are re-derived."""
    judge = record.get("judge") or None
    per_task = (judge or {}).get("tasks") or {}
    for task_id in sorted(set(per_task) - set(record.get("tasks") or {})):
        report.fail(f"judge: run.json names a judge for {task_id}, a task it does not define")
    if judge and per_task:
        overall = JudgeIdentity.from_dict(judge)
        report.check(overall.key() in {JudgeIdentity.from_dict(v).key() for v in per_task.values()},
                     "judge: the run-level judge identity is one of the per-task identities",
                     f"judge: the run-level judge identity {overall.label()} is none of the per-task ones")
    for task_id, samples in sorted(logs.items()):
        seen: Counter[tuple[Any, ...]] = Counter()  # JudgeIdentity.key() -> samples
        named: dict[tuple[Any, ...], JudgeIdentity] = {}
        judged = _columns(samples)["judge"]
        times = np.bincount(judged.codes, minlength=len(judged.values))
        for code, result in enumerate(judged.values):  # in order of first appearance, as the records go
            if (times[code] and isinstance(result, dict) and not result.get("by_rule") and result.get("error") is None
                    and result.get("score") is not None):
                identity = JudgeIdentity.from_dict(result)
                named.setdefault(identity.key(), identity)
                seen[identity.key()] += int(times[code])
        claimed = run_judge_identity(record, task_id)
        if seen:
            if claimed is None:
                report.fail(f"{task_id}: {sum(seen.values())} samples carry judge results but run.json names no judge")
            else:
                top = seen.most_common()
                majority = {identity for identity, n in top if n == top[0][1]}
                report.check(claimed.key() in majority,
                             f"{task_id}: the judge identity is the one the per-sample results carry",
                             f"{task_id}: run.json names the judge {claimed.label()}, but "
                             f"the per-sample results were produced by {named[top[0][0]].label()} ({top[0][1]} "
                             "samples)")
        if task_id in per_task and task_id in fresh_tasks:
            fresh = (rederived["breakdowns"].get(task_id) or {}).get("judge")
            if fresh is None:
                # a judged task whose spec scores no judge metric (FL's report): count the results directly
                fresh = judge_summary(samples)
            bad = [f"{key} {short(per_task[task_id].get(key))} != {fresh.get(key)}" for key in ("n_judged", "n_failed")
                   if key in per_task[task_id] and not same(per_task[task_id].get(key), fresh.get(key))]
            report.check(not bad, f"{task_id}: the judge's summary numbers are re-derived",
                         f"{task_id}: the judge's summary numbers differ from the per-sample results: {'; '.join(bad)}")


def check_benchmark(report: VerifyReport, record: dict[str, Any], bench: Path,
                     logs: dict[str, list[dict[str, Any]]], specs: dict[str, Any]) -> None:
    benchmark = load_benchmark(bench)
    recorded = record["benchmark"].get("fingerprint")
    actual = benchmark.fingerprint()
    report.check(actual == recorded, f"benchmark fingerprint {actual[:12]} matches the run",
                 f"benchmark fingerprint {actual[:12]} != recorded {str(recorded)[:12]}")
    by_id = {s.id: s for s in benchmark.samples}
    split = record["benchmark"].get("split")
    try:
        pool = benchmark.select(split if isinstance(split, str) else None)
    except DfabenchError as exc:
        report.fail(f"the run's split {short(split)} is not in the benchmark: {exc}")
        pool = None
    limit = record.get("limit")
    for task_id, samples in sorted(logs.items()):
        task = specs.get(task_id)
        if task is None:
            continue
        mismatches = []
        columns = _columns(samples)
        labels, categories, references = columns["label"], columns["category"], columns["reference"]
        for row, sample_id in enumerate(columns.ids):
            sample = by_id.get(str(sample_id))
            if sample is None:
                mismatches.append(f"{sample_id}: not in the benchmark")
            elif (labels[row] != sample.label or categories[row] != sample.category
                  or references[row] != task.reference_of(sample)):
                mismatches.append(f"{sample_id}: label/category/reference differ from the benchmark")
        report.check(not mismatches, f"{task_id}: every logged sample matches the benchmark",
                     f"{task_id}: {len(mismatches)} logged samples do not match the benchmark "
                     f"({'; '.join(mismatches[:3])})")
        if pool is None:
            continue
        fpv = record.get("frames_per_video")
        chosen, selection = select_samples(task, pool, str(split), limit if isinstance(limit, int) else None,
                                           frames_per_video=fpv if isinstance(fpv, int) else None,
                                           seed=record.get("seed") if isinstance(record.get("seed"), int) else 0)
        shard = record.get("shard")
        if isinstance(shard, dict) and isinstance(shard.get("index"), int) and isinstance(shard.get("count"), int):
            from dfabench.executors.shards import take_shard

            chosen = take_shard(chosen, (shard["index"], shard["count"]))
        wanted = {s.id for s in chosen}
        logged = {str(i) for i in columns.ids}
        missing, extra = sorted(wanted - logged), sorted(logged - wanted)
        report.check(not missing and not extra,
                     f"{task_id}: the logged samples are exactly the benchmark's selection ({len(wanted)} of "
                     f"{selection['n_available']} samples of split {split})",
                     f"{task_id}: the logged samples are not the benchmark's selection for split {split}: "
                     f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} not in it (e.g. {extra[:3]})")
        stored = record["tasks"][task_id].get("selection")
        if isinstance(stored, dict):
            differing = [f"{k} {short(stored.get(k))} != {short(v)}" for k, v in selection.items()
                         if not same_tree(stored.get(k), v)]
            report.check(not differing, f"{task_id}: the selection record is the benchmark's",
                         f"{task_id}: the selection record differs from the benchmark's: {'; '.join(differing)}")
