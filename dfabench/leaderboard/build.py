"""``dfabench leaderboard build``: verified entries and reported numbers -> the leaderboard's data and files.

:func:`build_leaderboard` verifies every entry (:mod:`dfabench.leaderboard.entries`), groups them into
boards (one per benchmark fingerprint and split), ranks each task with statistical ties
(:mod:`dfabench.leaderboard.ties`), adds the reported entries (:mod:`dfabench.leaderboard.reported`) apart,
and writes, as one transaction (the outputs switch together):

- ``leaderboard.json`` — everything below, the data the other files are rendered from;
- ``README.md`` — the tables in Markdown (:mod:`dfabench.leaderboard.markdown`);
- ``leaderboard.csv`` — one row per entry, task and metric (:mod:`dfabench.leaderboard.tables`);
- ``index.html`` — the static site (:mod:`dfabench.leaderboard.site`);
- ``reports/ENTRY.md`` — the submission checker's report of every entry (:mod:`dfabench.leaderboard.check`).

The build is deterministic: the same entries give byte-identical files (entries are read in name order,
every tie is broken by name, the bootstrap is seeded, nothing records a time or a local path).
An entry that does not verify, cannot be read, or cannot be re-derived on this machine (a missing optional
package: the reason says what to install) is excluded and listed with the reason; so is a reported-entry
file that is malformed. The others are built all the same and the command exits with 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dfabench.errors import DfabenchError
from dfabench.leaderboard.entries import (
    Entry,
    Excluded,
    column_identity,
    load_entry,
    not_comparable,
    reference_fingerprints,
    reference_identities,
    reference_ids,
    reference_reading,
    task_layout,
)
from dfabench.leaderboard.reported import load_reported_folder
from dfabench.leaderboard.ties import Contender, TieSettings, rank_task
from dfabench.redact import scrub_value
from dfabench.store import RUN_RECORD, RunFolder
from dfabench.vocab import CATEGORIES

#: metrics ranked ascending; every other column ranks higher-is-better
LOWER_IS_BETTER = {"eer", "judge_failure_rate"}
#: the files a build writes (besides ``reports/``)
OUTPUTS = ("README.md", "leaderboard.json", "leaderboard.csv", "index.html")


@dataclass
class BuildResult:
    written: list[Path] = field(default_factory=list)
    #: ``"ENTRY: reason"`` for every entry or reported file left out; any makes the build exit with 1
    excluded: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: entries verified by this build, and entries whose outcome came from the verification cache
    verified: int = 0
    cached: int = 0
    #: the verification cache's folder (None: not used), and why nothing could be kept in it (None: it could)
    cache: Path | None = None
    cache_problem: str | None = None


def report_name(folder_name: str) -> str:
    """Where an entry's report is, relative to the outputs (a URL path, quoted)."""
    return f"reports/{quote(folder_name, safe='')}.md"


def build_leaderboard(entries: Path, out: Path, benches: list[Path] = (), *, reported: Path | None = None,
                      ties: TieSettings | None = None, jobs: int | None = None,
                      cache: bool | Path = True) -> BuildResult:
    """Verify every entry and write the outputs. ``benches``: benchmark folders that entries need to
    be re-derived (FL's reference masks), matched to the entries by fingerprint; ``reported``: the folder of
    reported entries (default: ``reported/`` beside the entries folder); ``jobs``: processes verifying entries
    (None: one per CPU when the logs to verify are large, :data:`PARALLEL_BYTES`, else one; the files are the
    same); ``cache``: the verification cache (:mod:`dfabench.leaderboard.verified`; True: the default folder, a
    path: that folder, False: verify every entry again). The files are the same with and without it."""
    from dfabench.data.manifest import load_benchmark

    by_fingerprint = {load_benchmark(b).fingerprint(): Path(b) for b in benches}
    entries = Path(entries)
    if not entries.is_dir():
        raise DfabenchError(f"{entries}: no such entries folder")
    result = BuildResult()
    loaded: list[Entry] = []
    reports: dict[str, str] = {}
    store = None
    if cache is not False:
        from dfabench.leaderboard.verified import VerifiedCache, code_identity, default_root

        store = VerifiedCache(default_root() if cache is True else Path(cache), code_identity())
        result.cache_problem = store.writable_problem()
    for one in _load_all(sorted(p for p in entries.iterdir() if p.is_dir()), by_fingerprint, jobs, store):
        result.verified += one.verified
        result.cached += not one.verified
        if one.entry is not None:
            loaded.append(one.entry)
        if one.excluded is not None:
            result.excluded.append(f"{one.path.name}: {one.excluded}")
        if one.report is not None:
            reports[one.path.name] = one.report
    reported_entries, problems = load_reported_folder(Path(reported) if reported else entries.parent / "reported")
    result.excluded += problems

    data = _board_data(loaded, by_fingerprint, ties or TieSettings())
    data["reported"] = [_reported_row(r) for r in reported_entries]
    data["excluded"] = result.excluded
    data["reports"] = {name: report_name(name) for name in sorted(reports)}
    result.data = data
    _write(Path(out), data, reports)
    if store is not None:
        result.cache = store.root
        store.prune()
    result.written = [Path(out) / name for name in OUTPUTS] + ([Path(out) / "reports"] if reports else [])
    return result


@dataclass
class _Loaded:
    """One entry folder as the build reads it: the verified entry (with the tie test's rows of its logs,
    :attr:`Entry.rows`) or why it is excluded, and its checker report (Markdown)."""

    path: Path
    entry: Entry | None = None
    excluded: str | None = None
    report: str | None = None
    #: whether it was verified here (False: its outcome came from the verification cache)
    verified: bool = True


def load_one(path: Path, by_fingerprint: dict[str, Path], cache: Any = None) -> _Loaded:
    """Verify and load one entry folder; a bogus entry is excluded with the reason, never raised. ``cache``: a
    :class:`~dfabench.leaderboard.verified.VerifiedCache` holding what verifying the same bytes with the same
    code gave (then nothing is re-derived), and where a clean outcome is kept."""
    from dfabench.leaderboard.check import check_entry

    key = _cache_key(path, by_fingerprint, cache)
    kept = cache.get(key) if key is not None else None
    if kept is not None:
        out, _, unexpected = _load_verified(path, by_fingerprint, kept.report)
        if not unexpected and out.excluded == kept.excluded:  # always so, unless the cache was tampered with
            out.verified, out.report = False, kept.markdown
            if out.entry is not None:
                out.entry.rows = kept.rows
            return out
    out, verified, unexpected = _load_verified(path, by_fingerprint, None)
    if verified is not None:
        out.report = check_entry(path, report=verified, sample_schema=False).markdown()
    if out.entry is not None:
        try:
            out.entry.rows = _tie_rows(out.entry)
        except Exception:  # noqa: BLE001 - only a shortcut: the ranking reads the log itself, and says what is wrong
            out.entry.rows = None
    settled = not unexpected and not (verified is not None and verified.unverifiable)  # not a missing resource
    if key is not None and settled and (out.entry is None or out.entry.rows is not None) \
            and _cache_key(path, by_fingerprint, cache) == key:  # not changed while it was verified
        from dfabench.leaderboard.verified import Outcome

        cache.put(key, Outcome(verified, out.excluded, out.report, out.entry.rows if out.entry else None))
    return out


def _load_verified(path: Path, by_fingerprint: dict[str, Path], kept: Any) -> tuple[_Loaded, Any, bool]:
    """``(loaded, verification report, whether it failed unexpectedly)``: :func:`load_entry`, verifying unless
    ``kept`` is the report a verification of the same bytes gave."""
    out = _Loaded(path)
    verified, unexpected = None, False
    try:
        out.entry = load_entry(path, by_fingerprint, verified=kept)
        verified = out.entry.report
    except Excluded as exc:
        out.excluded, verified = str(exc), exc.report
    except Exception as exc:  # noqa: BLE001 - one bogus entry never stops the build; it is listed
        text = " ".join(str(exc).split())
        out.excluded = f"cannot be read ({type(exc).__name__}: {text[:300]})"
        unexpected = True
    if out.excluded is not None:
        out.excluded = _without_location(out.excluded, path)
    return out, verified, unexpected


def _without_location(text: str, path: Path) -> str:
    """A reason without where the entries folder is on this machine: the entry's folder as its name (the
    outputs record no local path, and the same entries give the same files from anywhere)."""
    for where in sorted({str(path.absolute()), str(path.resolve()), str(path)}, key=len, reverse=True):
        text = text.replace(where, path.name)
    return text


def _cache_key(path: Path, by_fingerprint: dict[str, Path], cache: Any) -> str | None:
    """The entry's key in the verification cache (None: no cache, or a folder that cannot be read)."""
    if cache is None:
        return None
    from dfabench.leaderboard.verified import entry_key
    from dfabench.records import load_json

    try:
        record = load_json(path / RUN_RECORD)  # refuses JSON nested too deep, as reading the entry does
        bench = record.get("benchmark") if isinstance(record, dict) else None
        fingerprint = bench.get("fingerprint") if isinstance(bench, dict) else None
    except DfabenchError:
        fingerprint = None  # the entry is excluded with the reason when it is read
    bench = fingerprint if isinstance(fingerprint, str) and fingerprint in by_fingerprint else None
    try:
        return entry_key(path, bench, cache.code)
    except OSError:
        return None


def _tie_rows(entry: Entry) -> dict[str, dict[str, Any]]:
    """For each task, the tie test's rows of the one metric it can rank this entry by: its first column with a
    number (a board's ranking key is the first column some entry has a number in, so a ranked entry's key is its
    own first). Read here, where the entry was verified, so that a parallel build reads each log in one
    process; a key that is not here (another layout on the board) is read from the log when ranking."""
    from dfabench.leaderboard.ties import sample_rows

    out: dict[str, dict[str, Any]] = {}
    record = entry.record
    for task_id, columns in task_layout(set(record.get("tasks", {})), [record]):
        status = str(record["tasks"][task_id].get("status", ""))
        metrics = record.get("metrics", {}).get(task_id, {})
        key = next((c for c in columns if (metrics.get(c) or {}).get("value") is not None), None)
        if key is None or status.startswith("n/a") or task_id not in (record.get("samples") or {}):
            continue
        out[task_id] = {key: sample_rows(key, _reader(entry, task_id)())}
    return out


#: logs (bytes, all entries together) from which a build verifies entries in parallel by default: below it the
#: processes' start costs more than they save
PARALLEL_BYTES = 64 * 2**20


def _load_all(paths: list[Path], by_fingerprint: dict[str, Path], jobs: int | None, cache: Any = None) -> list[_Loaded]:
    """:func:`load_one` of every entry folder, in order; in ``jobs`` processes when more than one (forked on
    Linux, so that they hold this process's plugins, registered tasks included; spawned elsewhere, where they
    load the plugins the environment names)."""
    import os

    if jobs is None:
        size = sum(f.stat().st_size for p in paths for f in p.glob("samples-*.jsonl") if f.is_file())
        jobs = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) \
            if size >= PARALLEL_BYTES else 1
    jobs = max(1, min(jobs, len(paths)))
    if jobs == 1:
        return [load_one(p, by_fingerprint, cache) for p in paths]
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        return list(pool.map(load_one, paths, [by_fingerprint] * len(paths), [cache] * len(paths)))


def _write(out: Path, data: dict[str, Any], reports: dict[str, str]) -> None:
    from dfabench.leaderboard.markdown import render_markdown
    from dfabench.leaderboard.site import render_site
    from dfabench.leaderboard.tables import render_csv

    with RunFolder(out).transaction(create=True) as tx:  # the outputs switch together
        tx.write_text("README.md", render_markdown(data))
        tx.write_text("leaderboard.json", json.dumps(data, indent=2, default=str) + "\n")
        tx.write_text("leaderboard.csv", render_csv(data))
        tx.write_text("index.html", render_site(data))
        for name, text in sorted(reports.items()):
            tx.write_text(f"reports/{name}.md", text)
        tx.delete_tree("reports")  # the reports of entries that are gone


def _board_data(loaded: list[Entry], by_fingerprint: dict[str, Path], ties: TieSettings) -> dict[str, Any]:
    records = [e.record for e in loaded]
    reference = reference_fingerprints(records)
    reference_identity = reference_identities(records)
    data: dict[str, Any] = {"boards": [], "not_ranked": [], "task_fingerprints": reference,
                            "column_identities": {f"{t}.{c}": v for (t, c), v in reference_identity.items()},
                            "ranking": ties.describe()}
    boards: dict[tuple[str, str], list[Entry]] = {}
    for entry in loaded:
        bench = entry.record.get("benchmark", {})
        boards.setdefault((str(bench.get("fingerprint")), str(bench.get("split"))), []).append(entry)
    # the most populated board first, then by fingerprint: the order does not depend on the entries' names
    for (fingerprint, split), items in sorted(boards.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        bench = items[0].record.get("benchmark", {})
        board = {"benchmark": bench.get("name"), "fingerprint": fingerprint, "split": split,
                 "description": bench.get("description"), "tasks": {}}
        tasks = {t for e in items for t in e.record.get("tasks", {})}
        for task_id, columns in task_layout(tasks, [e.record for e in items]):
            ranked_ids = reference_ids(items, task_id, reference.get(task_id), by_fingerprint.get(fingerprint), split)
            ranked_reading = reference_reading(items, task_id)
            rows = []
            for entry in items:
                info = entry.record.get("tasks", {}).get(task_id)
                if info is None:
                    continue
                why = not_comparable(entry.record, task_id, info, reference, ranked_ids, ranked_reading)
                if why:
                    data["not_ranked"].append({"entry": entry.name, "task": task_id, "benchmark": board["benchmark"],
                                               "reason": why})
                    continue
                rows.append(_row(entry, task_id, columns, reference_identity, data["not_ranked"], board))
            if rows:
                board["tasks"][task_id] = _ranked_task(items, task_id, columns, rows, ties)
                # what besides the task spec made a column's numbers (the judge, the embedding model, ...)
                board["tasks"][task_id]["origins"] = {c: reference_identity[(task_id, c)] for c in columns
                                                      if reference_identity.get((task_id, c))}
        data["boards"].append(board)
    return data


def _row(entry: Entry, task_id: str, columns: list[str], reference_identity: dict, not_ranked: list,
         board: dict[str, Any]) -> dict[str, Any]:
    record = entry.record
    metrics = record.get("metrics", {}).get(task_id, {})
    status = record["tasks"][task_id].get("status", "")
    identity = record["model"].get("identity")
    imported = identity.get("imported_predictions") if isinstance(identity, dict) else None
    name = record["model"].get("name")
    row = {"entry": entry.name, "folder": entry.path.name, "report": report_name(entry.path.name),
           # released prediction files scored here, not a model run here: said wherever the model is shown
           "model": f"{name} (imported predictions)" if imported else name,
           "imported_predictions": imported if isinstance(imported, dict) else None,
           "args": scrub_value(record["model"].get("args")),  # an entry copied by hand too
           "na": status.startswith("n/a"), "status": status, "rank": None,
           "counts": record.get("counts", {}).get(task_id, {}), "values": {}}
    for column in columns:
        metric = metrics.get(column)
        own = column_identity(record, task_id, column)
        ranked = reference_identity.get((task_id, column))
        if metric is not None and own != ranked and metric.get("value") is not None:
            not_ranked.append({"entry": entry.name, "task": task_id, "benchmark": board["benchmark"],
                               "reason": f"{column} from {own}, the ranked column uses {ranked}"})
            metric = None
        row["values"][column] = metric
    row["breakdowns"] = _breakdowns(record, task_id, metrics)
    return row


def _breakdowns(record: dict[str, Any], task_id: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """Per category (the ``accuracy_<CATEGORY>`` metrics, with their intervals), per technique and the
    confusion matrix, as the run recorded them."""
    stored = record.get("breakdowns", {}).get(task_id, {})
    per_category = {name: metrics[f"accuracy_{name}"] for name in ("real", *CATEGORIES)
                    if isinstance(metrics.get(f"accuracy_{name}"), dict)}
    out = {"per_category": per_category, "per_technique": stored.get("per_technique") or {}}
    if isinstance(stored.get("confusion_matrix"), dict):
        out["confusion_matrix"] = stored["confusion_matrix"]
    return out


def _ranked_task(items: list[Entry], task_id: str, columns: list[str], rows: list[dict[str, Any]],
                 ties: TieSettings) -> dict[str, Any]:
    """The task's rows with their tie ranks, ordered by rank, then value, then name."""
    key = next((c for c in columns if any((r["values"].get(c) or {}).get("value") is not None and not r["na"]
                                          for r in rows)), columns[0])
    by_folder = {e.path.name: e for e in items}
    ranked = [r for r in rows if not r["na"] and (r["values"].get(key) or {}).get("value") is not None]
    contenders = [Contender(r["entry"], r["values"][key]["value"], _reader(by_folder[r["folder"]], task_id),
                            (by_folder[r["folder"]].rows or {}).get(task_id))
                  for r in ranked]
    ranks, ranking = rank_task(key, contenders, key in LOWER_IS_BETTER, ties)
    for row in ranked:
        row["rank"] = ranks[row["entry"]]
    sign = 1.0 if key in LOWER_IS_BETTER else -1.0

    def order(row: dict[str, Any]) -> tuple:
        if row["rank"] is None:
            return (1, 0, 0.0, row["entry"], row["folder"])
        return (0, row["rank"], sign * row["values"][key]["value"], row["entry"], row["folder"])

    rows.sort(key=order)
    return {"columns": columns, "ranking": {**ranking, "lower_is_better": key in LOWER_IS_BETTER}, "rows": rows}


def _reader(entry: Entry, task_id: str):
    """A function streaming the entry's per-sample log of ``task_id`` (verified: its hash is the recorded one)."""
    path = RunFolder(entry.path).samples_path(task_id)

    def samples():
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)

    return samples


def _reported_row(entry) -> dict[str, Any]:
    data = entry.data
    return {"entry": data["name"], "file": f"reported/{entry.path.name}", "model": data["model"],
            "benchmark": data["benchmark"], "split": data["split"], "task": data["task"], "n": data.get("n"),
            "scale": data["scale"], "values": entry.values, "as_reported": dict(sorted(data["metrics"].items())),
            "protocol": data["protocol"], "citation": data["citation"], "notes": data.get("notes")}
