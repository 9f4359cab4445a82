"""Helpers shared by the command modules: ``--model-arg`` parsing, terminal tables, the results table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError


def parse_model_args(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; a value that parses as JSON (numbers, true/false, null, lists, objects, a quoted
    string) becomes that value, anything else stays the string as given (``text="{...}"`` passes JSON text)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DfabenchError(f"bad --model-arg {pair!r}: expected KEY=VALUE")
        if key in out:
            raise DfabenchError(f"--model-arg {key!r} given twice")
        try:
            parsed = json.loads(value)
            out[key] = parsed
        except ValueError:
            out[key] = value
    return out


def table(rows: list[list[Any]], headers: list[str]) -> str:
    """A terminal table; every cell passes :func:`dfabench.escape.terminal_text` (no escape sequence, control
    character or line break from a record or a plugin reaches the terminal)."""
    from tabulate import tabulate

    from dfabench.escape import terminal_text

    return tabulate([[cell if cell is None or isinstance(cell, (int, float)) else terminal_text(cell) for cell in row]
                     for row in rows],
                    headers=[terminal_text(h) for h in headers], tablefmt="simple", disable_numparse=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_table(record: dict[str, Any]) -> str:
    """The results table printed at the end of ``run`` and ``score``."""
    rows = []
    for task_id, info in record.get("tasks", {}).items():
        status = info.get("status", "")
        if status.startswith("n/a"):
            rows.append([task_id, "(all)", "n/a", "", "", status[5:]])
            continue
        counts = record.get("counts", {}).get(task_id, {})
        for name, metric in record.get("metrics", {}).get(task_id, {}).items():
            value = metric.get("value")
            ci = ""
            if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
                ci = f"[{metric['ci_low']:.4f}, {metric['ci_high']:.4f}]"
            note = metric.get("reason", "") if value is None else ""
            rows.append([task_id, name, _fmt(value) if value is not None else "undefined", ci, metric.get("n", ""),
                         note])
        rows.append([task_id, "(counts)", "", "", counts.get("n", ""),
                     f"{counts.get('n_failed', 0)} failed{_rate(counts, 'n_failed')}, "
                     f"{counts.get('n_unparsed', 0)} unparsed{_rate(counts, 'n_unparsed')}"])
    return table(rows, ["task", "metric", "value", "95% CI", "n", "note"])


def _rate(counts: dict[str, Any], key: str) -> str:
    """`` (2.2%)``: a count as a share of the task's samples (nothing when there are none)."""
    n = counts.get("n") or 0
    return f" ({100 * (counts.get(key) or 0) / n:.1f}%)" if isinstance(n, int) and n else ""


def print_results(record: dict[str, Any], out_dir: Path | None = None) -> None:
    """The model, the benchmark, the results table and the judge of a run record, on stdout."""
    from dfabench.escape import terminal_text as clean
    from dfabench.redact import scrub_value

    model = record.get("model", {})
    bench = record.get("benchmark", {})
    print(f"model {clean(model.get('name'))} {clean(json.dumps(scrub_value(model.get('args', {}))))} on "
          f"{clean(bench.get('name'))} (split {clean(bench.get('split'))}, fingerprint "
          f"{clean(str(bench.get('fingerprint'))[:12])})")
    print(results_table(record))
    if any(isinstance(v, dict) and v.get("spread") for v in (record.get("variants") or {}).values()):
        # prompt variants (dfabench.scoring.variant_summary), when two or more of one task have numbers
        from dfabench.scoring import SPREAD_HEADERS, spread_rows

        print("spread across prompt variants:")
        print(table(spread_rows(record), SPREAD_HEADERS))
    if record.get("judge"):
        judge = record["judge"]
        output = f", output {clean(judge.get('output'))}" if judge.get("output") else ""
        print(f"judge: {clean(judge.get('model'))} rubric {clean(judge.get('rubric'))} "
              f"v{clean(judge.get('rubric_version'))}{' with image' if judge.get('with_image') else ''}{output}")
        from dfabench.judge.calibration import describe as describe_calibration  # only after a run: keeps --help light

        for report in (judge.get("calibration") or {}).values():
            if isinstance(report, dict) and {"set", "n", "n_in_range", "n_failed", "flagged"} <= set(report):
                print(f"judge {clean(describe_calibration(report))}")
        if judge.get("ensemble"):  # an ensemble's members: coverage and calibration fingerprint
            from dfabench.judge.report import ensemble_lines

            for line in ensemble_lines(judge["ensemble"], None):
                print(f"judge {clean(line.strip())}")
        for pair, figures in (judge.get("agreement") or {}).items():
            score = (figures or {}).get("score") or {}
            rho = score.get("spearman")
            print(f"judge agreement {clean(pair)}: {score.get('n', 0)} samples, Spearman "
                  f"{'undefined' if rho is None else f'{rho:.3f}'} on the overall score")
    if out_dir is not None:
        print(f"run folder: {clean(out_dir)}")


def report_metric_errors(record: dict[str, Any]) -> int:
    """Exit code 1 (and the reasons) when a metric could not be computed or every sample of a task
    failed: the numbers of such a task say nothing about the model."""
    from dfabench.scoring import metric_errors

    errors = metric_errors(record)
    for task_id, counts in record.get("counts", {}).items():
        if counts.get("n") and counts.get("n_failed") == counts["n"]:
            errors.append(f"{task_id}: every one of the {counts['n']} samples failed "
                          f"(see the error field of samples-{task_id}.jsonl)")
    for line in errors:
        print(f"dfabench: {line}", file=sys.stderr)
    return 1 if errors else 0


def warn_broken() -> None:
    """One stderr line per plugin that failed to load."""
    from dfabench.plugins import get_manager

    for info in get_manager().broken():
        print(f"warning: plugin {info.name} ({info.distribution or info.module}) is broken: {info.error}",
              file=sys.stderr)
