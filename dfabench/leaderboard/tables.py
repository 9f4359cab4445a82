"""``leaderboard/leaderboard.csv``: one row per entry, task and metric, verified and reported alike.

Long format, so that a spreadsheet or pandas can pivot it any way: ``provenance`` is ``verified`` (re-derived
from per-sample logs, ranked) or ``reported`` (copied from a paper or repository, never ranked). Cells that an
entry cannot fill (a capability it does not have: ``status`` begins with ``n/a``) are left empty. A text
that a spreadsheet would read as a formula (``= + - @`` first) is prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
from typing import Any

COLUMNS = ("provenance", "benchmark", "split", "task", "entry", "model", "rank", "metric", "value", "ci_low",
           "ci_high", "n", "n_failed", "n_unparsed", "status", "source")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def _number(value: Any) -> str:
    return "" if value is None else repr(float(value))


def render_csv(data: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for board in data["boards"]:
        for task_id, task in board["tasks"].items():
            for row in task["rows"]:
                counts = row["counts"] or {}
                for metric in task["columns"]:
                    value = None if row["na"] else row["values"].get(metric)
                    value = value or {}
                    writer.writerow([_safe(x) for x in (
                        "verified", board["benchmark"], board["split"], task_id, row["entry"], row["model"],
                        row["rank"], metric, _number(value.get("value")), _number(value.get("ci_low")),
                        _number(value.get("ci_high")), counts.get("n"), counts.get("n_failed"),
                        counts.get("n_unparsed"), row["status"], row["report"])])
    for row in data["reported"]:
        for metric, value in row["values"].items():
            writer.writerow([_safe(x) for x in (
                "reported", row["benchmark"], row["split"], row["task"], row["entry"], row["model"], None, metric,
                _number(value), None, None, row["n"], None, None, "reported", row["citation"]["url"])])
    return buffer.getvalue()
