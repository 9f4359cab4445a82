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
- a prompt variant (``TASK@NAME``, :mod:`dfabench.tasks`): every logged answer was asked the variant's question
  (its prompt hash), and the spread across the variants (``variants`` in run.json) is re-derived exactly;
- with ``--claim TASK.METRIC=VALUE``: the claimed number is within ``--tolerance`` of the re-derived value.

A check either holds, does not hold (``FAIL``), or cannot run on this machine (``CANNOT CHECK HERE``: a
resource a metric needs is missing, e.g. the embedding model, and the line says what to install). Anything
but "holds" makes the command exit with 1.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError, UnknownNameError
from dfabench.evidence import EXACT, VerifyReport, check_benchmark, check_judge, check_log, same_tree, short
from dfabench.records import model_fingerprint
from dfabench.store import RunFolder, SampleLog, samples_file_name, sha256_file

#: the sections of a run record that hold one mapping per task
PER_TASK_SECTIONS = ("tasks", "samples", "metrics", "counts", "breakdowns")


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
    from dfabench.scoring import task_from_record

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
    shard = record.get("shard")
    if shard:
        report.fail(f"this is shard {short(shard.get('index'))}/{short(shard.get('count'))} of a run, not a whole "
                    "run: its numbers are of that part only; `dfabench merge` the shards and verify the merged run")

    # 1. every number has its per-sample log
    numbered = {t for section in ("metrics", "counts", "breakdowns") for t in (record.get(section) or {})}
    for task_id in sorted(numbered - set(tasks)):
        report.fail(f"{task_id}: run.json holds numbers for a task it does not define")
    for task_id in sorted(set(listed) - set(tasks)):
        report.fail(f"{task_id}: run.json lists a per-sample log for a task it does not define")
    for task_id in sorted(t for t in listed if t in tasks and tasks[t].get("status") != "done"):
        report.fail(f"{task_id}: the task has a per-sample log but its status is {short(tasks[task_id].get('status'))}"
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
            report.fail(f"{task_id}: run.json names the log {short(info.get('file'))}, not {expected}")
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

    # 5. what each log holds: its task, its model, the recorded selection (each log is read once, as
    # compact columns: flat in memory whatever its size; its records are read again from the file when needed)
    logs: dict[str, SampleLog] = {}
    try:
        return _verify_logs(report, folder, record, tasks, intact, specs, logs, parsed_claims, bench, bench_root,
                            tolerance)
    finally:
        for log in logs.values():
            log.close()


def _verify_logs(report: VerifyReport, folder: RunFolder, record: dict[str, Any], tasks: dict[str, Any],
                 intact: list[str], specs: dict[str, Any], logs: dict[str, SampleLog],
                 parsed_claims: list[tuple[str, str, float]], bench: Path | None, bench_root: Path | None,
                 tolerance: float) -> VerifyReport:
    """Steps 5 to 8 of :func:`verify`: the logs' contents, the re-derivation, the benchmark, the claims."""
    from dfabench.scoring import metric_errors

    for task_id in sorted(t for t in intact if t in tasks):
        try:
            logs[task_id] = folder.sample_log(task_id)
        except DfabenchError as exc:
            report.fail(f"{task_id}: {exc}")
            continue
        check_log(report, record, task_id, logs[task_id])

    # 6. re-derive counts, metrics and breakdowns, task by task
    root = bench if bench is not None else bench_root
    recorded_path = record["benchmark"].get("path")
    have_bench = root is not None or (isinstance(recorded_path, str) and Path(recorded_path).is_dir())
    rederived = copy.deepcopy(record)
    fresh_tasks: set[str] = set()
    for task_id in sorted(t for t in logs if t in specs):
        if _rederive(report, folder, record, rederived, task_id, logs[task_id], root, have_bench):
            fresh_tasks.add(task_id)
    check_judge(report, record, rederived, logs, fresh_tasks)
    check_variants(report, record, rederived, specs, logs)

    for line in metric_errors(record):
        report.fail(f"{line} (its metrics are missing from the record)")

    # 7. the benchmark
    if bench is not None:
        check_benchmark(report, record, bench, logs, specs)

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


def check_variants(report: VerifyReport, record: dict[str, Any], rederived: dict[str, Any], specs: dict[str, Any],
                   logs: dict[str, SampleLog]) -> None:
    """Prompt variants: each variant's log was asked the variant's own question, and the spread across the
    variants is the one the re-derived numbers give (:func:`dfabench.scoring.variant_summary`)."""
    from dfabench.files import canonical_json, sha256_text
    from dfabench.scoring import variant_summary

    for task_id in sorted(t for t in specs if (specs[t].variant is not None or "@" in t) and specs[t].id != t):
        report.fail(f"{task_id}: run.json keeps the spec of {specs[task_id].id} under it (a variant's numbers are "
                    "never another task's)")
    for task_id in sorted(t for t in logs if t in specs and specs[t].variant is not None):
        spec, info = specs[task_id], record["tasks"][task_id]
        if (info.get("variant"), info.get("base")) != (spec.variant, spec.base_id):
            report.fail(f"{task_id}: run.json names it variant {short(info.get('variant'))} of "
                        f"{short(info.get('base'))}, its spec says {spec.variant} of {spec.base_id}")
        asked = sha256_text(canonical_json(spec.messages()))
        other = sum(1 for r in logs[task_id] if r.get("prompt_hash") not in (asked, "score"))
        report.check(not other, f"{task_id}: every answer was asked the variant's question ({asked[:12]})",
                     f"{task_id}: {other} per-sample records were asked another question than the variant's "
                     f"(prompt hash not {asked[:12]})")
    claimed, fresh = record.get("variants") or {}, variant_summary(rederived)
    if claimed or fresh:
        differing = sorted(k for k in set(claimed) | set(fresh) if not same_tree(claimed.get(k), fresh.get(k)))
        report.check(not differing, f"spread across prompt variants re-derived exactly ({', '.join(fresh)})",
                     f"the spread across prompt variants of {', '.join(differing)} differs from the re-derivation")


def _rederive(report: VerifyReport, folder: RunFolder, record: dict[str, Any], rederived: dict[str, Any],
              task_id: str, log: SampleLog, root: Path | None, have_bench: bool) -> bool:
    """Re-score one task from its log (as read once by :func:`verify`) into ``rederived`` and compare with
    ``record``; False when it could not be re-scored."""
    from dfabench.scoring import rescore_record

    tolerances: dict[str, dict[str, float]] = {}
    try:
        # a log read as columns is scored from its columns; nothing is written into it
        rescore_record(folder, rederived, [task_id], write_samples=False, samples={task_id: log},
                       bench_root=str(root) if root is not None else None, tolerances=tolerances)
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
    report.check(same_tree(claimed_counts, fresh_counts), f"{task_id}: counts re-derived ({claimed_counts})",
                 f"{task_id}: counts {short(claimed_counts, 200)} != re-derived {fresh_counts}")

    claimed = (record.get("metrics") or {}).get(task_id) or {}
    fresh = rederived["metrics"].get(task_id) or {}
    bad, missing_here, approximate = [], [], []
    for name in sorted(set(claimed) | set(fresh)):
        a, b = claimed.get(name), fresh.get(name)
        tolerance = tolerances.get(task_id, {}).get(name, EXACT)
        if isinstance(b, dict) and b.get("unavailable") and not same_tree(a, b):
            missing_here.append(f"{name}: {b.get('reason')}")
        elif isinstance(a, dict) and a.get("unavailable") and isinstance(b, dict) and b.get("value") is not None:
            bad.append(f"{name} was not computed when the run was scored ({a.get('reason')}); re-score the run "
                       "(`dfabench score RUN_DIR`) where it can be")
        elif a is None or b is None:
            bad.append(f"{name} (only in {'the record' if b is None else 'the re-derivation'})")
        elif not same_tree(a, b, tolerance):
            bad += [f"{name}.{key} {short(a.get(key))} != {short(b.get(key))}"
                    for key in sorted(set(a) | set(b), key=str) if not same_tree(a.get(key), b.get(key), tolerance)]
        elif tolerance != EXACT:
            # named whether or not this machine needed the tolerance, so that the line (and the leaderboard's
            # report that quotes it) is the same on every machine
            approximate.append(f"{name} to within {tolerance:g}, its declared tolerance")
    if missing_here:
        report.cannot(f"{task_id}: {len(missing_here)} metric(s) cannot be re-derived here: {'; '.join(missing_here)}")
    within = f" ({', '.join(approximate)}: model inference differs in the last digits across machines)" \
        if approximate else ""
    report.check(not bad, f"{task_id}: {len(fresh) - len(missing_here)} metrics re-derived exactly from the "
                          f"per-sample log{within}",
                 f"{task_id}: metrics differ from the re-derivation: {'; '.join(bad[:8])}")

    claimed_breakdowns = (record.get("breakdowns") or {}).get(task_id) or {}
    fresh_breakdowns = rederived["breakdowns"].get(task_id) or {}
    differing = sorted((k for k in set(claimed_breakdowns) | set(fresh_breakdowns)
                        if not same_tree(claimed_breakdowns.get(k), fresh_breakdowns.get(k))), key=str)
    if differing and missing_here:
        # the providers that could not run here leave their breakdowns short: not a contradiction
        report.cannot(f"{task_id}: breakdowns {', '.join(map(str, differing))} cannot be re-derived here "
                      "(a metric provider cannot run here, see above)")
    else:
        report.check(not differing, f"{task_id}: breakdowns re-derived exactly",
                     f"{task_id}: breakdowns differ from the re-derivation: {', '.join(map(str, differing))}")
    return True
