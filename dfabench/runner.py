"""The predict stage: ask a model every sample of every task, with batching, caching and resume.

For each task the runner walks the selected samples in batches. For each batch it looks the
responses up in the SQLite response cache; for the rest it decodes the images (a corrupt or
oversized image fails that sample only), calls the model once for the batch and, if that
raises, once per sample, so one bad sample never takes its batch down. Each answered batch is
committed to the cache before the next one starts: a run killed with SIGKILL and started again
asks the model only for what it had not answered. The per-sample logs, the predicted masks and
the run record are committed at the end as one transaction, under the run folder's lock.
"""

from __future__ import annotations

import functools
import json
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dfabench import __version__, extract
from dfabench.answers import NO_CATEGORIES, Item, sample_record
from dfabench.data.manifest import Benchmark, Sample, load_benchmark
from dfabench.errors import DfabenchError
from dfabench.executors import create_executor
from dfabench.executors.local import DECODE_THREADS  # noqa: F401 - re-exported (it was defined here)
from dfabench.executors.shards import shard_record, take_shard
from dfabench.images import (  # noqa: F401 - re-exported (benchmarks and plugins import them from here)
    DEFAULT_MAX_IMAGE_PIXELS,
    ImageError,
    decode_image,
    max_image_pixels,
)
from dfabench.plugins import get_manager
from dfabench.progress import Progress
from dfabench.records import judge_without_tasks
from dfabench.redact import scrub_value
from dfabench.roles import check_role_entry, create_role_model
from dfabench.selection import ids_sha256, left_out_note, select_samples
from dfabench.store import (
    CACHE_FILE,
    SCHEMA_VERSION,
    ResponseCache,
    RunFolder,
    cache_key,
    canonical_json,
    samples_file_name,
    sha256_text,
)
from dfabench.tasks import TaskSpec, expand_variants

# --------------------------------------------------------------------------- options


@dataclass
class RunOptions:
    model: str
    tasks: list[TaskSpec]
    bench: str
    out: Path
    model_args: dict[str, Any] = field(default_factory=dict)
    split: str | None = "auto"
    limit: int | None = None
    seed: int = 0
    batch_size: int | None = None
    cache: Path | None = None
    n_boot: int = 1000
    progress: bool = True
    max_new_tokens: int | None = None
    command: list[str] = field(default_factory=list)
    #: (registered model name, arguments) of the answer extractor (dfabench.extract), or None: rules only
    extractor: tuple[str, dict[str, Any]] | None = None
    #: ``(K, N)``: predict shard K of N only (1-based; dfabench.executors.shards), or None: every sample
    shard: tuple[int, int] | None = None
    #: where the model answers: "local" (this process) or "ray" (actors; dfabench.executors.ray)
    executor: str = "local"
    #: the executor's settings: for "ray", ray_address, replicas, gpus_per_replica, cpus_per_replica
    executor_options: dict[str, Any] = field(default_factory=dict)
    #: at most N frames per source video (seeded; dfabench.selection), or None: every frame
    frames_per_video: int | None = None
    #: ``--prompt-variant``: None (each task's own prompt), a variant name, ``A,B`` or ``all``
    #: (dfabench.tasks.expand_variants); each variant runs as its own task ``TASK@NAME``
    prompt_variant: str | None = None


def _environment() -> dict[str, Any]:
    from importlib import metadata

    packages = {}
    for name in ("dfabench", "numpy", "pillow", "torch", "transformers", "peft", "openai"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": packages}


def select_split(benchmark: Benchmark, split: str | None) -> tuple[str, list[Sample]]:
    if split == "auto":
        split = "test" if any(s.split == "test" for s in benchmark.samples) else "all"
    return split or "all", benchmark.select(split)


# --------------------------------------------------------------------------- the run


def run(options: RunOptions, stream=None) -> dict[str, Any]:
    """Run the predict and score stages; returns the run record (also written to run.json).

    The whole run holds the run folder's lock (a second writer gets exit 2) and writes once: the
    per-sample logs, the predicted masks and run.json are one transaction (:mod:`dfabench.store`)."""
    from dataclasses import replace

    if options.prompt_variant is not None:  # an unknown variant is refused before the folder is touched
        options = replace(options, tasks=expand_variants(options.tasks, options.prompt_variant))
    folder = RunFolder(options.out)
    if folder.path.exists() and not folder.path.is_dir():
        raise DfabenchError(f"{folder.path} is a file; --out must be a folder")
    with folder.transaction(create=True):
        return _run(options, folder, stream)


def _run(options: RunOptions, folder: RunFolder, stream=None) -> dict[str, Any]:
    """:func:`run` inside the run folder's transaction."""
    from dfabench.plugins import get_manager, load_object
    from dfabench.scoring import score_records, set_variant_summary

    stream = stream or sys.stderr
    manager = get_manager()
    entry = manager.models.get(options.model)
    benchmark = load_benchmark(options.bench)
    split, pool = select_split(benchmark, options.split)
    per_task: dict[str, list[Sample]] = {}
    selections: dict[str, dict[str, Any]] = {}
    for task in options.tasks:
        task_parser(task)  # a spec naming an unregistered parser fails here, before any work
        per_task[task.id], selections[task.id] = select_samples(task, pool, split, options.limit,
                                                                frames_per_video=options.frames_per_video,
                                                                seed=options.seed)
    shards = {task.id: take_shard(per_task[task.id], options.shard) for task in options.tasks}
    benchmark.check_files(s for samples in shards.values() for s in samples)
    _check_reference_masks(benchmark, [s for t in options.tasks if t.reference == "mask_and_description"
                                       for s in shards[t.id]])
    bench_fingerprint = benchmark.fingerprint()

    previous = folder.read_record() if folder.exists() else None
    # what an interrupted first run leaves behind: its cache, predicted masks, temporary files
    leftovers = (CACHE_FILE, f"{CACHE_FILE}-wal", f"{CACHE_FILE}-shm", f"{CACHE_FILE}-journal", "masks")
    if previous is None and folder.path.is_dir() and any(
            p.name not in leftovers and not p.name.startswith(".") for p in folder.path.iterdir()):
        cache = folder.path / CACHE_FILE
        reuse = f"; its answers can be reused: --out NEW --cache {cache}" if cache.is_file() else ""
        raise DfabenchError(f"{folder.path} is not empty and holds no run; choose an empty or new folder for --out"
                            f"{reuse}")
    if previous is not None:
        operational = getattr(load_object(entry.factory), "operational_args", ())
        _check_same_run(folder, previous, entry.name, options, bench_fingerprint, split, tuple(operational))
        # a log or mask changed after it was written is refused, not overwritten (the evidence would be erased,
        # and the tasks kept as they are would carry it into a record that verifies); the lost log of a task run
        # again is no problem: it is written anew
        folder.check_integrity(previous, "run into it", rewritten=[t.id for t in options.tasks])

    if options.extractor is not None:  # refused before any model call, not after the predictions
        check_role_entry("extractor", options.extractor[0])
    executor = create_executor(options.executor, entry, options.model_args, str(benchmark.root),
                               options.executor_options, stream)
    try:
        described = executor.start(benchmark)
        model_info = described["record"]
        capabilities = frozenset(described["capabilities"])
        kept = set((previous or {}).get("samples", {})) - {t.id for t in options.tasks}
        if previous is not None and kept and previous.get("model", {}).get("fingerprint") != model_info["fingerprint"]:
            raise DfabenchError(
                f"{folder.path} holds results of {', '.join(sorted(kept))} from a model whose identity differs from "
                f"this one (weights or settings changed: {json.dumps(model_info['identity'])[:200]}); "
                "choose another --out (nothing was changed)")
        record: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "dfabench_version": __version__,
            "created": (previous or {}).get("created") or _now(),
            "updated": _now(),
            "command": scrub_value(options.command),
            "model": model_info,
            "benchmark": {"path": str(Path(options.bench).resolve()), "name": benchmark.name,
                          "description": benchmark.info().get("description"),
                          "fingerprint": bench_fingerprint, "split": split, "n_samples": len(pool)},
            "tasks": {},
            "seed": options.seed,
            "limit": options.limit,
            "frames_per_video": options.frames_per_video,
            "shard": shard_record(options.shard),
            "n_boot": options.n_boot,
            "environment": _environment(),
            "judge": None,
            "metrics": {},
            "counts": {},
            "breakdowns": {},
            "samples": {},
        }
        if previous is not None:
            # Tasks of an earlier run into this folder that this run does not redo are kept.
            for name in ("tasks", "metrics", "counts", "breakdowns", "samples"):
                record[name] = {k: v for k, v in previous.get(name, {}).items()
                                if k not in {t.id for t in options.tasks}}
            # (the judgments of the tasks run again are dropped below unless their answers did not change)
        finished: list[tuple[TaskSpec, list[dict[str, Any]]]] = []
        cache = ResponseCache(options.cache or folder.path / CACHE_FILE)
        try:
            for task in options.tasks:
                capability = task.serves(capabilities)
                task_info = {"version": task.version, "fingerprint": task.fingerprint, "spec": task.canonical(),
                             "capability": capability, "selection": selections[task.id]}
                if task.variant is not None:  # a prompt variant: its own task (the spec holds its prompt)
                    task_info.update(variant=task.variant, base=task.base_id)
                record["tasks"][task.id] = task_info
                note = left_out_note(task.id, selections[task.id])
                if note:
                    stream.write(note + "\n")
                if capability is None:
                    task_info["status"] = (f"n/a: the model has {sorted(capabilities) or 'no capabilities'}, "
                                           f"the task needs one of {list(task.requires)}")
                    stream.write(f"{task.id}: {task_info['status']}\n")
                    continue
                if task.variant is not None and capability != "generate":
                    # a detector is asked no question: a paraphrase of it would repeat the task's own numbers on
                    # the variant's board, beside the models whose answers it does change
                    task_info["status"] = (f"n/a: a {capability} model is asked no question, so a prompt variant "
                                           f"does not apply (its numbers are those of {task.base_id})")
                    stream.write(f"{task.id}: {task_info['status']}\n")
                    continue
                settings = _settings_for(task, options)
                task_info["generation"] = settings.to_dict()
                if options.shard is not None:
                    task_info["shard"] = {**shard_record(options.shard), "n": len(shards[task.id]),
                                          "ids_sha256": ids_sha256(s.id for s in shards[task.id])}
                samples_records = predict_task(executor, described, task, capability, settings,
                                               shards[task.id], benchmark, cache, options, folder, stream)
                if (capability == "score" and task.parser == "category"
                        and not any(r["category_scores"] for r in samples_records)
                        and any(r["error"] == NO_CATEGORIES for r in samples_records)):
                    # a detector that gives no category probabilities at all cannot classify: n/a, not 0
                    task_info["status"] = "n/a: the model gave no category probabilities"
                    stream.write(f"{task.id}: {task_info['status']}\n")
                    continue
                task_info["status"] = "done"
                finished.append((task, samples_records))
        finally:
            cache.close()
        record["executor"] = executor.record()
    finally:
        executor.close()
    if options.extractor is not None:
        _extract(options, folder, record, finished)
    if previous is not None:
        kept_judged = _carry_judgments(folder, previous, finished, stream)
        record["judge"] = judge_without_tasks(previous.get("judge"),
                                              [t.id for t in options.tasks if t.id not in kept_judged])
    # Scoring needs no model; the files are staged and committed (one switch, when run() returns)
    # only once everything is computed, so a run that fails or is killed on the way leaves the
    # folder's earlier record, logs and masks as they were.
    tx = folder.active_transaction()
    for task, samples_records in finished:
        # this run's predicted masks are still staged: the mask metric reads the staged generation
        scored = score_records(task, samples_records, seed=options.seed, n_boot=options.n_boot,
                               bench_root=str(benchmark.root),
                               run_dir=str(tx.staging if task.reference == "mask_and_description" else folder.path))
        record["metrics"][task.id] = scored.metrics
        record["counts"][task.id] = scored.counts
        record["breakdowns"][task.id] = scored.breakdowns
    set_variant_summary(record)
    for task, samples_records in finished:
        log = {"file": samples_file_name(task.id), "sha256": tx.write_samples(task.id, samples_records)}
        if task.reference == "mask_and_description":
            log["masks"] = {path: tx.sha256_of(path) for path in sorted(
                {(r.get("parsed") or {}).get("mask") for r in samples_records if isinstance(r.get("parsed"), dict)}
                - {None})}
        record["samples"][task.id] = log
    for task in options.tasks:
        # the earlier generation's files of a re-run task go at the switch (unless written anew)
        tx.delete_tree(f"masks/{task.id}")
        if task.id not in record["samples"]:
            tx.delete(samples_file_name(task.id))
    tx.write_record(record)
    return record


def _carry_judgments(folder: RunFolder, previous: dict[str, Any], finished: list[tuple[TaskSpec, list[dict[str, Any]]]],
                     stream) -> set[str]:
    """The judged tasks run again whose judgments still hold, copied into their new records.

    Running a judged task again (the same command, to resume or re-score) must not lose its judgments: when every
    judged sample's judge input (question, answer, references: :func:`judge_input_sha256`) is what it was, each
    sample keeps its ``judge`` field and the task keeps its judge identity. When an answer changed, the task's
    judgments are dropped as a whole (a judge score over part of the answers would be another number) and a line
    says so; judging again asks only for what changed (the judge's cache answers the rest)."""
    from dfabench.metrics.judge_input import judge_input_sha256

    judged = set((previous.get("judge") or {}).get("tasks") or {})
    kept: set[str] = set()
    for task, records in finished:
        if task.id not in judged or task.id not in (previous.get("samples") or {}):
            continue
        try:
            before = {r["id"]: r for r in folder.iter_samples(task.id) if "judge" in r}
        except DfabenchError:
            before = None
        by_id = {r["id"]: r for r in records}
        if before is not None and all(
                sample_id in by_id and judge_input_sha256(by_id[sample_id]) == judge_input_sha256(old)
                for sample_id, old in before.items() if old.get("judge") is not None):
            for sample_id, old in before.items():
                if sample_id in by_id:
                    by_id[sample_id]["judge"] = old["judge"]
            kept.add(task.id)
        else:
            stream.write(f"{task.id}: the answers changed since it was judged: its judgments are dropped; run "
                         f"`dfabench judge {folder.path}` again (unchanged answers come from the judge's cache)\n")
    return kept


def _extract(options: RunOptions, folder: RunFolder, record: dict[str, Any],
             finished: list[tuple[TaskSpec, list[dict[str, Any]]]]) -> None:
    """Read the answers the rules left unparsed with the extractor model (:mod:`dfabench.extract`)."""
    tasks = [(task, records) for task, records in finished if task.parser in extract.LABELS]
    if not tasks:
        return
    extractor = create_role_model("extractor", *options.extractor)
    cache = ResponseCache(folder.path / extract.CACHE_FILE)
    try:
        for task, records in tasks:
            record["tasks"][task.id]["extractor"] = extract.extract_unparsed(task, records, extractor, cache)
    finally:
        cache.close()
        extractor.close()


def _check_reference_masks(benchmark: Benchmark, samples: list[Sample]) -> None:
    """Decode every reference mask a task will score against, before any model call; a mask whose
    size is not its image's is refused (never resized)."""
    from dfabench.errors import InputError
    from dfabench.metrics.localization import MaskSizeError, load_reference_mask

    for sample in samples:
        try:
            load_reference_mask(str(benchmark.path_of(sample.mask)), str(benchmark.path_of(sample.image)))
        except MaskSizeError as exc:
            raise InputError(benchmark.manifest, f"mask {sample.mask!r}: {exc}", f"id {sample.id!r}") from None
        except (OSError, ValueError) as exc:
            raise InputError(benchmark.manifest, f"mask {sample.mask!r} cannot be decoded ({exc})",
                             f"id {sample.id!r}") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _settings_for(task: TaskSpec, options: RunOptions):
    from dataclasses import replace

    settings = replace(task.generation, seed=options.seed)
    if options.max_new_tokens is not None:
        settings = replace(settings, max_new_tokens=options.max_new_tokens)
    return settings


def _check_same_run(folder: RunFolder, previous: dict[str, Any], model_name: str, options: RunOptions,
                    bench_fingerprint: str, split: str, operational_args: tuple[str, ...] = ()) -> None:
    """Refuse to write a different run over a run folder that already holds one."""
    old_model = previous.get("model", {})
    problems = []
    operational = set(operational_args)

    def answering(args: dict[str, Any] | None) -> dict[str, Any]:
        return {k: v for k, v in (args or {}).items() if k not in operational}

    new_args = scrub_value(options.model_args)  # stored scrubbed of credentials: compared the same way
    if old_model.get("name") != model_name or answering(old_model.get("args")) != answering(new_args):
        problems.append(f"model {old_model.get('name')} {scrub_value(old_model.get('args'))}")
    if previous.get("benchmark", {}).get("fingerprint") != bench_fingerprint:
        problems.append("another benchmark (fingerprint differs)")
    if previous.get("benchmark", {}).get("split") != split:
        problems.append(f"split {previous.get('benchmark', {}).get('split')}")
    if (previous.get("seed"), previous.get("limit"), previous.get("n_boot", 1000)) != (
            options.seed, options.limit, options.n_boot):
        problems.append(f"seed {previous.get('seed')} / limit {previous.get('limit')} / "
                        f"n-boot {previous.get('n_boot', 1000)}")
    if previous.get("frames_per_video") != options.frames_per_video:
        problems.append(f"frames per video {previous.get('frames_per_video')}")
    old_shard = previous.get("shard")
    if old_shard != shard_record(options.shard):
        problems.append(f"shard {old_shard['index']}/{old_shard['count']}" if old_shard
                        else "the whole run, not a shard")
    if problems:
        raise DfabenchError(f"{folder.path} already holds a different run ({'; '.join(problems)}); "
                            "choose another --out (nothing was changed)")


# --------------------------------------------------------------------------- one task


def task_parser(task: TaskSpec):
    """``text -> parsed answer`` for ``task``: its registered parser, given the spec's ``parser_options`` (the
    letters of a lettered prompt) where it has them; a parser that takes no options is refused for such a spec."""
    import inspect

    from dfabench.errors import InputError

    parser = get_manager().parser_for(task)
    if not task.parser_options:
        return parser
    try:
        inspect.signature(parser).bind("answer", {})
    except TypeError:
        raise InputError(task.source, f"parser {task.parser!r} takes no options, so it cannot read the lettered "
                                      "answers 'parser_options' describes", f"task {task.id!r}") from None
    except ValueError:  # no signature to inspect (a builtin): let the call say
        pass
    options = dict(task.parser_options)
    return lambda text: parser(text, options)


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict_task(executor, described: dict[str, Any], task: TaskSpec, capability: str, settings,
                 samples: list[Sample], benchmark: Benchmark, cache: ResponseCache, options: RunOptions,
                 folder: RunFolder, stream=None) -> list[dict[str, Any]]:
    """Predict one task on ``executor`` (:mod:`dfabench.executors`); returns the per-sample records (in
    sample order). The answers are committed to the response cache here, batch by batch, as they come
    back: the driver is the cache's one writer, wherever the model runs."""
    model_fingerprint = described["record"]["fingerprint"]
    settings_dict = settings.to_dict()
    task_fingerprint = task.fingerprint
    static_messages = task.messages() if task.reference != "conversation" else None
    static_hash = sha256_text(canonical_json(static_messages)) if static_messages is not None else None
    items = []
    for sample in samples:
        if static_messages is not None:
            messages, prompt_hash = static_messages, static_hash
        else:
            messages = task.messages(sample)
            prompt_hash = sha256_text(canonical_json(messages))
        if capability == "score":
            messages, prompt_hash = None, "score"
        key = cache_key(model_fingerprint, task_fingerprint, sample.id, prompt_hash, settings_dict,
                        benchmark.image_sha256(sample))  # the image's content: the hashes the fingerprint took
        items.append(Item(sample, key, prompt_hash, messages))

    batch_size = options.batch_size or described["default_batch_size"]
    cacheable = described["deterministic"] and settings.deterministic
    progress = Progress(len(items), task.id, enabled=options.progress, stream=stream)
    results: dict[str, dict[str, Any]] = {}

    def with_cache_hits() -> Iterator[tuple[list[Item], dict[str, Any]]]:
        for batch in _batches(items, batch_size):  # looked up when the executor asks for the batch
            yield batch, cache.get_many([item.key for item in batch]) if cacheable else {}

    for batch, answered in executor.answer(task, capability, settings, with_cache_hits(), str(benchmark.root)):
        to_cache = []
        n_cached = n_failed = 0
        for item in batch:
            outcome = answered[item.sample.id]
            if outcome.get("cached"):
                n_cached += 1
            if outcome.get("error"):
                n_failed += 1
            elif cacheable and not outcome.get("cached") and outcome.get("cacheable", True):
                to_cache.append((item.key, outcome["payload"]))
            results[item.sample.id] = outcome
        cache.put_many(to_cache)
        progress.update(len(batch), cached=n_cached, failed=n_failed)
    progress.close()

    parse = functools.lru_cache(maxsize=1 << 16)(task_parser(task))  # answers repeat; parsers are pure
    return [sample_record(task, item, results[item.sample.id], folder, parse, model_fingerprint)
            for item in items]
