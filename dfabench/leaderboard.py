"""The leaderboard: submitted runs in ``leaderboard/entries/`` -> ranked, comparable tables.

An entry is a folder holding a run record (``run.json``) and its per-sample logs, copied by
``dfabench leaderboard submit RUN_DIR`` (the response cache is left behind), plus an optional
``entry.json`` (``{"name", "submitter", "notes", "url"}``).

``dfabench leaderboard build`` writes ``leaderboard/README.md`` and ``leaderboard/leaderboard.json``.
Before a number is shown, the entry is verified (:mod:`dfabench.verify`: log hashes and every
metric re-derived from the per-sample logs). Numbers are ranked together only when they are
comparable: the same benchmark (fingerprint and split), the same task spec (fingerprint), a complete
selection of the same samples (no ``--limit``; the id set of ``tasks[T].selection`` is the benchmark's
when ``--bench`` is given, else the one most complete entries share) and, for judge scores, the same
judge identity. Anything else is listed under "not ranked" with the reason. A task a model cannot do
reads "n/a", never a number. An entry that does not verify, cannot be read, or cannot be re-derived on
this machine (a missing optional package: the reason says what to install) is excluded and listed with
the reason; the other entries are built all the same and ``dfabench leaderboard build`` exits with 1.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.escape import markdown_code, markdown_text
from dfabench.plugins import get_manager
from dfabench.records import run_judge_identity
from dfabench.redact import credential_paths, redact, scrub_value
from dfabench.selection import is_complete, select_samples
from dfabench.store import RUN_RECORD, RunFolder
from dfabench.tasks import DEFAULT_ORDER

#: metrics ranked ascending; every other column ranks higher-is-better
LOWER_IS_BETTER = {"eer", "judge_failure_rate"}


@dataclass
class BuildResult:
    written: list[Path] = field(default_factory=list)
    #: ``"ENTRY: reason"`` for every entry left out (it does not verify, cannot be read, or cannot be
    #: re-derived here); any makes the build exit with 1
    excluded: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def submit_run(run_dir: Path, entries: Path, *, name: str | None = None, force: bool = False) -> Path:
    """Copy a run's record and per-sample logs (and predicted masks) into the entries folder."""
    from dfabench.verify import verify

    folder = RunFolder(run_dir)
    record = folder.read_record()
    report = verify(run_dir)
    if not report.ok:
        raise DfabenchError(f"{run_dir} does not verify; fix it before submitting: "
                            f"{'; '.join((report.failed + report.unverifiable)[:3])}")
    leaks = credential_problems(folder, record)
    if leaks:
        more = f" (and {len(leaks) - 3} more places)" if len(leaks) > 3 else ""
        raise DfabenchError(f"{run_dir} is not submitted: {'; '.join(leaks[:3])}{more}: what looks like a credential "
                            "(an older dfabench stored it unredacted); re-run with this dfabench, which stores "
                            "credentials as ***, and submit that run")
    model = record.get("model", {})
    name = name or f"{model.get('name', 'model')}-{str(model.get('fingerprint', ''))[:8]}"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise DfabenchError(f"bad entry name {name!r}: use letters, digits, '-', '_' and '.'")
    target = Path(entries) / name
    if target.exists() and not force:
        raise DfabenchError(f"entry {target} exists (use --force to replace it)")
    changed = DfabenchError(f"{run_dir} changed while it was being submitted; submit it again (nothing was changed)")
    with RunFolder(target).transaction(create=True) as tx:  # one commit; --force replaces the old entry at the switch
        tx.delete_tree()
        copied = folder.record_path.read_bytes()
        if json.loads(copied) != record:
            raise changed
        command = scrub_value(record.get("command"))
        if command != record.get("command"):  # informative only (no hash covers it): scrubbed, not refused
            copied = (json.dumps({**record, "command": command}, indent=2, ensure_ascii=False, default=str)
                      + "\n").encode("utf-8")
        tx.write_bytes(RUN_RECORD, copied)
        for info in record.get("samples", {}).values():
            if tx.write_bytes(info["file"], (folder.path / info["file"]).read_bytes()) != info.get("sha256"):
                raise changed
        if (folder.path / "masks").is_dir():
            for path in sorted(p for p in (folder.path / "masks").rglob("*") if p.is_file()):
                tx.write_bytes(path.relative_to(folder.path).as_posix(), path.read_bytes())
        if any(tx.staged().get(rel) != digest for info in record.get("samples", {}).values()
               for rel, digest in (info.get("masks") or {}).items()):
            raise changed
        tx.write_text("entry.json", json.dumps({"name": name}, indent=2) + "\n")
    return target


def credential_problems(folder: RunFolder, record: dict[str, Any]) -> list[str]:
    """Where a run still holds a credential (:mod:`dfabench.redact`), apart from its command line: the model's
    arguments and identity, the judge record, and the error fields of the per-sample logs. A run written by
    this version holds none; one written by an older version could."""
    found = [f"run.json {where}" for where in credential_paths(
        {name: record[name] for name in ("model", "judge") if record.get(name) is not None})]
    for info in (record.get("samples") or {}).values():
        with open(folder.path / info["file"], encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if '"error": null' in line and '"judge": null' in line:
                    continue  # the common case: nothing that could hold one
                try:
                    sample = json.loads(line)
                except ValueError:
                    continue  # verify has judged the log already
                if not isinstance(sample, dict):
                    continue
                judge = sample.get("judge")
                texts = [sample.get("error"), judge.get("error") if isinstance(judge, dict) else None]
                if any(isinstance(text, str) and redact(text) != text for text in texts):
                    found.append(f"{info['file']} line {lineno}")
    return found


def _judge_key(record: dict[str, Any], task_id: str) -> str | None:
    """The judge identity behind a task's judge score (:meth:`JudgeIdentity.label`); None when unjudged."""
    identity = run_judge_identity(record, task_id)
    return identity.label() if identity is not None and identity.model else None


def column_identity(record: dict[str, Any], task_id: str, column: str) -> str | None:
    """What besides the task spec decides a column's numbers: the judge for judge scores, the
    embedding model for embedding similarity, the nltk / WordNet versions for METEOR."""
    if column in ("judge_score", "judge_failure_rate"):
        return _judge_key(record, task_id)
    breakdowns = record.get("breakdowns", {}).get(task_id, {})
    if column == "embedding_similarity":
        return (breakdowns.get("embedding_samples") or {}).get("model")
    if column == "meteor":
        info = breakdowns.get("meteor_samples") or {}
        return f"nltk {info.get('nltk')} / WordNet {info.get('wordnet')}" if info.get("nltk") else None
    return None


def _task_layout(task_ids: set[str], items: list) -> list[tuple[str, list[str]]]:
    """The tasks of a board in their listed order, each with its columns (the first is the ranking key):
    the installed spec's ``order`` and ``columns``; for a task no installed plugin defines (or one whose
    spec names no columns), after the others and every metric its entries report, sorted."""
    registry = get_manager().tasks
    specs = {t: registry.get(t) for t in task_ids if t in registry}

    def columns(task_id: str) -> list[str]:
        spec = specs.get(task_id)
        if spec is not None and spec.columns:
            return list(spec.columns)
        return sorted({m for i in items for m in i[2].get("metrics", {}).get(task_id, {})})

    ordered = sorted(task_ids, key=lambda t: specs[t].sort_key if t in specs else (DEFAULT_ORDER, t))
    return [(task_id, columns(task_id)) for task_id in ordered]


def _reference_fingerprints(records: list[dict[str, Any]]) -> dict[str, str]:
    """The task fingerprint each task is ranked under: the installed spec's, else the most common."""
    registry = get_manager().tasks
    out: dict[str, str] = {}
    seen: dict[str, Counter] = {}
    for record in records:
        for task_id, info in record.get("tasks", {}).items():
            seen.setdefault(task_id, Counter())[info.get("fingerprint")] += 1
    for task_id, counter in seen.items():
        if task_id in registry:
            out[task_id] = registry.get(task_id).fingerprint
        else:
            out[task_id] = counter.most_common(1)[0][0]
    return out


def build_leaderboard(entries: Path, out: Path, benches: list[Path] = ()) -> BuildResult:
    """Verify every entry and write the tables. ``benches``: benchmark folders that entries need to
    be re-derived (FL's reference masks), matched to the entries by fingerprint."""
    from dfabench.data.manifest import load_benchmark

    by_fingerprint = {load_benchmark(b).fingerprint(): Path(b) for b in benches}
    entries = Path(entries)
    if not entries.is_dir():
        raise DfabenchError(f"{entries}: no such entries folder")
    result = BuildResult()
    loaded: list[tuple[str, Path, dict[str, Any], dict[str, Any]]] = []
    for path in sorted(p for p in entries.iterdir() if p.is_dir()):
        try:
            item = _load_entry(path, by_fingerprint)
        except _Excluded as exc:
            result.excluded.append(f"{path.name}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - one bogus entry never stops the build; it is listed
            text = " ".join(str(exc).split())
            result.excluded.append(f"{path.name}: cannot be read ({type(exc).__name__}: {text[:300]})")
            continue
        loaded.append(item)

    records = [r for _, _, r, _ in loaded]
    reference = _reference_fingerprints(records)
    # One board per benchmark (fingerprint + split); the most populated first.
    boards: dict[tuple[str, str], list] = {}
    for item in loaded:
        bench = item[2].get("benchmark", {})
        boards.setdefault((bench.get("fingerprint"), bench.get("split")), []).append(item)
    # For columns whose numbers depend on more than the task spec (judge, embedding model, METEOR's
    # WordNet), the identity most entries share is the one ranked; the others are listed, not ranked.
    identities: dict[tuple[str, str], Counter] = {}
    for record in records:
        for task_id in record.get("metrics", {}):
            for column in record["metrics"][task_id]:
                key = column_identity(record, task_id, column)
                if key is not None:
                    identities.setdefault((task_id, column), Counter())[key] += 1
    reference_identity = {k: c.most_common(1)[0][0] for k, c in identities.items()}

    data: dict[str, Any] = {"boards": [], "not_ranked": [], "excluded": result.excluded,
                            "task_fingerprints": reference,
                            "column_identities": {f"{t}.{c}": v for (t, c), v in reference_identity.items()}}
    lines = ["# dfabench leaderboard", "",
             "Generated by `dfabench leaderboard build` from the runs in `leaderboard/entries/`. "
             "Every number below was re-derived from the entry's per-sample logs (`dfabench verify`). "
             "Numbers are ranked together only when benchmark, split, task spec and judge match.", ""]
    for (fingerprint, split), items in sorted(boards.items(), key=lambda kv: -len(kv[1])):
        bench_name = items[0][2].get("benchmark", {}).get("name")
        board = {"benchmark": bench_name, "fingerprint": fingerprint, "split": split, "tasks": {}}
        lines += [f"## {markdown_text(bench_name)} (split {markdown_text(split)}, fingerprint "
                  f"{markdown_code(str(fingerprint)[:12])})", ""]
        description = items[0][2].get("benchmark", {}).get("description")
        if description:
            lines += [f"> {markdown_text(description)}", ""]
        for task_id, columns in _task_layout({t for i in items for t in i[2].get("tasks", {})}, items):
            rows = []
            ranked_ids = _reference_ids(items, task_id, reference.get(task_id), by_fingerprint.get(fingerprint),
                                        split)
            for name, _path, record, _meta in items:
                info = record.get("tasks", {}).get(task_id)
                if info is None:
                    continue
                why = _not_comparable(record, task_id, info, reference, ranked_ids)
                if why:
                    data["not_ranked"].append({"entry": name, "task": task_id, "reason": why})
                    continue
                metrics = record.get("metrics", {}).get(task_id, {})
                counts = record.get("counts", {}).get(task_id, {})
                status = info.get("status", "")
                row = {"entry": name, "model": record["model"].get("name"),
                       "args": scrub_value(record["model"].get("args")),  # an entry copied by hand too
                       "na": status.startswith("n/a"), "counts": counts, "values": {}}
                for column in columns:
                    metric = metrics.get(column)
                    own = column_identity(record, task_id, column)
                    ranked = reference_identity.get((task_id, column))
                    if metric is not None and own != ranked and metric.get("value") is not None:
                        data["not_ranked"].append({"entry": name, "task": task_id, "reason":
                                                   f"{column} from {own}, the ranked column uses {ranked}"})
                        metric = None
                    row["values"][column] = metric
                rows.append(row)
            if not rows:
                continue
            # rank by the first column in which some entry has a number
            key = next((c for c in columns if any((r["values"].get(c) or {}).get("value") is not None
                                                  and not r["na"] for r in rows)), columns[0])

            def rank_key(row: dict[str, Any], key: str = key) -> tuple:
                metric = row["values"].get(key) or {}
                value = metric.get("value")
                if row["na"] or value is None:
                    return (1, 0.0)
                return (0, value if key in LOWER_IS_BETTER else -value)

            rows.sort(key=rank_key)
            board["tasks"][task_id] = {"columns": columns, "rows": rows}
            lines += [f"### {markdown_text(task_id)}", "", _markdown_table(task_id, columns, rows), ""]
        data["boards"].append(board)
    if data["not_ranked"]:
        lines += ["## Not ranked", ""]
        lines += [f"- {markdown_text(x['entry'])} / {markdown_text(x['task'])}: {markdown_text(x['reason'])}"
                  for x in data["not_ranked"]]
        lines.append("")
    if result.excluded:
        lines += ["## Excluded entries", ""] + [f"- {markdown_text(x)}" for x in result.excluded] + [""]
    out = Path(out)
    with RunFolder(out).transaction(create=True) as tx:  # the outputs switch together
        tx.write_text("README.md", "\n".join(lines))
        tx.write_text("leaderboard.json", json.dumps(data, indent=2, default=str) + "\n")
    result.written = [out / "README.md", out / "leaderboard.json"]
    result.data = data
    return result


def _not_comparable(record: dict[str, Any], task_id: str, info: dict[str, Any], reference: dict[str, str],
                    ranked_ids: str | None = None) -> str | None:
    """Why a task of an entry is not ranked with the others (``None``: it is): another task spec, a
    partial selection (``--limit``), or another set of samples than the ranked one (``ranked_ids``)."""
    if info.get("fingerprint") != reference.get(task_id):
        return (f"task spec {str(info.get('fingerprint'))[:12]} differs from the ranked spec "
                f"{str(reference.get(task_id))[:12]} (version {info.get('version')})")
    if str(info.get("status", "")).startswith("n/a"):
        return None  # shown as n/a, never ranked
    selection = info.get("selection")
    if not isinstance(selection, dict):
        return "no selection record (which samples it answered is unknown; made by an older dfabench)"
    if not is_complete(selection):
        limit = f" (--limit {selection.get('limit')})" if selection.get("limit") is not None else ""
        return f"partial run: {selection.get('n')} of {selection.get('n_available')} samples{limit}"
    if ranked_ids is not None and selection.get("ids_sha256") != ranked_ids:
        return (f"answered another set of samples (ids {str(selection.get('ids_sha256'))[:12]}) than the ranked "
                f"set ({ranked_ids[:12]}) of this benchmark split")
    return None


class _Excluded(Exception):
    """An entry left out of the build; the message is the reason."""


def _load_entry(path: Path, by_fingerprint: dict[str, Path]) -> tuple[str, Path, dict[str, Any], dict[str, Any]]:
    """``(name, path, record, meta)`` of a verified entry; :class:`_Excluded` with the reason when it does
    not verify, cannot be checked here, or is not shaped like an entry."""
    from dfabench.verify import read_record, verify

    if not (path / RUN_RECORD).exists():
        raise _Excluded(f"no {RUN_RECORD}")
    try:
        record = read_record(RunFolder(path))
    except DfabenchError as exc:
        raise _Excluded(f"cannot be read ({exc})") from None
    bench = record.get("benchmark")
    fingerprint = bench.get("fingerprint") if isinstance(bench, dict) else None
    report = verify(path, bench=by_fingerprint.get(fingerprint) if isinstance(fingerprint, str) else None)
    if report.failed:
        raise _Excluded(f"does not verify ({'; '.join(report.failed[:2])})")
    if report.unverifiable:
        raise _Excluded(f"cannot be re-derived here: {'; '.join(report.unverifiable[:2])}")
    meta: Any = {}
    if (path / "entry.json").exists():
        try:
            meta = json.loads((path / "entry.json").read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            raise _Excluded("entry.json is malformed JSON") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("name", ""), str):
            raise _Excluded("entry.json must be a mapping whose 'name' is a string")
    shown = {"model.name": record["model"].get("name"), "benchmark.name": record["benchmark"].get("name"),
             "benchmark.split": record["benchmark"].get("split"),
             "benchmark.description": record["benchmark"].get("description")}
    shown.update({f"tasks.{t}.status": info.get("status") for t, info in record.get("tasks", {}).items()})
    wrong = [k for k, v in shown.items() if v is not None and not isinstance(v, str)]
    if wrong or not isinstance(record["model"].get("args") or {}, dict):
        raise _Excluded(f"run.json: {', '.join(wrong) or 'model.args'} must be text (a mapping for model.args)")
    return meta.get("name") or path.name, path, record, meta


def _reference_ids(items: list, task_id: str, fingerprint: str | None, bench: Path | None, split: Any) -> str | None:
    """The sample-id set a board ranks for a task: the benchmark's own selection when the benchmark
    is given (``--bench``), else the most common among the complete entries of the ranked task spec."""

    if bench is not None:
        from dfabench.data.manifest import load_benchmark
        from dfabench.scoring import task_from_record

        spec = next((task_from_record(task_id, r["tasks"][task_id], path) for _, path, r, _ in items
                     if r.get("tasks", {}).get(task_id, {}).get("fingerprint") == fingerprint), None)
        if spec is not None:
            try:
                pool = load_benchmark(bench).select(split if isinstance(split, str) else None)
            except DfabenchError:
                pool = None  # its entries did not verify against it: fall back to the entries' own
            if pool is not None:
                return select_samples(spec, pool, str(split), None)[1]["ids_sha256"]
    seen: Counter = Counter()
    sizes: dict[Any, int] = {}
    for _, _, record, _ in items:
        info = record.get("tasks", {}).get(task_id) or {}
        if info.get("fingerprint") == fingerprint and is_complete(info.get("selection")) and not str(
                info.get("status", "")).startswith("n/a"):
            seen[info["selection"].get("ids_sha256")] += 1
            sizes[info["selection"].get("ids_sha256")] = info["selection"]["n"]
    # a tie goes to the larger set: a subset of the split is what a cherry-picked entry answers
    return max(seen, key=lambda ids: (seen[ids], sizes[ids])) if seen else None


def _cell(metric: dict[str, Any] | None) -> str:
    if metric is None:
        return "—"
    value = metric.get("value")
    if value is None:
        return "undefined"
    text = f"{value:.4f}"
    if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
        text += f" [{metric['ci_low']:.3f}, {metric['ci_high']:.3f}]"
    return text


def _markdown_table(task_id: str, columns: list[str], rows: list[dict[str, Any]]) -> str:
    """One task's table; every text from an entry (names, model arguments, metric names) goes through
    :func:`dfabench.escape.markdown_text`, so that a cell is one cell and reads as what it holds."""
    header = ["#", "entry", "model", *(markdown_text(c) for c in columns), "n", "failed", "unparsed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, row in enumerate(rows, 1):
        counts = row["counts"] or {}
        if row["na"]:
            cells = ["n/a"] * len(columns) + ["", "", ""]
        else:
            cells = [_cell(row["values"].get(c)) for c in columns] + [
                str(counts.get("n", "")), str(counts.get("n_failed", "")), str(counts.get("n_unparsed", ""))]
        args = json.dumps(row["args"]) if row["args"] else ""
        model = markdown_text(f"{row['model']} {args}".strip())
        lines.append("| " + " | ".join([str(rank) if not row["na"] else "", markdown_text(row["entry"]), model,
                                        *cells]) + " |")
    return "\n".join(lines)

