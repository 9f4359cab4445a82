"""How far two graders agree: ``dfabench judge agree RUN --judges A,B`` (or ``--judges A --human ratings.csv``).

Every judge run keeps, beside the per-sample logs, an archive of its judgments: ``judgments-<NAME>.jsonl`` (one
line per judged sample: task, id, overall score and per-criterion scores, and the judge identity), where NAME is
made from the judge identity (:func:`archive_name`). A later run with another judge replaces the logs' ``judge``
fields but not the earlier archive, so two judges of the same answers can be compared. ``current`` names the
judgments in the logs themselves.

Human ratings come as a CSV with the columns ``sample_id``, ``criterion`` and ``score`` (and optionally ``task``;
``dfabench view`` writes it): ``criterion`` is a criterion id of the rubric (or ``score`` for the overall score on
the 0..1 scale). An unknown criterion, a sample id the run does not have, or a score that is not a number of the
rubric's scale is one clear line naming the file and the row (exit 2), and nothing is changed.

For each criterion and for the overall score: the number of samples both graded, Spearman's rho, Kendall's tau-b
and (criteria only) quadratic-weighted Cohen's kappa (:mod:`dfabench.metrics.agreement`). The figures are written
to ``run.json["judge"]["agreement"]`` (one transaction) and printed.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError
from dfabench.metrics.agreement import agreement
from dfabench.records import JudgeIdentity, loads_json
from dfabench.store import RunFolder, canonical_json, sha256_text

ARCHIVE_PREFIX = "judgments-"
CURRENT = "current"
HUMAN = "human"


def archive_name(identity: JudgeIdentity) -> str:
    """``judgments-<model>-<rubric>-<output>-<hash8>.jsonl``: a file name from the judge identity (the hash also
    covers the judge model's fingerprint: two judges reporting the same model id keep two archives)."""
    label = canonical_json(identity.to_dict())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{identity.model}-{identity.rubric}-v{identity.rubric_version}"
                  f"-{identity.output or 'unrecorded'}").strip("-.")[:80]
    return f"{ARCHIVE_PREFIX}{slug}-{sha256_text(label)[:8]}.jsonl"


def archive_lines(task: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The archive lines of one judged task: its samples with a judgment from a judge call (not by rule)."""
    out = []
    for record in records:
        judge = record.get("judge")
        if isinstance(judge, dict) and judge.get("score") is not None and not judge.get("by_rule"):
            out.append({"task": task, "id": str(record["id"]), "score": judge["score"],
                        "criteria": judge.get("criteria") or {},
                        "judge": JudgeIdentity.from_dict(judge).to_dict()})
    return out


def merged_archive(folder: RunFolder, name: str, judged: dict[str, list[dict[str, Any]]]) -> str:
    """The archive file's new text: its lines of the tasks not judged now, then the judged tasks' lines."""
    kept = [line for line in read_archive(folder.path / name) if line["task"] not in judged]
    fresh = [line for task in sorted(judged) for line in archive_lines(task, judged[task])]
    return "".join(json.dumps(line, sort_keys=True) + "\n" for line in kept + fresh)


def read_archive(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            value = loads_json(line, path, f"line {number}")
            if not isinstance(value, dict) or not {"task", "id", "score"} <= set(value):
                raise InputError(path, "not a judgment archive line (task, id, score)", f"line {number}")
            out.append(value)
    return out


def archives(folder: RunFolder) -> list[str]:
    """The judgment archives of a run folder (their names, without the prefix and suffix)."""
    return sorted(p.name[len(ARCHIVE_PREFIX):-len(".jsonl")] for p in folder.path.glob(f"{ARCHIVE_PREFIX}*.jsonl"))


def _find(folder: RunFolder, wanted: str) -> str:
    names = archives(folder)
    matches = [n for n in names if n == wanted] or [n for n in names if wanted in n]
    if len(matches) != 1:
        if matches:
            raise DfabenchError(f"judge {wanted!r} matches more than one judgment archive of {folder.path}: "
                                f"{', '.join(matches)}; give more of the name")
        raise DfabenchError(f"judge {wanted!r} matches none of the judgment archives of {folder.path}: "
                            f"{', '.join(names) or 'none (judge the run first)'} (or '{CURRENT}': the judgments "
                            "in the logs)")
    return matches[0]


def resolve(folder: RunFolder, wanted: str) -> str:
    """The full archive name ``wanted`` names (``current`` and ``human`` as they are)."""
    return wanted if wanted in (CURRENT, HUMAN) else _find(folder, wanted)


def grades_of(folder: RunFolder, record: dict[str, Any], which: str, tasks: list[str]) -> dict:
    """``(task, id) -> {"score": x, "criteria": {...}}`` of a judge archive or of ``current`` (the logs)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if which == CURRENT:
        for task in tasks:
            for line in archive_lines(task, folder.read_samples(task)):
                out[(task, line["id"])] = line
        return out
    for line in read_archive(folder.path / f"{ARCHIVE_PREFIX}{_find(folder, which)}.jsonl"):
        if line["task"] in tasks:
            out[(line["task"], str(line["id"]))] = line
    return out


def human_grades(path: Path, folder: RunFolder, record: dict[str, Any], tasks: list[str],
                 criteria: dict[str, tuple[float, float]]) -> dict:
    """Human ratings from a CSV (see the module docstring); every bad row is an :class:`InputError`."""
    ids = {task: {str(r["id"]) for r in folder.read_samples(task)} for task in tasks}
    out: dict[tuple[str, str], dict[str, Any]] = {}
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(path, f"cannot read the ratings ({exc.strerror or exc})") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = {"sample_id", "criterion", "score"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(path, f"the ratings need the columns sample_id, criterion, score (missing "
                                   f"{', '.join(sorted(missing))})")
        for number, row in enumerate(reader, 2):
            where = f"row {number}"
            task = (row.get("task") or "").strip() or (tasks[0] if len(tasks) == 1 else "")
            if task not in ids:
                raise InputError(path, f"task {task or '(none)'!r} is not one of the judged tasks "
                                       f"{', '.join(tasks)} (give a task column)", where)
            sample_id = (row["sample_id"] or "").strip()
            if sample_id not in ids[task]:
                raise InputError(path, f"sample {sample_id!r} is not in the run's {task} log", where)
            criterion = (row["criterion"] or "").strip()
            if criterion != "score" and criterion not in criteria:
                raise InputError(path, f"unknown criterion {criterion!r} (the rubric's: "
                                       f"{', '.join(criteria)}, or 'score')", where)
            low, high = criteria.get(criterion, (0.0, 1.0))
            try:
                value = float(row["score"])
            except (TypeError, ValueError):
                value = float("nan")
            if not low <= value <= high:
                raise InputError(path, f"score {row['score']!r} is not a number in {low:g}..{high:g}", where)
            entry = out.setdefault((task, sample_id), {"criteria": {}})
            if criterion == "score":
                entry["score"] = value
            else:
                entry["criteria"][criterion] = value
    for entry in out.values():
        if "score" not in entry and entry["criteria"] and set(entry["criteria"]) == set(criteria):
            top = max(high for _, high in criteria.values()) or 1.0
            entry["score"] = sum(entry["criteria"].values()) / len(entry["criteria"]) / top
    return out


def compare(a: dict, b: dict, criteria: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Agreement of two graders over the samples both graded: per criterion and for the overall score."""
    common = sorted(set(a) & set(b))
    out: dict[str, Any] = {"n_common": len(common), "n_only_first": len(set(a) - set(b)),
                           "n_only_second": len(set(b) - set(a)), "criteria": {}}
    for criterion, (low, high) in criteria.items():
        pairs = [(a[k]["criteria"][criterion], b[k]["criteria"][criterion]) for k in common
                 if (a[k].get("criteria") or {}).get(criterion) is not None
                 and (b[k].get("criteria") or {}).get(criterion) is not None]
        out["criteria"][criterion] = agreement([p[0] for p in pairs], [p[1] for p in pairs],
                                               (int(low), int(high)))
    pairs = [(a[k]["score"], b[k]["score"]) for k in common
             if a[k].get("score") is not None and b[k].get("score") is not None]
    out["score"] = agreement([p[0] for p in pairs], [p[1] for p in pairs], None)
    return out
