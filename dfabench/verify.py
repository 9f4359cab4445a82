"""Reviewer checks: does a run folder (or leaderboard entry) hold what it claims?

``dfabench verify TARGET`` checks, without calling any model, that every number of the run record has
its evidence:

- the run record is readable, of a known schema, and shaped like one;
- every task that is done or has numbers (metrics, counts, breakdowns) has its per-sample log listed
  in ``samples`` and present, and every log has the SHA-256 the record gives (nothing edited after the run);
- each task spec stored in the record matches its fingerprint;
- the model fingerprint is the hash of the recorded model identity, and every per-sample record carries
  it (and names its task);
- each log holds exactly the recorded selection (``tasks[T].selection``: its number of samples and the
  hash of their ids), and that selection record is consistent with the split and ``--limit``;
- the counts, every metric (all its fields) and every breakdown are re-derived from the per-sample logs
  exactly; so are the judge's summary numbers, and the judge identity run.json names (per task and
  overall) is the one the per-sample judge results were produced under;
- with ``--bench DIR``: the benchmark's fingerprint is the one recorded, every logged sample's label,
  category and reference are those of the benchmark, and the logged ids are exactly the samples the task
  takes from the recorded split (its own selection rule, then ``--limit``);
- with ``--claim TASK.METRIC=VALUE``: the claimed number is within ``--tolerance`` of the re-derived value.

A check either holds, does not hold (``FAIL``), or cannot run on this machine (``CANNOT CHECK HERE``: a
resource a metric needs is missing, e.g. the embedding model, and the line says what to install). Anything
but "holds" makes the command exit with 1.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError, UnknownNameError
from dfabench.identity import JudgeIdentity, run_judge_identity
from dfabench.store import RunFolder, samples_file_name, sha256_file

#: re-derived numbers must agree to this absolute difference (floating-point summation order only)
EXACT = 1e-9
#: the sections of a run record that hold one mapping per task
PER_TASK_SECTIONS = ("tasks", "samples", "metrics", "counts", "breakdowns")


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


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(float(a) - float(b)) <= EXACT
    return type(a) is type(b) and a == b


def _same_tree(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return _same(a, b)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_claim(text: str) -> tuple[str, str, float]:
    left, sep, value = text.partition("=")
    task, dot, metric = left.partition(".")
    if not sep or not dot or not task or not metric:
        raise DfabenchError(f"bad --claim {text!r}: expected TASK.METRIC=VALUE, e.g. DF-D.auc=0.91")
    try:
        return task.strip(), metric.strip(), float(value)
    except ValueError:
        raise DfabenchError(f"bad --claim {text!r}: {value!r} is not a number") from None


def read_record(folder: RunFolder) -> dict[str, Any]:
    """The run record, or :class:`InputError` (also for JSON nested too deeply to parse)."""
    try:
        return folder.read_record()
    except RecursionError:
        raise InputError(folder.record_path, "nested too deeply to be a run record") from None


def structure_problems(record: dict[str, Any]) -> list[str]:
    """What keeps ``record`` from being checked at all: a section of the wrong type."""
    problems = []
    for section in PER_TASK_SECTIONS:
        value = record.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(f"run.json: '{section}' must be a mapping of task -> mapping, not {type(value).__name__}")
            continue
        for task_id, info in value.items():
            if not isinstance(info, dict):
                problems.append(f"run.json: '{section}.{task_id}' must be a mapping, not {type(info).__name__}")
    for task_id, metrics in (record.get("metrics") or {}).items() if isinstance(record.get("metrics"), dict) else ():
        for name, metric in (metrics.items() if isinstance(metrics, dict) else ()):
            if not isinstance(metric, dict):
                problems.append(f"run.json: 'metrics.{task_id}.{name}' must be a mapping (value, ci_low, ci_high, n), "
                                f"not {type(metric).__name__}")
    for section in ("model", "benchmark"):
        if not isinstance(record.get(section), dict):
            problems.append(f"run.json: '{section}' must be a mapping, not {type(record.get(section)).__name__}")
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    for key, kind in (("args", dict), ("operational_args", list)):
        if model.get(key) is not None and not isinstance(model[key], kind):
            problems.append(f"run.json: 'model.{key}' must be a {'mapping' if kind is dict else 'list'}, "
                            f"not {type(model[key]).__name__}")
    breakdowns = record.get("breakdowns") if isinstance(record.get("breakdowns"), dict) else {}
    for task_id, info in breakdowns.items():
        if isinstance(info, dict) and info.get("metric_errors") is not None and not isinstance(
                info["metric_errors"], dict):
            problems.append(f"run.json: 'breakdowns.{task_id}.metric_errors' must be a mapping")
    judge = record.get("judge")
    if judge is not None and not isinstance(judge, dict):
        problems.append(f"run.json: 'judge' must be a mapping or null, not {type(judge).__name__}")
    elif judge and judge.get("tasks") is not None and not (
            isinstance(judge["tasks"], dict) and all(isinstance(v, dict) for v in judge["tasks"].values())):
        problems.append("run.json: 'judge.tasks' must be a mapping of task -> mapping")
    return problems


def verify(target: Path, *, bench: Path | None = None, claims: list[str] = (), tolerance: float = 0.005,
           bench_root: Path | None = None) -> VerifyReport:
    """Check a run folder or entry. ``bench``: also check the run against this benchmark (and use it
    to re-derive); ``bench_root``: only use it to re-derive (reference masks)."""
    from dfabench.runner import model_fingerprint
    from dfabench.scoring import metric_errors, task_from_record

    folder = RunFolder(target)
    record = read_record(folder)
    report = VerifyReport(str(target))
    parsed_claims = [parse_claim(c) for c in claims]
    problems = structure_problems(record)
    if problems:
        for problem in problems:
            report.fail(problem)
        return report
    tasks: dict[str, Any] = record.get("tasks") or {}
    listed: dict[str, Any] = record.get("samples") or {}

    # 1. every number has its per-sample log
    numbered = {t for section in ("metrics", "counts", "breakdowns") for t in (record.get(section) or {})}
    for task_id in sorted(numbered - set(tasks)):
        report.fail(f"{task_id}: run.json holds numbers for a task it does not define")
    for task_id in sorted(set(listed) - set(tasks)):
        report.fail(f"{task_id}: run.json lists a per-sample log for a task it does not define")
    for task_id in sorted(t for t in listed if t in tasks and tasks[t].get("status") != "done"):
        report.fail(f"{task_id}: the task has a per-sample log but its status is {_short(tasks[task_id].get('status'))}"
                    ", not done")
    for task_id, info in tasks.items():
        if (info.get("status") == "done" or task_id in numbered) and task_id not in listed:
            what = "has numbers" if task_id in numbered else "is done"
            report.fail(f"{task_id}: the task {what} but run.json lists no per-sample log for it "
                        "(a number without its evidence)")

    # 2. integrity of the per-sample logs
    intact: list[str] = []
    for task_id, info in listed.items():
        expected = samples_file_name(task_id)
        if info.get("file", expected) != expected:
            report.fail(f"{task_id}: run.json names the log {_short(info.get('file'))}, not {expected}")
            continue
        path = folder.samples_path(task_id)
        if not path.exists():
            report.fail(f"{task_id}: per-sample log {path.name} is missing")
            continue
        digest = sha256_file(path)
        if report.check(digest == info.get("sha256"), f"{task_id}: {path.name} matches its SHA-256",
                        f"{task_id}: {path.name} does not match the SHA-256 in run.json (edited after the run?)"):
            intact.append(task_id)
        if isinstance(info.get("masks"), dict) and task_id in intact:  # schema 2: predicted masks are hashed too
            mask_problems = folder.mask_problems(record, task_id)
            report.check(not mask_problems, f"{task_id}: {len(info['masks'])} predicted masks match their SHA-256",
                         "; ".join(mask_problems[:3]) + (f" (and {len(mask_problems) - 3} more)"
                                                         if len(mask_problems) > 3 else ""))

    # 3. task specs
    specs = {}
    for task_id, info in tasks.items():
        try:
            specs[task_id] = task_from_record(task_id, info, folder.record_path)
            report.check(True, f"{task_id}: task spec matches its fingerprint {str(info.get('fingerprint'))[:12]}", "")
        except DfabenchError as exc:
            report.fail(f"{task_id}: {exc}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            report.fail(f"{task_id}: the task spec in run.json is malformed ({type(exc).__name__}: {exc})")

    # 4. the model identity
    model = record["model"]
    recomputed = model_fingerprint(model)
    report.check(model.get("fingerprint") == recomputed,
                 f"model fingerprint {recomputed[:12]} is the hash of the recorded model identity",
                 f"model: fingerprint {str(model.get('fingerprint'))[:12]} is not the hash of the recorded name, "
                 f"version, arguments and identity ({recomputed[:12]}): run.json was edited")

    # 5. what each log holds: its task, its model, the recorded selection
    logs: dict[str, list[dict[str, Any]]] = {}
    for task_id in sorted(t for t in intact if t in tasks):
        try:
            logs[task_id] = folder.read_samples(task_id)
        except DfabenchError as exc:
            report.fail(f"{task_id}: {exc}")
            continue
        _check_log(report, record, task_id, logs[task_id])

    # 6. re-derive counts, metrics and breakdowns, task by task
    root = bench if bench is not None else bench_root
    recorded_path = record["benchmark"].get("path")
    have_bench = root is not None or (isinstance(recorded_path, str) and Path(recorded_path).is_dir())
    rederived = copy.deepcopy(record)
    fresh_tasks: set[str] = set()
    for task_id in sorted(t for t in logs if t in specs):
        if _rederive(report, folder, record, rederived, task_id, logs[task_id], root, have_bench):
            fresh_tasks.add(task_id)
    _check_judge(report, record, rederived, logs, fresh_tasks)

    for line in metric_errors(record):
        report.fail(f"{line} (its metrics are missing from the record)")

    # 7. the benchmark
    if bench is not None:
        _check_benchmark(report, record, bench, logs, specs)

    # 8. claims, against the re-derived numbers only
    from dfabench.plugins import normalise_task_id

    for task_id, metric, value in parsed_claims:
        task_id = normalise_task_id(task_id)
        if task_id not in (record.get("metrics") or {}) and task_id not in fresh_tasks:
            raise UnknownNameError("task in this run", task_id, record.get("metrics") or {})
        if task_id not in fresh_tasks:
            report.fail(f"claim {task_id}.{metric}={value}: {task_id} could not be re-derived (see above)")
            continue
        entry = rederived["metrics"][task_id].get(metric)
        if entry is None:
            raise UnknownNameError(f"{task_id} metric", metric, rederived["metrics"][task_id])
        if entry.get("value") is None:
            text = (f"claim {task_id}.{metric}={value}: the metric is undefined "
                    f"({entry.get('reason', 'no reason given')})")
            if entry.get("unavailable"):
                report.cannot(text)
            else:
                report.fail(text)
            continue
        actual = entry["value"]
        report.check(abs(actual - value) <= tolerance,
                     f"claim {task_id}.{metric}={value} holds (value {actual:.6f}, tolerance {tolerance})",
                     f"claim {task_id}.{metric}={value} does not hold: the logs give {actual:.6f} "
                     f"(tolerance {tolerance})")
    return report


def _check_log(report: VerifyReport, record: dict[str, Any], task_id: str, samples: list[dict[str, Any]]) -> None:
    """A log's records name its task and the run's model, and are exactly the recorded selection."""
    from dfabench.selection import ids_sha256

    other_task = [r for r in samples if r.get("task") != task_id]
    report.check(not other_task, f"{task_id}: every per-sample record names the task",
                 f"{task_id}: {len(other_task)} per-sample records name another task "
                 f"(e.g. {_short(other_task[0].get('task')) if other_task else ''})")
    fingerprint = record["model"].get("fingerprint")
    foreign = Counter(str(r.get("model_fingerprint")) for r in samples if r.get("model_fingerprint") != fingerprint)
    report.check(not foreign, f"{task_id}: every per-sample record was produced by the recorded model",
                 f"{task_id}: {sum(foreign.values())} per-sample records carry another model fingerprint "
                 f"({', '.join('none' if f == 'None' else f[:12] for f in foreign)}) than run.json's model "
                 f"({str(fingerprint)[:12]})")

    ids = [str(r["id"]) for r in samples]
    duplicated = sorted(i for i, n in Counter(ids).items() if n > 1)
    report.check(not duplicated, f"{task_id}: no sample is logged twice",
                 f"{task_id}: {len(duplicated)} sample ids are logged more than once (e.g. {duplicated[:3]})")
    selection = record["tasks"][task_id].get("selection")
    if not isinstance(selection, dict):
        report.fail(f"{task_id}: run.json has no selection record for the task (which samples were asked is "
                    "unknown); re-run it with this dfabench")
        return
    report.check(selection.get("n") == len(ids) and selection.get("ids_sha256") == ids_sha256(ids),
                 f"{task_id}: the log holds the recorded selection ({len(ids)} samples)",
                 f"{task_id}: the log holds {len(ids)} samples whose ids are not the recorded selection "
                 f"({_short(selection.get('n'))} samples, ids {str(selection.get('ids_sha256'))[:12]}): samples "
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
        problems.append(f"split {_short(selection.get('split'))} but the run's split is {_short(bench.get('split'))}")
    limit = selection.get("limit")
    if limit != record.get("limit"):
        problems.append(f"limit {_short(limit)} but the run's --limit is {_short(record.get('limit'))}")
    if bench.get("n_samples") is not None and counts["n_pool"] != bench.get("n_samples"):
        problems.append(f"{counts['n_pool']} samples in the split but the run says {_short(bench.get('n_samples'))}")
    if counts["n_available"] + sum(excluded.values()) != counts["n_pool"]:
        problems.append(f"{counts['n_available']} taken + {sum(excluded.values())} left out != {counts['n_pool']} "
                        "in the split")
    expected = counts["n_available"] if limit is None else (
        min(limit, counts["n_available"]) if isinstance(limit, int) else None)
    if counts["n"] != expected:
        problems.append(f"n {counts['n']} but the split gives {counts['n_available']} samples"
                        + (f" and --limit {limit}" if limit is not None else ""))
    return problems


def _rederive(report: VerifyReport, folder: RunFolder, record: dict[str, Any], rederived: dict[str, Any],
              task_id: str, log: list[dict[str, Any]], root: Path | None, have_bench: bool) -> bool:
    """Re-score one task from its log (as read once by :func:`verify`) into ``rederived`` and compare with
    ``record``; False when it could not be re-scored."""
    from dfabench.scoring import rescore_record

    try:
        # scoring writes per-sample metrics into the records: it gets copies, the log read stays as it is
        rescore_record(folder, rederived, [task_id], write_samples=False, samples={task_id: [dict(r) for r in log]},
                       bench_root=str(root) if root is not None else None)
    except DfabenchError as exc:
        if have_bench:
            report.fail(f"{task_id}: re-scoring failed: {exc}")
        else:
            report.cannot(f"{task_id}: cannot be re-derived here without the benchmark folder "
                          f"(give --bench DIR): {exc}")
        return False
    except Exception as exc:  # noqa: BLE001 - a record that breaks re-scoring (a seed that is no number) fails
        report.fail(f"{task_id}: re-scoring failed on the record's contents ({type(exc).__name__}: {exc})")
        return False
    claimed_counts = (record.get("counts") or {}).get(task_id)
    fresh_counts = rederived["counts"].get(task_id)
    report.check(_same_tree(claimed_counts, fresh_counts), f"{task_id}: counts re-derived ({claimed_counts})",
                 f"{task_id}: counts {_short(claimed_counts, 200)} != re-derived {fresh_counts}")

    claimed = (record.get("metrics") or {}).get(task_id) or {}
    fresh = rederived["metrics"].get(task_id) or {}
    bad, missing_here = [], []
    for name in sorted(set(claimed) | set(fresh)):
        a, b = claimed.get(name), fresh.get(name)
        if isinstance(b, dict) and b.get("unavailable") and not _same_tree(a, b):
            missing_here.append(f"{name}: {b.get('reason')}")
        elif isinstance(a, dict) and a.get("unavailable") and isinstance(b, dict) and b.get("value") is not None:
            bad.append(f"{name} was not computed when the run was scored ({a.get('reason')}); re-score the run "
                       "(`dfabench score RUN_DIR`) where it can be")
        elif a is None or b is None:
            bad.append(f"{name} (only in {'the record' if b is None else 'the re-derivation'})")
        elif not _same_tree(a, b):
            bad += [f"{name}.{key} {_short(a.get(key))} != {_short(b.get(key))}"
                    for key in sorted(set(a) | set(b), key=str) if not _same_tree(a.get(key), b.get(key))]
    if missing_here:
        report.cannot(f"{task_id}: {len(missing_here)} metric(s) cannot be re-derived here: {'; '.join(missing_here)}")
    report.check(not bad, f"{task_id}: {len(fresh) - len(missing_here)} metrics re-derived exactly from the "
                          "per-sample log",
                 f"{task_id}: metrics differ from the re-derivation: {'; '.join(bad[:8])}")

    claimed_breakdowns = (record.get("breakdowns") or {}).get(task_id) or {}
    fresh_breakdowns = rederived["breakdowns"].get(task_id) or {}
    differing = sorted((k for k in set(claimed_breakdowns) | set(fresh_breakdowns)
                        if not _same_tree(claimed_breakdowns.get(k), fresh_breakdowns.get(k))), key=str)
    if differing and missing_here:
        # the providers that could not run here leave their breakdowns short: not a contradiction
        report.cannot(f"{task_id}: breakdowns {', '.join(map(str, differing))} cannot be re-derived here "
                      "(a metric provider cannot run here, see above)")
    else:
        report.check(not differing, f"{task_id}: breakdowns re-derived exactly",
                     f"{task_id}: breakdowns differ from the re-derivation: {', '.join(map(str, differing))}")
    return True


def judge_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The judge's counts (``n_judged``, ``n_failed``, ...) over per-sample records, by the judge metric's rule."""
    from dfabench.metrics import MetricContext
    from dfabench.metrics.judge import judge_metrics

    return judge_metrics(samples, MetricContext(task="", n_boot=1)).breakdowns["judge"]


def _check_judge(report: VerifyReport, record: dict[str, Any], rederived: dict[str, Any],
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
        for sample in samples:
            result = sample.get("judge")
            if (isinstance(result, dict) and not result.get("by_rule") and result.get("error") is None
                    and result.get("score") is not None):
                identity = JudgeIdentity.from_dict(result)
                named.setdefault(identity.key(), identity)
                seen[identity.key()] += 1
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
            bad = [f"{key} {_short(per_task[task_id].get(key))} != {fresh.get(key)}" for key in ("n_judged", "n_failed")
                   if key in per_task[task_id] and not _same(per_task[task_id].get(key), fresh.get(key))]
            report.check(not bad, f"{task_id}: the judge's summary numbers are re-derived",
                         f"{task_id}: the judge's summary numbers differ from the per-sample results: {'; '.join(bad)}")


def _check_benchmark(report: VerifyReport, record: dict[str, Any], bench: Path,
                     logs: dict[str, list[dict[str, Any]]], specs: dict[str, Any]) -> None:
    from dfabench.data.manifest import load_benchmark
    from dfabench.selection import select_samples

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
        report.fail(f"the run's split {_short(split)} is not in the benchmark: {exc}")
        pool = None
    limit = record.get("limit")
    for task_id, samples in sorted(logs.items()):
        task = specs.get(task_id)
        if task is None:
            continue
        mismatches = []
        for sample_record in samples:
            sample = by_id.get(str(sample_record["id"]))
            if sample is None:
                mismatches.append(f"{sample_record['id']}: not in the benchmark")
            elif (sample_record.get("label") != sample.label or sample_record.get("category") != sample.category
                  or sample_record.get("reference") != task.reference_of(sample)):
                mismatches.append(f"{sample_record['id']}: label/category/reference differ from the benchmark")
        report.check(not mismatches, f"{task_id}: every logged sample matches the benchmark",
                     f"{task_id}: {len(mismatches)} logged samples do not match the benchmark "
                     f"({'; '.join(mismatches[:3])})")
        if pool is None:
            continue
        chosen, selection = select_samples(task, pool, str(split), limit if isinstance(limit, int) else None)
        wanted = {s.id for s in chosen}
        logged = {str(r["id"]) for r in samples}
        missing, extra = sorted(wanted - logged), sorted(logged - wanted)
        report.check(not missing and not extra,
                     f"{task_id}: the logged samples are exactly the benchmark's selection ({len(wanted)} of "
                     f"{selection['n_available']} samples of split {split})",
                     f"{task_id}: the logged samples are not the benchmark's selection for split {split}: "
                     f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} not in it (e.g. {extra[:3]})")
        stored = record["tasks"][task_id].get("selection")
        if isinstance(stored, dict):
            differing = [f"{k} {_short(stored.get(k))} != {_short(v)}" for k, v in selection.items()
                         if not _same_tree(stored.get(k), v)]
            report.check(not differing, f"{task_id}: the selection record is the benchmark's",
                         f"{task_id}: the selection record differs from the benchmark's: {'; '.join(differing)}")
