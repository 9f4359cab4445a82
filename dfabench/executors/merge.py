"""``dfabench merge RUN_DIR... --out RUN_DIR``: the shards of a run (``dfabench run --shard K/N``) as one run.

What holds after a merge: the merged folder's per-sample logs are the shards' records in the order an
unsharded run writes them (manifest order), re-scored with the run's seed over the whole selection, so its
metrics, logs and record equal those of the same run made unsharded (times, the command and the executor
aside). The shards must be the N parts of one run, each exactly once: same model identity, benchmark
fingerprint, split, tasks and settings; every shard's log must hold exactly the ids of its part of the
selection. Anything else is refused with one line, before anything is written. The shards are only read;
their response caches are merged into the new folder's, so a later run into it resumes from them.
"""

from __future__ import annotations

import heapq
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dfabench.errors import DfabenchError, InputError
from dfabench.executors.shards import shard_of
from dfabench.store import CACHE_FILE, ResponseCache, RunFolder, samples_file_name

#: run.json fields that must be the same in every shard (the rest is per shard: times, command, executor)
_SAME = ("benchmark", "seed", "limit", "frames_per_video", "n_boot")
#: counts of an extractor record that add up over shards
_EXTRACTOR_COUNTS = ("n_unparsed_by_rules", "n_extracted", "n_failed", "n_asked")


def _shards(paths: list[Path]) -> list[tuple[Path, RunFolder, dict[str, Any]]]:
    shards = []
    for path in paths:
        folder = RunFolder(path)
        record = folder.read_record()
        folder.check_integrity(record, "merge it")
        if not record.get("shard"):
            raise InputError(path, "is not a shard of a run (it was not run with --shard K/N)")
        shards.append((path, folder, record))
    counts = {r["shard"]["count"] for _, _, r in shards}
    if len(counts) > 1:
        raise DfabenchError("the folders are shards of different splits: " + ", ".join(
            f"{p} is {r['shard']['index']}/{r['shard']['count']}" for p, _, r in shards))
    count = counts.pop()
    by_index: dict[int, Path] = {}
    for path, _, record in shards:
        index = record["shard"]["index"]
        if index in by_index:
            raise DfabenchError(f"shard {index}/{count} is given twice: {by_index[index]} and {path}")
        by_index[index] = path
    missing = sorted(set(range(1, count + 1)) - set(by_index))
    if missing:
        raise DfabenchError(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing: a merge needs all "
                            f"{count} shards of the run")
    first_path, _, first = shards[0]
    for path, _, record in shards[1:]:
        different = _differences(first, record)
        if different:
            raise DfabenchError(f"{path} and {first_path} are shards of different runs ({'; '.join(different)})")
    return sorted(shards, key=lambda s: s[2]["shard"]["index"])


def _differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    if a["model"].get("fingerprint") != b["model"].get("fingerprint"):
        out.append(f"model {a['model'].get('name')} {a['model'].get('fingerprint', '')[:12]} vs "
                   f"{b['model'].get('name')} {b['model'].get('fingerprint', '')[:12]}")
    for name in _SAME:
        if a.get(name) != b.get(name):
            out.append(f"{name} differs")
    if list(a["tasks"]) != list(b["tasks"]):
        out.append(f"tasks {', '.join(a['tasks'])} vs {', '.join(b['tasks'])}")
    else:
        for task, info in a["tasks"].items():
            other = b["tasks"][task]
            for name in ("fingerprint", "selection", "generation", "capability", "status"):
                if info.get(name) != other.get(name):
                    out.append(f"{task}: {name} differs")
            if {k: v for k, v in (info.get("extractor") or {}).items() if k not in _EXTRACTOR_COUNTS} != {
                    k: v for k, v in (other.get("extractor") or {}).items() if k not in _EXTRACTOR_COUNTS}:
                out.append(f"{task}: extractor differs")
    if a.get("judge") or b.get("judge"):
        out.append("a shard was judged: merge first, then judge the merged run")
    return out


def _stream(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    from dfabench.records import loads_json, sample_record_problem

    with open(path, "rb") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            record = loads_json(line, path, f"line {lineno}")
            problem = sample_record_problem(record)
            if problem is not None:
                raise InputError(path, problem, f"line {lineno}")
            yield record["id"], record


def merge_runs(paths: list[Path], out: Path, *, bench: str | None = None, command: list[str] | None = None,
               stream=None) -> dict[str, Any]:
    """Merge the shard folders ``paths`` into the new run folder ``out``; returns the merged record."""
    from dfabench.data.manifest import load_benchmark
    from dfabench.files import sample_line
    from dfabench.redact import scrub_value
    from dfabench.runner import _check_reference_masks, select_split
    from dfabench.scoring import score_log, scored_records, set_variant_summary, task_from_record
    from dfabench.selection import ids_sha256, select_samples
    from dfabench.store import open_sample_log

    if len(paths) < 1:
        raise DfabenchError("dfabench merge needs the shard folders of a run")
    shards = _shards(paths)
    first = shards[0][2]
    bench_path = bench or first["benchmark"].get("path")
    benchmark = load_benchmark(bench_path)
    if benchmark.fingerprint() != first["benchmark"]["fingerprint"]:
        raise InputError(bench_path, "is not the benchmark the shards ran on (its fingerprint differs); "
                                     "give the right one with --bench")
    split, pool = select_split(benchmark, first["benchmark"].get("split"))
    count = first["shard"]["count"]

    folder = RunFolder(out)
    if folder.path.exists() and (not folder.path.is_dir() or any(
            not p.name.startswith(".") for p in folder.path.iterdir())):
        raise DfabenchError(f"{folder.path} is not an empty folder; merge into a new one (nothing was changed)")

    plan = []
    for task_id, info in first["tasks"].items():
        task = task_from_record(task_id, info, shards[0][0] / "run.json")
        if info.get("status") != "done":
            plan.append((task_id, task, info, None))
            continue
        samples, selection = select_samples(task, pool, split, first.get("limit"),
                                            frames_per_video=first.get("frames_per_video"), seed=first.get("seed", 0))
        if selection != info.get("selection"):
            raise InputError(bench_path, f"task {task_id}: the benchmark no longer selects what the shards "
                                         "selected (the selection record differs)")
        position = {s.id: i for i, s in enumerate(samples)}
        for path, _, record in shards:
            part = record["tasks"][task_id].get("shard") or {}
            want = ids_sha256(s.id for s in samples if shard_of(s.id, count) == record["shard"]["index"])
            if part.get("ids_sha256") != want:
                raise InputError(path, f"task {task_id}: the shard's samples are not shard "
                                       f"{record['shard']['index']}/{count} of the selection")
        plan.append((task_id, task, info, position))
    if any(t.reference == "mask_and_description" for _, t, _, p in plan if p is not None):
        _check_reference_masks(benchmark, [s for s in pool if s.mask])

    record = json.loads(json.dumps(first))  # a deep copy of the first shard's record
    record.update({
        "created": min(r.get("created") or "" for _, _, r in shards) or record.get("created"),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": scrub_value(command or ["dfabench", "merge", *map(str, paths), "--out", str(out)]),
        "shard": None, "metrics": {}, "counts": {}, "breakdowns": {}, "samples": {},
        "executor": {"kind": "shards", "count": count,
                     "executors": sorted({(r.get("executor") or {}).get("kind", "local") for _, _, r in shards})},
        "merged_from": [{"path": str(p.resolve()), "shard": f"{r['shard']['index']}/{count}",
                         "updated": r.get("updated")} for p, _, r in shards],
    })
    with folder.transaction(create=True) as tx:
        for task_id, task, info, position in plan:
            task_info = {k: v for k, v in info.items() if k != "shard"}
            extractors = [r["tasks"][task_id].get("extractor") for _, _, r in shards]
            if extractors[0]:
                task_info["extractor"] = {**extractors[0], **{
                    k: sum(int((e or {}).get(k) or 0) for e in extractors) for k in _EXTRACTOR_COUNTS
                    if k in extractors[0]}}
            record["tasks"][task_id] = task_info
            if position is None:
                continue
            # stream 1: the shards' records in selection order, to a file beside the staging (masks copied on the way)
            unscored = tx.staging.parent / f".merge-{task_id}.jsonl"
            masks: set[str] = set()
            try:
                with open(unscored, "wb") as handle:
                    for sample, origin in _merged_records(task_id, shards, position):
                        parsed = sample.get("parsed")
                        mask = parsed.get("mask") if isinstance(parsed, dict) else None
                        if mask:  # listed and hashed in the shard's run.json: checked above
                            tx.write_bytes(mask, (origin / mask).read_bytes())
                            masks.add(mask)
                        handle.write(sample_line(sample).encode("utf-8"))
                # stream 2: scored as columns, then written again with the per-sample metrics (flat in memory)
                merged_log = open_sample_log(unscored)
                try:
                    scored, parts = score_log(task, merged_log, seed=record.get("seed", 0),
                                              n_boot=record.get("n_boot", 1000), bench_root=str(benchmark.root),
                                              run_dir=str(tx.staging if task.reference == "mask_and_description"
                                                          else out))
                    digest = tx.write_samples(task_id, scored_records(merged_log, parts))
                finally:
                    merged_log.close()
            finally:
                unscored.unlink(missing_ok=True)
            record["metrics"][task_id] = scored.metrics
            record["counts"][task_id] = scored.counts
            record["breakdowns"][task_id] = scored.breakdowns
            log = {"file": samples_file_name(task_id), "sha256": digest}
            if task.reference == "mask_and_description":
                log["masks"] = {m: tx.sha256_of(m) for m in sorted(masks)}
            record["samples"][task_id] = log
        set_variant_summary(record)  # the spread across prompt variants, of the merged numbers
        tx.write_record(record)
    _merge_caches([folder_of.path / CACHE_FILE for _, folder_of, _ in shards], folder.path / CACHE_FILE)
    return record


def _merged_records(task_id: str, shards, position: dict[str, int]) -> Iterator[tuple[dict[str, Any], Path]]:
    """The shards' records of ``task_id`` in selection order (every id of the selection exactly once), each
    with the shard folder it came from; read as streams (a k-way merge by manifest position)."""
    seen: dict[str, int] = {}

    def keyed(index: int, folder: RunFolder):
        log = folder.path / samples_file_name(task_id)
        last = -1
        for sample_id, sample in _stream(log):
            where = position.get(sample_id)
            if where is None:
                raise InputError(log, f"sample {sample_id!r} is not in the run's selection of {task_id}")
            if sample_id in seen:
                raise InputError(log, f"sample {sample_id!r} is also in shard {seen[sample_id]}: the shards overlap")
            if where < last:
                raise InputError(log, f"sample {sample_id!r} is out of manifest order")
            seen[sample_id] = index
            last = where
            yield where, sample, folder.path

    n = 0
    streams = (keyed(record["shard"]["index"], folder) for _, folder, record in shards)
    for _, sample, origin in heapq.merge(*streams, key=lambda triple: triple[0]):
        n += 1
        yield sample, origin
    if n != len(position):
        missing = [i for i in position if i not in seen]
        raise DfabenchError(f"{task_id}: {len(missing)} sample(s) of the selection are in no shard "
                            f"(e.g. {missing[0]!r}): a shard did not finish")


def _merge_caches(sources: list[Path], target: Path) -> None:
    """Copy every shard's cached responses into ``target`` (answers of one model identity: keys never clash)."""
    from urllib.parse import quote

    ResponseCache(target).close()  # creates the table
    db = sqlite3.connect(f"file:{quote(str(target.resolve()))}", uri=True)
    try:
        for index, source in enumerate(p for p in sources if p.is_file()):
            db.execute(f"ATTACH DATABASE ? AS shard{index}", (f"file:{quote(str(source.resolve()))}?mode=ro",))
            db.execute(f"INSERT OR IGNORE INTO responses (key, value) SELECT key, value FROM shard{index}.responses")
            db.commit()
            db.execute(f"DETACH DATABASE shard{index}")
    finally:
        db.close()
