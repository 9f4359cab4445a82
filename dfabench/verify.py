"""Reviewer checks: does a run folder (or leaderboard entry) hold what it claims?

``dfabench verify TARGET`` checks, without calling any model:

- the run record is readable and of a known schema;
- every per-sample log has the SHA-256 the record gives (nothing edited after the run);
- each task spec stored in the record matches its fingerprint;
- the counts and every metric (value, CI, n) are re-derived from the per-sample logs exactly;
- with ``--bench DIR``: the benchmark's fingerprint is the one recorded, and every logged sample's
  label, category and reference are those of the benchmark;
- with ``--claim TASK.METRIC=VALUE``: the claimed number is within ``--tolerance`` of the value.

Any check that does not hold makes the command exit with 1.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, UnknownNameError
from dfabench.store import RunFolder, sha256_file

#: re-derived numbers must agree to this absolute difference (floating-point summation order only)
EXACT = 1e-9


@dataclass
class VerifyReport:
    target: str
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def check(self, condition: bool, ok_text: str, fail_text: str) -> bool:
        (self.passed if condition else self.failed).append(ok_text if condition else fail_text)
        return condition

    def lines(self) -> list[str]:
        out = [f"ok    {line}" for line in self.passed] + [f"FAIL  {line}" for line in self.failed]
        verdict = "VERIFIED" if self.ok else f"NOT VERIFIED ({len(self.failed)} problem(s))"
        out.append(f"{verdict}: {self.target}")
        return out


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(float(a) - float(b)) <= EXACT
    return a == b


def _same_tree(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    return _same(a, b)


def parse_claim(text: str) -> tuple[str, str, float]:
    left, sep, value = text.partition("=")
    task, dot, metric = left.partition(".")
    if not sep or not dot or not task or not metric:
        raise DfabenchError(f"bad --claim {text!r}: expected TASK.METRIC=VALUE, e.g. DF-D.auc=0.91")
    try:
        return task.strip(), metric.strip(), float(value)
    except ValueError:
        raise DfabenchError(f"bad --claim {text!r}: {value!r} is not a number") from None


def verify(target: Path, *, bench: Path | None = None, claims: list[str] = (), tolerance: float = 0.005,
           bench_root: Path | None = None) -> VerifyReport:
    """Check a run folder or entry. ``bench``: also check the run against this benchmark (and use it
    to re-derive); ``bench_root``: only use it to re-derive (reference masks)."""
    from dfabench.scoring import rescore_record, task_from_record

    folder = RunFolder(target)
    record = folder.read_record()
    report = VerifyReport(str(target))
    parsed_claims = [parse_claim(c) for c in claims]

    # 1. integrity of the per-sample logs
    intact: set[str] = set()
    for task_id, info in record.get("samples", {}).items():
        path = folder.path / info.get("file", f"samples-{task_id}.jsonl")
        if not path.exists():
            report.check(False, "", f"{task_id}: per-sample log {path.name} is missing")
            continue
        digest = sha256_file(path)
        if report.check(digest == info.get("sha256"), f"{task_id}: {path.name} matches its SHA-256",
                        f"{task_id}: {path.name} does not match the SHA-256 in run.json (edited after the run?)"):
            intact.add(task_id)

    # 2. task specs
    for task_id, info in record.get("tasks", {}).items():
        try:
            task_from_record(task_id, info, folder.record_path)
            report.check(True, f"{task_id}: task spec matches its fingerprint {str(info.get('fingerprint'))[:12]}", "")
        except DfabenchError as exc:
            report.check(False, "", f"{task_id}: {exc}")

    # 3. re-derive counts and metrics
    rederived = copy.deepcopy(record)
    try:
        root = bench if bench is not None else bench_root
        rescore_record(folder, rederived, sorted(intact), write_samples=False,
                       bench_root=str(root) if root is not None else None)
    except DfabenchError as exc:
        report.check(False, "", f"re-scoring failed: {exc}")
        rederived = None
    if rederived is not None:
        for task_id in sorted(intact):
            claimed_counts = record.get("counts", {}).get(task_id)
            report.check(claimed_counts == rederived["counts"].get(task_id),
                         f"{task_id}: counts re-derived ({claimed_counts})",
                         f"{task_id}: counts {claimed_counts} != re-derived {rederived['counts'].get(task_id)}")
            claimed = record.get("metrics", {}).get(task_id, {})
            fresh = rederived["metrics"].get(task_id, {})
            bad = []
            for name in sorted(set(claimed) | set(fresh)):
                a, b = claimed.get(name), fresh.get(name)
                if a is None or b is None:
                    bad.append(f"{name} (only in {'the record' if b is None else 'the re-derivation'})")
                    continue
                for key in ("value", "ci_low", "ci_high", "n"):
                    if not _same(a.get(key), b.get(key)):
                        bad.append(f"{name}.{key} {a.get(key)} != {b.get(key)}")
            report.check(not bad, f"{task_id}: {len(fresh)} metrics re-derived exactly from the per-sample log",
                         f"{task_id}: metrics differ from the re-derivation: {'; '.join(bad[:8])}")
            claimed_breakdowns = record.get("breakdowns", {}).get(task_id, {})
            fresh_breakdowns = rederived["breakdowns"].get(task_id, {})
            differing = sorted(k for k in set(claimed_breakdowns) | set(fresh_breakdowns)
                               if not _same_tree(claimed_breakdowns.get(k), fresh_breakdowns.get(k)))
            report.check(not differing, f"{task_id}: breakdowns re-derived exactly",
                         f"{task_id}: breakdowns differ from the re-derivation: {', '.join(differing)}")

    from dfabench.scoring import metric_errors

    for line in metric_errors(record):
        report.check(False, "", f"{line} (its metrics are missing from the record)")

    # 4. the benchmark
    if bench is not None:
        _check_benchmark(report, folder, record, bench, intact)

    # 5. claims
    source = rederived or record
    for task_id, metric, value in parsed_claims:
        from dfabench.tasks import normalise_task_id

        task_id = normalise_task_id(task_id)
        if task_id not in source.get("metrics", {}):
            raise UnknownNameError("task in this run", task_id, source.get("metrics", {}))
        entry = source["metrics"][task_id].get(metric)
        if entry is None:
            raise UnknownNameError(f"{task_id} metric", metric, source["metrics"][task_id])
        if entry.get("value") is None:
            report.check(False, "", f"claim {task_id}.{metric}={value}: the metric is undefined "
                                    f"({entry.get('reason', 'no reason given')})")
            continue
        actual = entry["value"]
        report.check(abs(actual - value) <= tolerance,
                     f"claim {task_id}.{metric}={value} holds (value {actual:.6f}, tolerance {tolerance})",
                     f"claim {task_id}.{metric}={value} does not hold: the logs give {actual:.6f} "
                     f"(tolerance {tolerance})")
    return report


def _check_benchmark(report: VerifyReport, folder: RunFolder, record: dict[str, Any], bench: Path,
                     intact: set[str]) -> None:
    from dfabench.data.manifest import load_benchmark
    from dfabench.scoring import task_from_record

    benchmark = load_benchmark(bench)
    recorded = record.get("benchmark", {}).get("fingerprint")
    actual = benchmark.fingerprint()
    report.check(actual == recorded, f"benchmark fingerprint {actual[:12]} matches the run",
                 f"benchmark fingerprint {actual[:12]} != recorded {str(recorded)[:12]}")
    by_id = {s.id: s for s in benchmark.samples}
    for task_id in sorted(intact):
        task = task_from_record(task_id, record["tasks"][task_id], folder.record_path)
        mismatches = []
        for sample_record in folder.read_samples(task_id):
            sample = by_id.get(sample_record["id"])
            if sample is None:
                mismatches.append(f"{sample_record['id']}: not in the benchmark")
            elif (sample_record.get("label") != sample.label or sample_record.get("category") != sample.category
                  or sample_record.get("reference") != task.reference_of(sample)):
                mismatches.append(f"{sample_record['id']}: label/category/reference differ from the benchmark")
        report.check(not mismatches, f"{task_id}: every logged sample matches the benchmark",
                     f"{task_id}: {len(mismatches)} logged samples do not match the benchmark "
                     f"({'; '.join(mismatches[:3])})")
