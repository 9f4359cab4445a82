"""The leaderboard: submitted runs in ``leaderboard/entries/`` -> ranked, comparable tables.

An entry is a folder holding a run record (``run.json``) and its per-sample logs, copied by
``dfabench leaderboard submit RUN_DIR`` (the response cache is left behind), plus an optional
``entry.json`` (``{"name", "submitter", "notes", "url"}``).

``dfabench leaderboard build`` writes ``leaderboard/README.md`` and ``leaderboard/leaderboard.json``.
Before a number is shown, the entry is verified (:mod:`dfabench.verify`: log hashes and every
metric re-derived from the per-sample logs). Numbers are ranked together only when they are
comparable: the same benchmark (fingerprint and split), the same task spec (fingerprint), a full run
(no ``--limit``) and, for judge scores, the same judge identity. Anything else is listed under
"not ranked" with the reason. A task a model cannot do reads "n/a", never a number.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError
from dfabench.store import RUN_RECORD, RunFolder, atomic_write_text

#: the columns of each task's table, in order; the first is the ranking key (higher is better,
#: except for metrics listed in LOWER_IS_BETTER)
COLUMNS: dict[str, list[str]] = {
    "DF-D": ["balanced_accuracy", "accuracy", "auc", "ap", "eer"],
    "DF-C": ["macro_f1", "accuracy"],
    "AD": ["judge_score", "cider", "bleu_4", "rouge_l", "meteor", "embedding_similarity"],
    "FC": ["judge_score", "rouge_l", "bleu_4"],
    "FL": ["iou", "f1", "precision", "recall", "cider", "rouge_l", "bleu_4"],
}
LOWER_IS_BETTER = {"eer", "judge_failure_rate"}
TASK_ORDER = ["DF-D", "DF-C", "AD", "FC", "FL"]


@dataclass
class BuildResult:
    written: list[Path] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def submit_run(run_dir: Path, entries: Path, *, name: str | None = None, force: bool = False) -> Path:
    """Copy a run's record and per-sample logs (and predicted masks) into the entries folder."""
    from dfabench.verify import verify

    folder = RunFolder(run_dir)
    record = folder.read_record()
    report = verify(run_dir)
    if not report.ok:
        raise DfabenchError(f"{run_dir} does not verify; fix it before submitting: {'; '.join(report.failed[:3])}")
    model = record.get("model", {})
    name = name or f"{model.get('name', 'model')}-{str(model.get('fingerprint', ''))[:8]}"
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise DfabenchError(f"bad entry name {name!r}: use letters, digits, '-', '_' and '.'")
    target = Path(entries) / name
    if target.exists():
        if not force:
            raise DfabenchError(f"entry {target} exists (use --force to replace it)")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(folder.record_path, target / RUN_RECORD)
    for info in record.get("samples", {}).values():
        shutil.copy2(folder.path / info["file"], target / info["file"])
    if (folder.path / "masks").is_dir():
        shutil.copytree(folder.path / "masks", target / "masks")
    meta = {"name": name}
    (target / "entry.json").write_text(json.dumps(meta, indent=2) + "\n")
    return target


def _judge_key(record: dict[str, Any], task_id: str) -> str | None:
    """The judge identity behind a task's judge score (model as the endpoint reports it, rubric, image)."""
    judge = record.get("judge") or {}
    judge = (judge.get("tasks") or {}).get(task_id) or judge
    if not judge.get("model"):
        return None
    rubric_hash = f" #{str(judge['rubric_sha256'])[:8]}" if judge.get("rubric_sha256") else ""
    return f"{judge.get('model')} / {judge.get('rubric')} v{judge.get('rubric_version')}{rubric_hash}" + (
        " +image" if judge.get("with_image") else "")


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


def _reference_fingerprints(records: list[dict[str, Any]]) -> dict[str, str]:
    """The task fingerprint each task is ranked under: the installed spec's, else the most common."""
    from dfabench.plugins import get_manager

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
    from dfabench.verify import verify

    by_fingerprint = {load_benchmark(b).fingerprint(): Path(b) for b in benches}
    entries = Path(entries)
    if not entries.is_dir():
        raise DfabenchError(f"{entries}: no such entries folder")
    result = BuildResult()
    loaded: list[tuple[str, Path, dict[str, Any], dict[str, Any]]] = []
    for path in sorted(p for p in entries.iterdir() if p.is_dir()):
        if not (path / RUN_RECORD).exists():
            result.excluded.append(f"{path.name}: no {RUN_RECORD}")
            continue
        try:
            fingerprint = json.loads((path / RUN_RECORD).read_text()).get("benchmark", {}).get("fingerprint")
            report = verify(path, bench_root=by_fingerprint.get(fingerprint))
        except (DfabenchError, ValueError, AttributeError) as exc:
            result.excluded.append(f"{path.name}: {exc}")
            continue
        if not report.ok:
            result.excluded.append(f"{path.name}: does not verify ({'; '.join(report.failed[:2])})")
            continue
        record = RunFolder(path).read_record()
        meta = {}
        if (path / "entry.json").exists():
            try:
                meta = json.loads((path / "entry.json").read_text())
            except ValueError:
                result.excluded.append(f"{path.name}: entry.json is malformed JSON")
                continue
        loaded.append((meta.get("name") or path.name, path, record, meta))

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
        lines += [f"## {bench_name} (split {split}, fingerprint `{str(fingerprint)[:12]}`)", ""]
        description = items[0][2].get("benchmark", {}).get("description")
        if description:
            lines += [f"> {' '.join(str(description).split())}", ""]
        for task_id in [t for t in TASK_ORDER if any(t in i[2].get("tasks", {}) for i in items)] + sorted(
                {t for i in items for t in i[2].get("tasks", {})} - set(TASK_ORDER)):
            columns = COLUMNS.get(task_id) or sorted({m for i in items for m in i[2].get("metrics", {})
                                                      .get(task_id, {})})
            rows = []
            for name, _path, record, _meta in items:
                info = record.get("tasks", {}).get(task_id)
                if info is None:
                    continue
                why = _not_comparable(record, task_id, info, reference)
                if why:
                    data["not_ranked"].append({"entry": name, "task": task_id, "reason": why})
                    continue
                metrics = record.get("metrics", {}).get(task_id, {})
                counts = record.get("counts", {}).get(task_id, {})
                status = info.get("status", "")
                row = {"entry": name, "model": record["model"].get("name"), "args": record["model"].get("args"),
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
            lines += [f"### {task_id}", "", _markdown_table(task_id, columns, rows), ""]
        data["boards"].append(board)
    if data["not_ranked"]:
        lines += ["## Not ranked", ""]
        lines += [f"- {x['entry']} / {x['task']}: {x['reason']}" for x in data["not_ranked"]]
        lines.append("")
    if result.excluded:
        lines += ["## Excluded entries", ""] + [f"- {x}" for x in result.excluded] + [""]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "README.md", "\n".join(lines))
    atomic_write_text(out / "leaderboard.json", json.dumps(data, indent=2, default=str) + "\n")
    result.written = [out / "README.md", out / "leaderboard.json"]
    result.data = data
    return result


def _not_comparable(record: dict[str, Any], task_id: str, info: dict[str, Any], reference: dict[str, str]
                    ) -> str | None:
    if record.get("limit") is not None:
        return f"partial run (--limit {record['limit']})"
    if info.get("fingerprint") != reference.get(task_id):
        return (f"task spec {str(info.get('fingerprint'))[:12]} differs from the ranked spec "
                f"{str(reference.get(task_id))[:12]} (version {info.get('version')})")
    return None


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
    header = ["#", "entry", "model", *columns, "n", "failed", "unparsed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, row in enumerate(rows, 1):
        counts = row["counts"] or {}
        if row["na"]:
            cells = ["n/a"] * len(columns) + ["", "", ""]
        else:
            cells = [_cell(row["values"].get(c)) for c in columns] + [
                str(counts.get("n", "")), str(counts.get("n_failed", "")), str(counts.get("n_unparsed", ""))]
        args = json.dumps(row["args"]) if row["args"] else ""
        model = f"{row['model']} {args}".strip().replace("|", "\\|")
        lines.append("| " + " | ".join([str(rank) if not row["na"] else "", row["entry"], model, *cells]) + " |")
    return "\n".join(lines)

