"""Reported entries: numbers copied from a paper or a repository, shown apart and never ranked.

A reproduced entry (``leaderboard/entries/NAME/``) carries its per-sample logs and every number on it is
re-derived by ``dfabench verify``. A *reported* entry has no logs: it is what a paper or a repository
states, with where it says so. It is shown in its own table, with its citation, split and protocol, and
never ranked with (or against) verified entries — its numbers cannot be checked here, and its protocol
may differ from dfabench's in ways a number does not show.

The format (one JSON file per model, benchmark, split and task in ``leaderboard/reported/``;
:data:`REPORTED_ENTRY` is its definition, :func:`reported_schema` its JSON Schema)::

    {
      "format": "dfabench-reported-entry", "format_version": 1,
      "name": "ForgeryTalker",                    # the entry as shown
      "model": "ForgeryTalker (DFF)",             # the model, as its authors name it
      "benchmark": "MMTT", "split": "test", "task": "FL",
      "n": 21679,                                 # samples evaluated, null when the source does not say
      "scale": 100,                               # the source's numbers are the metric times this
      "metrics": {"cider": 69.48, "iou": 66.06},  # metric name (dfabench's names) -> the number as printed
      "protocol": "how the source computed them",
      "citation": {"text": "Authors, title, venue, year", "url": "https://...", "where": "Table 2"},
      "notes": "optional"
    }

The build divides by ``scale`` so that the columns read as dfabench's (fractions for IoU, CIDEr-D as
pycocoevalcap prints it) and keeps the source's numbers next to them in ``leaderboard.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dfabench.errors import InputError
from dfabench.records.types import COUNT_OR_NULL, STR, STR_OR_NULL, MapOf, Obj, Scalar

FORMAT = "dfabench-reported-entry"
FORMAT_VERSION = 1

CITATION = Obj({"text": STR, "url": Scalar("string", pattern=r"^https://"), "where": STR_OR_NULL},
               required=("text", "url"), description="where the numbers are published")
REPORTED_ENTRY = Obj({
    "format": Scalar("string", enum=(FORMAT,)),
    "format_version": Scalar("integer", enum=(FORMAT_VERSION,)),
    "name": Scalar("string", pattern=r"\S"),
    "model": STR,
    "benchmark": STR,
    "split": STR,
    "task": STR,
    "n": COUNT_OR_NULL,
    "scale": Scalar("number", minimum=1e-12, description="the source's numbers are the metric times this"),
    "metrics": MapOf(Scalar("number"), description="metric name -> the number as the source prints it"),
    "protocol": Scalar("string", pattern=r"\S"),
    "citation": CITATION,
    "notes": STR_OR_NULL,
}, required=("format", "format_version", "name", "model", "benchmark", "split", "task", "scale", "metrics",
             "protocol", "citation"), description="a reported leaderboard entry (leaderboard/reported/*.json)")


@dataclass
class ReportedEntry:
    path: Path
    data: dict[str, Any]

    @property
    def values(self) -> dict[str, float]:
        """The metrics on dfabench's scale."""
        return {name: value / self.data["scale"] for name, value in sorted(self.data["metrics"].items())}


def reported_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a reported-entry file."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:dfabench:schema:reported-entry:{FORMAT_VERSION}", "title": "dfabench reported entry",
            **REPORTED_ENTRY.schema()}


def load_reported(path: Path) -> ReportedEntry:
    """One reported-entry file; :class:`InputError` naming the file and the problem."""
    from dfabench.plugins import normalise_task_id
    from dfabench.records import load_json

    data = load_json(path)
    problem = REPORTED_ENTRY.problem(data, "$")
    if problem is None and not data["metrics"]:
        problem = "$.metrics: no numbers"
    if problem is None:
        bad = [name for name, value in data["metrics"].items() if not math.isfinite(value)]
        problem = f"$.metrics.{bad[0]}: not a finite number" if bad else None
    if problem:
        raise InputError(path, problem)
    return ReportedEntry(Path(path), {**data, "task": normalise_task_id(data["task"])})


def load_reported_folder(folder: Path) -> tuple[list[ReportedEntry], list[str]]:
    """Every ``*.json`` of ``folder`` (none when it does not exist), sorted by file name, and
    ``"FILE: problem"`` for each file that is not a reported entry."""
    entries, problems = [], []
    if not Path(folder).is_dir():
        return entries, problems
    for path in sorted(Path(folder).glob("*.json")):
        try:
            entries.append(load_reported(path))
        except InputError as exc:  # the problem without the folder's path: the outputs hold no local path
            problems.append(f"reported/{path.name}: {exc.problem}")
    return entries, problems
