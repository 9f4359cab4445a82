"""What the viewer shows: the runs it was given, their samples, the filters, and the files it may serve.

A run is a run folder or a leaderboard entry (``run.json`` + ``samples-<TASK>.jsonl``); ``leaderboard/`` stands
for every entry in its ``entries/``, an entries folder for its entries, and the folder ``leaderboard build`` wrote
for the entries beside it. Images and reference masks live in the benchmark folder (``--bench``, or
the path the run record names when it exists); predicted masks in the run folder. :meth:`Catalogue.resolve`
serves a file only from inside one of those folders: a path that leaves them (``..``, an absolute path, a
symbolic link pointing out) is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError

OUTCOMES = ("correct", "wrong", "failed", "unparsed")


@dataclass
class Run:
    name: str
    path: Path
    record: dict[str, Any]
    bench: Path | None
    samples: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # task -> id -> record


def outcome(sample: dict[str, Any]) -> str:
    """correct / wrong / failed / unparsed (a sample without a right-or-wrong score counts as correct
    only when it neither failed nor went unparsed: text tasks are "correct" when scored)."""
    if sample.get("error"):
        return "failed"
    if sample.get("unparsed"):
        return "unparsed"
    correct = (sample.get("metrics") or {}).get("correct")
    return "wrong" if correct is False else "correct"


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "run.json").is_file()) if folder.is_dir() else []


def _run_folders(target: Path) -> list[Path]:
    """A run folder; a leaderboard folder (its ``entries/``); an entries folder itself; or the folder
    ``leaderboard build`` wrote (``leaderboard.json``), whose entries are its sibling ``entries/`` (a sweep round's
    ``OUT/leaderboard`` next to ``OUT/entries``)."""
    if (target / "run.json").is_file():
        return [target]
    if (target / "entries").is_dir():
        return _entries(target / "entries")
    if _entries(target):
        return _entries(target)
    if (target / "leaderboard.json").is_file():
        if _entries(target.parent / "entries"):
            return _entries(target.parent / "entries")
        raise DfabenchError(f"{target}: a built leaderboard whose entries are not beside it (no "
                            f"{target.parent / 'entries'}); give the entries folder it was built "
                            "from (the `--entries` of `leaderboard build`)")
    raise DfabenchError(f"{target}: neither a run folder (no run.json), a leaderboard folder (no entries/), an entries "
                        "folder (no subfolder holds run.json) nor a built leaderboard (no leaderboard.json)")


def load_run(path: Path, bench: Path | None) -> Run:
    from dfabench.store import RunFolder
    from dfabench.verify import read_record

    folder = RunFolder(path)
    record = read_record(folder)
    recorded = (record.get("benchmark") or {}).get("path")
    if bench is None and isinstance(recorded, str) and Path(recorded).is_dir():
        bench = Path(recorded)
    run = Run(path.name, path, record, bench)
    for task_id in sorted(record.get("samples") or {}):
        run.samples[task_id] = {str(s["id"]): s for s in folder.read_samples(task_id)}
    return run


class Catalogue:
    """The runs being viewed and the folders files may come from."""

    def __init__(self, targets: list[Path], bench: Path | None = None):
        if not targets:
            raise DfabenchError("give a run folder or leaderboard/ to view")
        self.runs = [load_run(p, bench) for t in targets for p in _run_folders(Path(t))]
        if not self.runs:
            raise DfabenchError(f"no runs in {', '.join(map(str, targets))}")
        self.roots = sorted({r.path.resolve() for r in self.runs} | {r.bench.resolve() for r in self.runs if r.bench})

    def tasks(self) -> list[str]:
        return sorted({t for r in self.runs for t in r.samples})

    def samples(self, run: Run, task: str, filters: dict[str, str]) -> list[dict[str, Any]]:
        rows = list(run.samples.get(task, {}).values())
        for key in ("category", "technique"):
            if filters.get(key):
                rows = [s for s in rows if str(s.get(key)) == filters[key]]
        if filters.get("outcome") in OUTCOMES:
            rows = [s for s in rows if outcome(s) == filters["outcome"]]
        return sorted(rows, key=lambda s: str(s["id"]))

    def values(self, task: str, key: str) -> list[str]:
        return sorted({str(s.get(key)) for r in self.runs for s in r.samples.get(task, {}).values()
                       if s.get(key) is not None})

    def resolve(self, root_index: int, relpath: str) -> Path:
        """The file ``relpath`` inside served folder ``root_index``; :class:`PermissionError` for anything else."""
        if not 0 <= root_index < len(self.roots) or not relpath or "\x00" in relpath:
            raise PermissionError(relpath)
        root = self.roots[root_index]
        candidate = (root / relpath).resolve()
        if not candidate.is_relative_to(root) or not candidate.is_file():
            raise PermissionError(relpath)
        return candidate

    def root_of(self, folder: Path | None) -> int | None:
        if folder is None:
            return None
        resolved = folder.resolve()
        return self.roots.index(resolved) if resolved in self.roots else None


def rubric_criteria() -> list[tuple[str, str]]:
    """``(id, title)`` of the AD rubric's criteria (its newest version shipped with dfabench)."""
    import yaml

    from dfabench.records import SCHEMA_DIR

    folder = SCHEMA_DIR.parent / "rubrics"
    files = sorted(folder.glob("artifact-description-v*.yaml"), key=lambda p: int(p.stem.rsplit("v", 1)[1]))
    if not files:
        return []
    data = yaml.safe_load(files[-1].read_text(encoding="utf-8"))
    return [(str(c["id"]), str(c.get("title", c["id"]))) for c in data.get("criteria", [])]


def append_rating(path: Path, sample_id: str, scores: dict[str, int]) -> None:
    """Append hand ratings to ``path`` (CSV: sample_id, criterion, score; the header written once)."""
    import csv

    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["sample_id", "criterion", "score"])
        for criterion, score in sorted(scores.items()):
            writer.writerow([sample_id, criterion, score])


def model_label(record: dict[str, Any]) -> str:
    """The run's model as a reviewer reads it: its name, then its arguments (``k=v``, sorted)."""
    model = record.get("model") or {}
    args = model.get("args") if isinstance(model.get("args"), dict) else {}
    shown = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, sort_keys=True)}"
                     for k, v in sorted(args.items()))
    return f"{model.get('name') or '?'} {shown}".strip()


def sample_json(sample: dict[str, Any]) -> str:
    return json.dumps(sample.get("metrics") or {}, sort_keys=True)
