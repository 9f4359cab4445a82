"""``dfabench leaderboard check ENTRY``: the submission checker, a report a maintainer pastes into a review.

Like MLPerf's submission checker, it validates what was submitted before anyone reads a number:

1. **schema** — ``run.json`` against the published JSON Schema of the run record and every line of every
   per-sample log against the sample record's (``dfabench/resources/schema/``; needs ``jsonschema``: the
   ``check`` extra, also in ``test``; without it the check says it cannot run here);
2. **verification** — everything ``dfabench verify`` checks: the logs' and masks' SHA-256, the task specs'
   and model's fingerprints, the selections, and every count, metric and breakdown re-derived from the logs;
   with ``--bench`` also the benchmark's fingerprint, labels and the exact sample set of each task;
3. **counts** — per task, the samples answered against the samples the benchmark split holds for it, and the
   failed and unparsed answers (a number and a rate);
4. **metrics** — every metric with its interval, as re-derived.

The report (:meth:`CheckResult.markdown`) holds no local path and no time: the build writes it beside the
site for every entry (``reports/ENTRY.md``), and the same entry gives the same report.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dfabench.errors import DfabenchError
from dfabench.escape import markdown_code, markdown_text

if TYPE_CHECKING:
    from dfabench.evidence import VerifyReport

__all__ = ["CheckResult", "check_entry"]

OK, FAIL, CANNOT = "ok", "FAIL", "cannot check here"


@dataclass
class CheckResult:
    name: str
    checks: list[tuple[str, str]] = field(default_factory=list)  # (status, text)
    record: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(status == OK for status, _ in self.checks)

    def verdict(self) -> str:
        failed = sum(status == FAIL for status, _ in self.checks)
        cannot = sum(status == CANNOT for status, _ in self.checks)
        if failed:
            return f"FAILED ({failed} problem(s))"
        if cannot:
            return f"NOT FULLY CHECKED HERE ({cannot} check(s) cannot run on this machine)"
        return "PASSED"

    def markdown(self) -> str:
        lines = [f"## dfabench leaderboard check: {markdown_text(self.name)}", "", f"**{self.verdict()}**", ""]
        lines += _identity(self.record)
        lines += ["### Checks", "", "| result | check |", "|---|---|"]
        lines += [f"| {status} | {markdown_text(text)} |" for status, text in self.checks]
        if self.record is not None:
            lines += ["", *_counts_table(self.record), "", *_metrics_table(self.record)]
        return "\n".join(lines) + "\n"


def check_entry(path: Path, *, bench: Path | None = None, report: VerifyReport | None = None,
                sample_schema: bool = True) -> CheckResult:
    """Check an entry (or a run folder). ``report``: a verification already made (the build's); else
    :func:`dfabench.verify.verify` runs, against ``bench`` when given. ``sample_schema=False`` validates
    only ``run.json`` against the JSON Schema (the logs are still read and checked by verify)."""
    from dfabench.records import load_entry_meta
    from dfabench.store import RunFolder
    from dfabench.verify import read_record, verify

    path = Path(path)
    try:
        name = load_entry_meta(path / "entry.json").get("name") or path.name
    except DfabenchError:
        name = path.name
    result = CheckResult(name)
    try:
        record = read_record(RunFolder(path))
    except DfabenchError as exc:
        result.checks.append((FAIL, f"run.json cannot be read: {_local(exc, path)}"))
        raw = _raw_json(path / "run.json")
        if raw is not None:  # the schema says where it goes wrong, in the published terms
            result.checks += _schema_checks(path, raw, sample_schema=False)
        return result
    result.record = record
    with _beside(_schema_checks, path, record, sample_schema, alone=report is not None or not sample_schema) \
            as schema:
        if report is None:
            try:
                report = verify(path, bench=bench)
            except DfabenchError as exc:
                result.checks += schema()
                result.checks.append((FAIL, f"verification stopped: {_local(exc, path)}"))
                return result
        result.checks += schema()
    result.checks += [(OK, line) for line in report.passed] + [(FAIL, line) for line in report.failed]
    result.checks += [(CANNOT, line) for line in report.unverifiable]
    return result


@contextlib.contextmanager
def _beside(function: Any, *args: Any, alone: bool):
    """Yield a function returning ``function(*args)``: computed in a forked process while the caller goes on (the
    schema pass over the logs beside the verification: each reads every line) on Linux with more than one CPU;
    else, or with ``alone``, in this process when asked for. The results are the same either way."""
    import os
    import sys

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if alone or cpus < 2 or sys.platform != "linux":
        yield lambda: function(*args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        future = pool.submit(function, *args)
        yield future.result


def _raw_json(path: Path) -> Any:
    from dfabench.records import load_json

    try:
        return load_json(path)
    except DfabenchError:
        return None


def _local(exc: Exception, path: Path) -> str:
    """An error's text without the entry's local path (the report is pasted elsewhere)."""
    return str(exc).replace(str(path), path.name)


def _schema_checks(path: Path, record: dict[str, Any], sample_schema: bool) -> list[tuple[str, str]]:
    try:
        import jsonschema
    except ImportError:
        return [(CANNOT, "JSON Schema: the jsonschema package is not installed (pip install jsonschema)")]
    from dfabench.records import SCHEMA_DIR, SCHEMA_FILES

    def validator(kind: str):
        schema = json.loads((SCHEMA_DIR / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))
        return jsonschema.Draft202012Validator(schema)

    out = [_first_error(validator("run-record"), record, "run.json", "run record")]
    if not sample_schema:
        return out
    samples = validator("sample-record")
    for _, info in sorted((record.get("samples") or {}).items()):
        file = path / str(info.get("file", "")) if isinstance(info, dict) else None
        if file is None or not file.is_file():
            continue  # verification reports the missing log
        out.append(_log_errors(samples, file))
    return out


def _first_error(validator: Any, value: Any, where: str, what: str) -> tuple[str, str]:
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))), None)
    if error is None:
        return OK, f"{where} matches the published JSON Schema of the {what}"
    at = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return FAIL, f"{where} does not match the JSON Schema of the {what}: {at}: {error.message[:200]}"


def _log_errors(validator: Any, file: Path) -> tuple[str, str]:
    shape = shape_function(validator.schema)
    verdicts: dict[Any, bool] = {}  # lines of one shape are all valid or all not: validated once
    bad, first, lines = 0, "", 0
    from dfabench.errors import InputError
    from dfabench.records import loads_json

    with open(file, "rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            lines += 1
            try:  # too deeply nested, not UTF-8 or not JSON: one bad line, said as verify says it
                value = loads_json(line, file.name, f"line {lineno}")
            except InputError as exc:
                bad += 1
                first = first or f"line {lineno}: {exc.problem}"
                continue
            key = shape(value)
            valid = verdicts.get(key)
            if valid is None:
                valid = verdicts[key] = validator.is_valid(value)
            if not valid:
                bad += 1
                first = first or f"line {lineno}: {_first_error(validator, value, '', '')[1].split(': ', 1)[-1]}"
    if bad:
        return FAIL, f"{file.name}: {bad} of {lines} lines do not match the JSON Schema of the sample record ({first})"
    return OK, f"{file.name}: all {lines} lines match the published JSON Schema of the sample record"


#: the keywords :func:`shape_function` understands; a schema using any other is validated value by value
_SHAPE_KEYWORDS = {"type", "properties", "additionalProperties", "required", "enum", "const", "description",
                   "title", "$schema", "$id", "$comment", "default", "examples"}


def _kind(value: Any) -> str:
    """The JSON type of a value as the JSON Schema ``type`` keyword tells them apart (a float with an integral
    value is an integer too; a bool is no number)."""
    if value is None or isinstance(value, (bool, str, list, dict)):
        return type(value).__name__
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "integral float" if value.is_integer() else "float"
    return repr(type(value))


def shape_function(schema: Any):
    """``shape(value)``: a hashable key such that two values of the same key are both valid under ``schema`` or
    both not — what the schema's keywords look at (JSON types; the value itself under ``enum`` / ``const``;
    each property under ``properties``, each other member under a constraining ``additionalProperties``).
    Values that a part of the schema does not constrain at all share one key there. A part using a keyword
    outside :data:`_SHAPE_KEYWORDS` keys on the whole value (as safe as validating each one)."""
    if schema is True or schema == {}:
        return lambda value: None
    if not isinstance(schema, dict) or set(k for k in schema if not str(k).startswith("x-")) - _SHAPE_KEYWORDS:
        return lambda value: json.dumps(value, sort_keys=True, default=repr)
    exact = "enum" in schema or "const" in schema
    properties = {name: shape_function(sub) for name, sub in (schema.get("properties") or {}).items()}
    extra = schema.get("additionalProperties", True)
    other = None if extra is True or extra == {} else shape_function(extra)
    required = tuple(schema.get("required") or ())

    def shape(value: Any) -> Any:
        head = (_kind(value), json.dumps(value, sort_keys=True)) if exact else _kind(value)
        if not isinstance(value, dict) or not (properties or other or required):
            return head
        parts = []
        for name, member in value.items():
            if name in properties:
                parts.append((name, properties[name](member)))
            elif other is not None:
                parts.append((name, other(member)))
        missing = tuple(name for name in required if name not in value)
        return head, tuple(parts), missing

    return shape


def _identity(record: dict[str, Any] | None) -> list[str]:
    if record is None:
        return []
    model, bench = record.get("model") or {}, record.get("benchmark") or {}
    args = json.dumps(model.get("args"), sort_keys=True) if model.get("args") else ""
    return [f"- model: {markdown_text(model.get('name'))} {markdown_text(args)} "
            f"(fingerprint {markdown_code(str(model.get('fingerprint'))[:12])}, "
            f"{markdown_text(model.get('distribution'))} {markdown_text(model.get('version'))})",
            f"- benchmark: {markdown_text(bench.get('name'))}, split {markdown_text(bench.get('split'))} "
            f"(fingerprint {markdown_code(str(bench.get('fingerprint'))[:12])})",
            f"- dfabench {markdown_text(record.get('dfabench_version'))}, record schema "
            f"{markdown_text(record.get('schema_version'))}", ""]


def _rate(count: Any, n: Any) -> str:
    if not isinstance(count, int):
        return ""
    return f"{count} ({100.0 * count / n:.1f}%)" if isinstance(n, int) and n > 0 else str(count)


def _counts_table(record: dict[str, Any]) -> list[str]:
    lines = ["### Counts", "", "| task | status | n | of (benchmark split) | failed | unparsed |",
             "|---|---|---|---|---|---|"]
    for task_id, info in sorted((record.get("tasks") or {}).items()):
        counts = (record.get("counts") or {}).get(task_id) or {}
        selection = info.get("selection") if isinstance(info, dict) else None
        available = selection.get("n_available") if isinstance(selection, dict) else None
        n = counts.get("n")
        lines.append(f"| {markdown_text(task_id)} | {markdown_text(info.get('status'))} | {markdown_text(n)} | "
                     f"{markdown_text(available)} | {_rate(counts.get('n_failed'), n)} | "
                     f"{_rate(counts.get('n_unparsed'), n)} |")
    return lines


def _metrics_table(record: dict[str, Any]) -> list[str]:
    from dfabench.leaderboard.markdown import cell

    lines = ["### Metrics (re-derived)", "", "| task | metric | value [95% interval] | n |", "|---|---|---|---|"]
    for task_id, metrics in sorted((record.get("metrics") or {}).items()):
        for name, metric in sorted(metrics.items()):
            shown = cell(metric) if metric.get("value") is not None else f"undefined ({metric.get('reason', '')})"
            lines.append(f"| {markdown_text(task_id)} | {markdown_text(name)} | {markdown_text(shown)} | "
                         f"{markdown_text(metric.get('n'))} |")
    return lines
