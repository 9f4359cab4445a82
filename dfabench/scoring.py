"""The score stage: per-sample logs -> metrics, counts and breakdowns. It never calls a model.

``dfabench score RUN_DIR`` re-reads the per-sample logs and recomputes everything with the seed
of the run, so it gives the numbers of the run again, exactly; the same function is what
``dfabench judge`` calls after judging and what ``dfabench verify`` compares against.

Streaming. A log is read once as compact columns (:meth:`dfabench.store.RunFolder.sample_log`, a few
dozen bytes a sample); the metric providers get that :class:`~dfabench.store.SampleLog`, a sequence of
the records (iterating it reads them again from the file, one at a time), and the built-in ones read its
columns instead; the log is then written again line by line, each record with its per-sample metrics
merged in, hashed as it is written. So a run of a million samples is scored in flat memory, to the same
bytes as :func:`score_records` on the list of its records gives. Records already in memory (the run
stage, the judge stage) are scored as a list, in place, as before; so is a log whose ids are not unique
(which ``dfabench verify`` refuses anyway).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.metrics import MetricContext, MetricOutput, MetricResult, RowValues
from dfabench.redact import redact
from dfabench.store import RunFolder, SampleLog, Transaction, samples_file_name
from dfabench.tasks import DEFAULT_VARIANT, TaskSpec, split_variant


@dataclass
class TaskScores:
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    breakdowns: dict[str, Any] = field(default_factory=dict)
    #: metric -> the absolute difference within which a re-derivation agrees (see MetricEntry.tolerance);
    #: metrics not listed must agree exactly. Not written into the record: it is the providers' property
    tolerances: dict[str, float] = field(default_factory=dict)


def count_outcomes(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """``n`` samples, ``n_failed`` (the model or the image failed), ``n_unparsed`` (answered, not parseable)."""
    columns = getattr(records, "columns", None)
    if columns is not None:
        failed = columns.truthy("error")
        n_unparsed = int((~failed & columns.truthy("unparsed")).sum())
        return {"n": len(records), "n_failed": int(failed.sum()), "n_unparsed": n_unparsed}
    n_failed = sum(1 for r in records if r.get("error"))
    n_unparsed = sum(1 for r in records if not r.get("error") and r.get("unparsed"))
    return {"n": len(records), "n_failed": n_failed, "n_unparsed": n_unparsed}


def score_records(task: TaskSpec, records: list[dict[str, Any]], *, seed: int = 0, n_boot: int = 1000,
                  bench_root: str | None = None, run_dir: str | None = None, stream=None) -> TaskScores:
    """Run every metric provider of ``task`` on ``records``; per-sample values are written into
    each record's ``metrics`` (in place)."""
    scores, parts = _run_providers(task, records, seed=seed, n_boot=n_boot, bench_root=bench_root,
                                   run_dir=run_dir, stream=stream)
    merged: dict[Any, dict[str, Any]] = {}
    for part in parts:
        for sample_id, values in part.items():
            merged.setdefault(sample_id, {}).update(values)
    by_id = {r["id"]: r for r in records}
    for sample_id, values in merged.items():
        record = by_id.get(sample_id)
        if record is not None:
            record["metrics"] = {**(record.get("metrics") or {}), **values}
    return scores


def score_log(task: TaskSpec, log: SampleLog, *, seed: int = 0, n_boot: int = 1000, bench_root: str | None = None,
              run_dir: str | None = None, stream=None) -> tuple[TaskScores, list[Mapping[Any, dict[str, Any]]]]:
    """:func:`score_records` of a log read as columns (its ids unique): the scores, and the providers'
    per-sample values in provider order, for :func:`scored_records` to merge into the records as the log is
    written again."""
    return _run_providers(task, log, seed=seed, n_boot=n_boot, bench_root=bench_root, run_dir=run_dir,
                          stream=stream)


_MISSING = object()


def scored_records(log: Sequence[dict[str, Any]],
                   parts: list[Mapping[Any, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """The records of ``log`` one by one, each with the per-sample values of ``parts`` merged into its
    ``metrics`` as :func:`score_records` merges them (the ids are unique)."""
    lookups = [(part.at_row, True) if isinstance(part, RowValues) else (part.get, False) for part in parts if part]
    for row, record in enumerate(log):
        values: dict[str, Any] | None = None
        for lookup, by_row in lookups:
            found = lookup(row) if by_row else lookup(record["id"], _MISSING)
            if (found is None and by_row) or found is _MISSING:
                continue
            if values is None:
                values = {}
            values.update(found)
        if values is not None:
            record["metrics"] = {**(record.get("metrics") or {}), **values}
        yield record


def _run_providers(task: TaskSpec, records: Sequence[dict[str, Any]], *, seed: int, n_boot: int,
                   bench_root: str | None, run_dir: str | None,
                   stream) -> tuple[TaskScores, list[Mapping[Any, dict[str, Any]]]]:
    from dfabench.plugins import get_manager

    registry = get_manager().metrics
    output = MetricOutput()
    parts: list[Mapping[Any, dict[str, Any]]] = []
    errors: dict[str, str] = {}
    tolerances: dict[str, float] = {}
    for provider_name in task.metrics:
        context = MetricContext(task=task.id, seed=seed, n_boot=n_boot,
                                options=dict(task.metric_options.get(provider_name) or {}),
                                bench_root=bench_root, run_dir=run_dir)
        try:
            entry = registry.get(provider_name)
            result = entry.load()(records, context)
        except DfabenchError:
            raise  # bad input (e.g. reference masks not found): nothing is written
        except Exception as exc:  # noqa: BLE001 - a broken metric is reported, never a number
            errors[provider_name] = f"{type(exc).__name__}: {redact(exc)}"  # a download URL may be signed
            (stream or sys.stderr).write(f"{task.id}: metric {provider_name!r} failed: {errors[provider_name]}\n")
            continue
        output.metrics.update(result.metrics)
        output.breakdowns.update(result.breakdowns)
        parts.append(result.per_sample)
        if entry.tolerance:
            tolerances.update((name, float(entry.tolerance)) for name in result.metrics)
    scores = TaskScores(counts=count_outcomes(records), breakdowns=dict(output.breakdowns), tolerances=tolerances)
    scores.metrics = {name: _result_dict(value) for name, value in output.metrics.items()}
    if errors:
        scores.breakdowns["metric_errors"] = errors
    return scores, parts


def metric_errors(record: dict[str, Any]) -> list[str]:
    """``TASK: provider: error`` for every metric provider that failed in a run record."""
    return [f"{task}: metric {name!r} failed: {error}"
            for task, breakdowns in record.get("breakdowns", {}).items()
            for name, error in (breakdowns.get("metric_errors") or {}).items()]


def _result_dict(value: MetricResult | dict[str, Any]) -> dict[str, Any]:
    return value.to_dict() if isinstance(value, MetricResult) else dict(value)


def rescore_run(run_dir: str | Path, tasks: list[str] | None = None, *, bench_root: str | None = None,
                stream=None) -> dict[str, Any]:
    """Recompute the metrics of a run folder from its per-sample logs and rewrite run.json (and the
    logs' per-sample metrics) in one transaction. A log or predicted mask that does not match the
    hashes in run.json is refused (exit 2, nothing written): re-hashing it would make it verify."""
    folder = RunFolder(run_dir)
    with folder.transaction() as tx:
        record = folder.read_record()
        folder.check_integrity(record, "re-score it")
        record = rescore_record(folder, record, tasks, bench_root=bench_root, stream=stream, tx=tx)
        tx.write_record(record)
    return record


def rescore_record(folder: RunFolder, record: dict[str, Any], tasks: list[str] | None = None, *,
                   bench_root: str | None = None, write_samples: bool = True, stream=None,
                   tx: Transaction | None = None, samples: dict[str, list[dict[str, Any]]] | None = None,
                   tolerances: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """Recompute metrics into ``record`` (a copy is not made). Task specs come from the record
    itself, so a run is re-scored with the spec it was run with.

    ``samples``: per-sample records to score instead of the folder's logs (e.g. just judged: a list, whose
    records get their per-sample metrics in place), or a :class:`SampleLog` (scored as columns);
    ``write_samples``: stage the re-scored logs in ``tx`` and update their SHA-256 in ``record``
    (the caller stages run.json and commits); ``tolerances``: filled with each task's
    :attr:`TaskScores.tolerances` (``dfabench verify`` compares with them)."""
    if write_samples and tx is None:
        raise ValueError("rescore_record(write_samples=True) stages the logs: pass the folder's transaction tx")
    seed = int(record.get("seed", 0))
    n_boot = int(record.get("n_boot", 1000))
    if bench_root is None:
        candidate = record.get("benchmark", {}).get("path")
        bench_root = candidate if candidate and Path(candidate).is_dir() else None
    for task_id, info in record.get("tasks", {}).items():
        if tasks is not None and task_id not in tasks:
            continue
        if task_id not in record.get("samples", {}):
            continue
        spec = task_from_record(task_id, info, folder.record_path)
        records = (samples or {}).get(task_id)
        log, owned = None, records is None
        if records is None:
            log = folder.sample_log(task_id)
            if log.columns.duplicate_ids():  # per-sample values go by id: the list path, as it always did
                log.close()
                log, records = None, folder.read_samples(task_id)
        elif isinstance(records, SampleLog):
            log, records = records, None
        if log is not None:
            try:
                scored, parts = score_log(spec, log, seed=seed, n_boot=n_boot, bench_root=bench_root,
                                          run_dir=str(folder.path), stream=stream)
                digest = tx.write_samples(task_id, scored_records(log, parts)) if write_samples else None
            finally:
                if owned:
                    log.close()
        else:
            scored = score_records(spec, records, seed=seed, n_boot=n_boot, bench_root=bench_root,
                                   run_dir=str(folder.path), stream=stream)
            digest = tx.write_samples(task_id, records) if write_samples else None
        record.setdefault("metrics", {})[task_id] = scored.metrics
        record.setdefault("counts", {})[task_id] = scored.counts
        record.setdefault("breakdowns", {})[task_id] = scored.breakdowns
        if tolerances is not None:
            tolerances[task_id] = scored.tolerances
        if write_samples:
            entry = record.setdefault("samples", {}).get(task_id) or {}
            record["samples"][task_id] = {**entry, "file": samples_file_name(task_id), "sha256": digest}
    set_variant_summary(record)
    return record


# --------------------------------------------------------------------------- prompt variants

#: the spread of the share of unparsed answers is reported beside the metrics' (counts, not a metric)
UNPARSED_RATE = "unparsed_rate"


def variant_summary(record: dict[str, Any]) -> dict[str, Any]:
    """The prompt variants of each task in a run record and the spread of their numbers.

    For each task run under at least one prompt variant (``TASK@NAME``, :mod:`dfabench.tasks`): ``tasks``
    (variant name -> task key, ``default`` first), and, when two or more of them are done on the same samples,
    ``spread``: for every metric all of them report, and for the share of unparsed answers
    (``unparsed_rate``), the value of each variant (``values``) and ``min``, ``max``, ``range`` (max - min)
    and ``std`` (the population standard deviation, ddof 0) across the variants; ``null`` with a ``reason``
    where a variant's value is undefined. A pure function of the record's metrics and counts: ``dfabench
    score`` and ``merge`` compute it again, ``dfabench verify`` re-derives it from the re-derived numbers."""
    groups: dict[str, dict[str, str]] = {}
    for key in record.get("tasks") or {}:
        base, name = split_variant(key)
        groups.setdefault(base, {})[name] = key
    out: dict[str, Any] = {}
    for base, members in groups.items():  # in the record's order of tasks
        if set(members) == {DEFAULT_VARIANT}:
            continue  # no variant: nothing to summarise (records without variants stay as they were)
        names = sorted(members, key=lambda n: (n != DEFAULT_VARIANT, n))
        entry: dict[str, Any] = {"tasks": {n: members[n] for n in names}}
        done = [n for n in names if (record["tasks"][members[n]] or {}).get("status") == "done"
                and members[n] in (record.get("metrics") or {})]
        selections = {str(((record["tasks"][members[n]] or {}).get("selection") or {}).get("ids_sha256"))
                      for n in done}
        if len(done) < 2:
            entry["reason"] = "fewer than two variants have numbers: no spread"
        elif len(selections) != 1:
            entry["reason"] = "the variants answered different samples: their numbers are not compared"
        else:
            entry["spread"] = _spread(record, {n: members[n] for n in done})
        out[base] = entry
    return out


def _spread(record: dict[str, Any], members: dict[str, str]) -> dict[str, Any]:
    import statistics

    metrics = {n: (record.get("metrics") or {}).get(key) or {} for n, key in members.items()}
    first = next(iter(metrics.values()))
    names = [m for m in first if all(isinstance(metrics[n].get(m), dict) for n in members)]
    columns: dict[str, dict[str, Any]] = {m: {n: metrics[n][m].get("value") for n in members} for m in names}
    rates: dict[str, Any] = {}
    for n, key in members.items():
        counts = (record.get("counts") or {}).get(key) or {}
        total = counts.get("n")
        rates[n] = (counts.get("n_unparsed") or 0) / total if isinstance(total, int) and total > 0 else None
    columns[UNPARSED_RATE] = rates
    out: dict[str, Any] = {}
    for metric, values in columns.items():
        undefined = [n for n, v in values.items() if not _is_number(v)]
        if undefined:
            out[metric] = {"values": values, "min": None, "max": None, "range": None, "std": None,
                           "reason": f"undefined for variant(s) {', '.join(undefined)}"}
            continue
        numbers = [float(v) for v in values.values()]
        low, high = min(numbers), max(numbers)
        # statistics.pstdev is correctly rounded: equal values give exactly 0
        out[metric] = {"values": values, "min": low, "max": high, "range": high - low,
                       "std": statistics.pstdev(numbers)}
    return out


def _is_number(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def set_variant_summary(record: dict[str, Any]) -> None:
    """Write :func:`variant_summary` into ``record["variants"]`` (removed when the run has no variants)."""
    summary = variant_summary(record)
    if summary:
        record["variants"] = summary
    else:
        record.pop("variants", None)


def spread_rows(record: dict[str, Any]) -> list[list[Any]]:
    """The rows of the prompt-variant spread table ``run`` and ``score`` print: per task, its headline metrics
    (the installed spec's leaderboard columns; every metric for a task no installed plugin defines) and the
    unparsed rate: min, max, max - min, std and each variant's value."""
    from dfabench.plugins import get_manager

    registry = get_manager().tasks
    rows: list[list[Any]] = []
    for base, entry in (record.get("variants") or {}).items():
        spread = entry.get("spread") if isinstance(entry, dict) else None
        if not isinstance(spread, dict):
            if isinstance(entry, dict) and entry.get("reason"):
                rows.append([base, "", "", "", "", "", str(entry["reason"])])
            continue
        headline = list(registry.get(base).columns) if base in registry and registry.get(base).columns else [
            m for m in spread if m != UNPARSED_RATE]
        for metric in [m for m in headline if m in spread] + [UNPARSED_RATE]:
            figures = spread.get(metric)
            if not isinstance(figures, dict):
                continue
            values = " / ".join(f"{n} {_short_number(v)}" for n, v in (figures.get("values") or {}).items())
            if figures.get("min") is None:
                rows.append([base, metric, "", "", "", "", f"{values} ({figures.get('reason')})"])
                continue
            rows.append([base, metric, _short_number(figures["min"]), _short_number(figures["max"]),
                         _short_number(figures["range"]), _short_number(figures["std"]), values])
    return rows


SPREAD_HEADERS = ["task", "metric", "min", "max", "max-min", "std", "per variant"]


def _short_number(value: Any) -> str:
    return f"{value:.4f}" if _is_number(value) else "undefined"


def task_from_record(task_id: str, info: dict[str, Any], source: Any) -> TaskSpec:
    """The task spec a run used, rebuilt from run.json (its fingerprint is checked)."""
    from dfabench.errors import InputError

    spec = info.get("spec")
    if not isinstance(spec, dict):
        raise InputError(source, f"task {task_id} has no spec in the run record")
    task = TaskSpec.from_dict(spec, source=str(source))
    if info.get("fingerprint") and task.fingerprint != info["fingerprint"]:
        raise InputError(source, f"task {task_id}: the stored spec does not match its fingerprint "
                                 "(the run record was edited)")
    return task
