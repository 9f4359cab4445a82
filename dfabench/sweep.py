"""Whole rounds: ``dfabench sweep ROUND.yaml`` runs models x tasks x benchmarks, judges, submits and builds.

A round file (YAML) names the models (each with its arguments, executor and batch settings), the tasks, the
benchmarks, an optional judge, and where the cells, the entries and the leaderboard go::

    round: 2026-12
    out: rounds-out/2026-12          # cells at OUT/runs/<model name>/<benchmark name>/
    entries: leaderboard/entries     # where the cells are submitted
    leaderboard: leaderboard         # built here at the end
    benchmarks: {smoke: smoke, dfa: /data/dfa-bench}
    tasks: [DF-D, DF-C, AD]
    prompt_variant: all              # optional, as `run --prompt-variant`: also DF-D@lettered... and the spread
    judge: {model: openai, args: {model: Qwen/Qwen2.5-72B-Instruct, base_url: "http://h1:8000/v1"}}
    models:
      - name: spectrum
        model: spectrum
        tasks: [DF-D, DF-C]
        executor: {kind: ray, replicas: 2, gpus_per_replica: 1}
        batch_size: 16

Paths are relative to the round file. The whole file is checked before any work (:func:`load_round`: unknown keys
with "did you mean", models, tasks and the judge through the registries, the benchmark folders). Then each cell
(one run folder per model x benchmark, holding all its tasks) is inspected (:func:`inspect_cell`): a complete cell
is skipped, an incomplete one is resumed through the runner on the same folder (the response cache answers what
was already asked), a new one is run. The text tasks are judged (the judge stage; what this judge already judged
is not asked again), every cell is submitted (an entry already holding this cell's run is left alone) and the
leaderboard is built once. A cell that fails is reported and the others go on (:func:`sweep`); nothing computed
is lost, because every stage commits its own work.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dfabench.errors import DfabenchError, InputError
from dfabench.redact import redact_clip, scrub_value

__all__ = ["Bench", "Cell", "CellResult", "ModelPlan", "Round", "SweepResult", "inspect_cell", "load_round",
           "summary_table", "sweep"]

ROUND_KEYS = ("round", "out", "entries", "leaderboard", "reported", "benchmarks", "tasks", "judge", "models",
              "split", "seed", "limit", "n_boot", "frames_per_video", "replicates", "prompt_variant")
MODEL_KEYS = ("name", "model", "args", "tasks", "executor", "batch_size", "max_new_tokens")
EXECUTOR_KEYS = ("kind", "ray_address", "replicas", "gpus_per_replica", "cpus_per_replica")
JUDGE_KEYS = ("model", "args", "with_image", "rubric", "output", "max_tokens", "calibrate", "sample", "seed")
REQUIRED_ROUND_KEYS = ("round", "out", "benchmarks", "tasks", "models")

#: a model or benchmark name: it names a folder and (joined) a leaderboard entry
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

# cell outcomes, as the summary table shows them
DONE, SKIPPED, RESUMED, FAILED = "done", "skipped-complete", "resumed", "failed"


# --------------------------------------------------------------------------- the round file


@dataclass
class ModelPlan:
    """One ``models:`` item of a round file, checked."""

    name: str
    model: str  # the registered name (aliases resolved)
    args: dict[str, Any]
    tasks: list[Any]  # TaskSpec, in the round's order
    executor: str = "local"
    executor_options: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    max_new_tokens: int | None = None
    entry: Any = field(default=None, repr=False)  # the registry entry


@dataclass
class Bench:
    """One ``benchmarks:`` item: its name in the round, the value given and the folder it resolves to."""

    name: str
    value: str
    path: Path
    _loaded: Any = field(default=None, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)

    def benchmark(self):
        if self._loaded is None:
            from dfabench.data.manifest import load_benchmark

            self._loaded = load_benchmark(self.path)
        return self._loaded

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.benchmark().fingerprint()
        return self._fingerprint


@dataclass
class Round:
    """A checked round file."""

    path: Path
    name: str
    out: Path
    entries: Path
    leaderboard: Path | None
    reported: Path | None
    benchmarks: list[Bench]
    tasks: list[Any]
    models: list[ModelPlan]
    judge: Any = None  # JudgeSettings, or None: text tasks are not judged
    split: str = "auto"
    seed: int = 0
    limit: int | None = None
    n_boot: int = 1000
    frames_per_video: int | None = None
    replicates: int = 1000

    def cells(self, only: list[str] | None = None) -> list[Cell]:
        """Every model x benchmark cell, in the file's order (``only``: these models' cells)."""
        wanted = set(only) if only else None
        return [Cell(model=m, bench=b, folder=self.out / "runs" / m.name / b.name)
                for m in self.models if wanted is None or m.name in wanted for b in self.benchmarks]


class _Checker:
    """Type checks of the parsed YAML, each failure one :class:`InputError` naming the file, the line and the key."""

    def __init__(self, path: Path, node: Any):
        self.path, self.node = path, node

    def fail(self, where: tuple, problem: str) -> InputError:
        line = _line_of(self.node, where)
        label = _dotted(where)
        record = f"line {line}" if line else None
        return InputError(self.path, f"{label}: {problem}" if label else problem, record)

    def mapping(self, value: Any, where: tuple, keys: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping (KEY: VALUE lines), not {_kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in keys:
                close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(keys)})"
                raise self.fail((*where, key), f"unknown key {str(key)!r}{hint}")
        for key in required:
            if value.get(key) is None:
                raise self.fail(where, f"missing key {key!r}")
        return value

    def text(self, value: Any, where: tuple) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float, datetime.date)):
            raise self.fail(where, f"must be text, not {_kind(value)}")
        text = str(value).strip()
        if not text:
            raise self.fail(where, "must not be empty")
        return text

    def integer(self, value: Any, where: tuple, minimum: int | None = 1) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be a whole number, not {_kind(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be at least {minimum}, not {value}")
        return value

    def number(self, value: Any, where: tuple) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise self.fail(where, f"must be a number >= 0, not {value!r}")
        return value

    def boolean(self, value: Any, where: tuple, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, not {value!r}")
        return value

    def name(self, value: Any, where: tuple) -> str:
        text = self.text(value, where)
        if not _NAME.match(text):
            raise self.fail(where, f"{text!r} is not a usable name (letters, digits, '.', '_', '-'; it names a "
                                   "folder and a leaderboard entry)")
        return text

    def task_list(self, value: Any, where: tuple) -> list[Any]:
        from dfabench.plugins import resolve_tasks

        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value:
            raise self.fail(where, "must be a list of task ids, e.g. [DF-D, DF-C]")
        tasks = []
        for i, item in enumerate(value):
            try:
                tasks += resolve_tasks([self.text(item, (*where, i))])
            except InputError:
                raise
            except DfabenchError as exc:
                raise self.fail((*where, i), str(exc)) from None
        unique: list[Any] = []
        for task in tasks:
            if all(task.id != t.id for t in unique):
                unique.append(task)
        return unique


def load_round(path: str | Path, *, resolve_bench: Callable[[str], Path] | None = None) -> Round:
    """Read and check a round file; :class:`InputError` (one line: the file, the line, the key, the problem) at
    the first thing that does not hold. Nothing is run; only a ``smoke`` benchmark is built if it is not yet."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such round file")
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InputError(path, "not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise InputError(path, f"not valid YAML ({getattr(exc, 'problem', None) or exc})", where) from None
    check = _Checker(path, node)
    duplicate = _duplicate_key(node)
    if duplicate is not None:
        where, line = duplicate
        raise InputError(path, f"{_dotted(where)}: given twice", f"line {line}")
    if data is None:
        raise InputError(path, f"empty round file (it needs {', '.join(REQUIRED_ROUND_KEYS)})")
    check.mapping(data, (), ROUND_KEYS, REQUIRED_ROUND_KEYS)
    base = path.parent

    def folder(key: str, default: str | None) -> Path | None:
        value = data.get(key, default)
        return None if value is None else Path(os.path.normpath(base / check.text(value, (key,))))

    name = check.text(data["round"], ("round",))
    out = folder("out", None)
    entries = folder("entries", "leaderboard/entries")
    leaderboard = folder("leaderboard", None)
    reported = folder("reported", None)
    split = check.text(data.get("split", "auto"), ("split",))
    seed = check.integer(data.get("seed", 0), ("seed",), minimum=None)
    limit = check.integer(data.get("limit"), ("limit",))
    n_boot = check.integer(data.get("n_boot", 1000), ("n_boot",))
    frames = check.integer(data.get("frames_per_video"), ("frames_per_video",))
    replicates = check.integer(data.get("replicates", 1000), ("replicates",))
    tasks = check.task_list(data["tasks"], ("tasks",))
    if data.get("prompt_variant") is not None:  # as `run --prompt-variant`: each variant is a task TASK@NAME
        from dfabench.tasks import expand_variants

        try:
            tasks = expand_variants(tasks, check.text(data["prompt_variant"], ("prompt_variant",)))
        except InputError:
            raise
        except DfabenchError as exc:
            raise check.fail(("prompt_variant",), str(exc)) from None

    if not isinstance(data["models"], list) or not data["models"]:
        raise check.fail(("models",), "must be a list of models (- model: NAME ...)")
    models = [_model(check, item, ("models", i), tasks) for i, item in enumerate(data["models"])]
    seen: dict[str, int] = {}
    for i, plan in enumerate(models):
        if plan.name in seen:
            raise check.fail(("models", i, "name"), f"the name {plan.name!r} is also models[{seen[plan.name]}]'s; "
                                                    "give one of them another name:")
        seen[plan.name] = i
    judge = _judge(check, data["judge"], ("judge",)) if data.get("judge") is not None else None

    benches = data["benchmarks"]
    if not isinstance(benches, dict):
        raise check.fail(("benchmarks",), f"must be a mapping NAME: FOLDER (or NAME: smoke), not {_kind(benches)}")
    if not benches:
        raise check.fail(("benchmarks",), "names no benchmark (NAME: FOLDER, or NAME: smoke)")
    pending = []
    for key, value in benches.items():
        bench_name = check.name(key, ("benchmarks", key))
        given = check.text(value, ("benchmarks", key))
        local = Path(os.path.normpath(base / given))
        if given == "smoke" and not (local / "manifest.jsonl").is_file():
            pending.append((bench_name, given, None))
            continue
        if not local.is_dir():
            raise check.fail(("benchmarks", key), f"benchmark folder {local} does not exist")
        if not (local / "manifest.jsonl").is_file():
            raise check.fail(("benchmarks", key), f"{local} is not a benchmark folder (it has no manifest.jsonl)")
        pending.append((bench_name, given, local))
    benchmarks = []
    for bench_name, given, local in pending:  # the smoke build, if any, only once everything else is checked
        if local is None:
            from dfabench.data import resolve_bench as default_resolve

            local = (resolve_bench or default_resolve)(given)
        bench = Bench(bench_name, given, Path(local))
        bench.benchmark()  # a malformed manifest: one line naming it, before any work
        benchmarks.append(bench)
    return Round(path=path, name=name, out=out, entries=entries, leaderboard=leaderboard, reported=reported,
                 benchmarks=benchmarks, tasks=tasks, models=models, judge=judge, split=split, seed=seed, limit=limit,
                 n_boot=n_boot, frames_per_video=frames, replicates=replicates)


def _model(check: _Checker, item: Any, where: tuple, round_tasks: list[Any]) -> ModelPlan:
    from dfabench.plugins import get_manager

    check.mapping(item, where, MODEL_KEYS, ("model",))
    try:
        entry = get_manager().models.get(check.text(item["model"], (*where, "model")))
    except InputError:
        raise
    except DfabenchError as exc:
        raise check.fail((*where, "model"), str(exc)) from None
    name = check.name(item.get("name", entry.name), (*where, "name"))
    args = item.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise check.fail((*where, "args"), f"must be a mapping of argument names to values, not {_kind(args)}")
    try:
        problem = entry.argument_problem(args)
    except DfabenchError as exc:
        problem = str(exc)
    if problem:
        raise check.fail((*where, "args"), problem)
    tasks = round_tasks
    if item.get("tasks") is not None:
        own = check.task_list(item["tasks"], (*where, "tasks"))
        ids = {t.id for t in round_tasks}
        ids |= {t.base_id for t in round_tasks}  # the round's variants only (prompt_variant: NAME): DF-D names them
        extra = [t.id for t in own if t.id not in ids]
        if extra:
            raise check.fail((*where, "tasks"), f"{', '.join(extra)} not in the round's tasks "
                                                f"({', '.join(t.id for t in round_tasks)}); a model's tasks restrict "
                                                "the round's")
        # a model's DF-D keeps the round's prompt variants of DF-D (DF-D@NAME); a model's DF-D@NAME only that one
        tasks = [t for t in round_tasks if t.id in {o.id for o in own} or t.base_id in {o.id for o in own}]
    kind, options = "local", {}
    if item.get("executor") is not None:
        spec = check.mapping(item["executor"], (*where, "executor"), EXECUTOR_KEYS)
        kind = check.text(spec.get("kind", "local"), (*where, "executor", "kind"))
        from dfabench.executors import EXECUTORS

        if kind not in EXECUTORS:
            raise check.fail((*where, "executor", "kind"), f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
        if spec.get("ray_address") is not None:
            options["ray_address"] = check.text(spec["ray_address"], (*where, "executor", "ray_address"))
        if spec.get("replicas") is not None:
            options["replicas"] = check.integer(spec["replicas"], (*where, "executor", "replicas"))
        for key in ("gpus_per_replica", "cpus_per_replica"):
            if spec.get(key) is not None:
                options[key] = check.number(spec[key], (*where, "executor", key))
        if options and kind != "ray":
            raise check.fail((*where, "executor"), f"{', '.join(options)} need kind: ray")
    return ModelPlan(name=name, model=entry.name, args=dict(args), tasks=tasks, executor=kind,
                     executor_options=options, batch_size=check.integer(item.get("batch_size"), (*where, "batch_size")),
                     max_new_tokens=check.integer(item.get("max_new_tokens"), (*where, "max_new_tokens")), entry=entry)


def _judge(check: _Checker, spec: Any, where: tuple):
    from dfabench.judge.rubric import load_rubric
    from dfabench.judge.settings import OUTPUT_MODES, JudgeSettings
    from dfabench.roles import check_role_entry

    check.mapping(spec, where, JUDGE_KEYS, ("model",))
    try:
        entry = check_role_entry("judge", check.text(spec["model"], (*where, "model")))
    except InputError:
        raise
    except DfabenchError as exc:
        raise check.fail((*where, "model"), str(exc)) from None
    args = spec.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) for k in args):
        raise check.fail((*where, "args"), f"must be a mapping of argument names to values, not {_kind(args)}")
    output = check.text(spec.get("output", "auto"), (*where, "output"))
    if output not in OUTPUT_MODES:
        raise check.fail((*where, "output"), f"must be one of {', '.join(OUTPUT_MODES)}, not {output!r}")
    rubric = check.text(spec["rubric"], (*where, "rubric")) if spec.get("rubric") is not None else None
    if rubric is not None:
        candidate = check.path.parent / rubric
        rubric = str(candidate) if candidate.is_file() else rubric
        try:
            load_rubric(rubric)
        except DfabenchError as exc:
            raise check.fail((*where, "rubric"), str(exc)) from None
    settings = JudgeSettings(judge=entry.name, judge_args=dict(args), output=output, rubric=rubric,
                             with_image=check.boolean(spec.get("with_image"), (*where, "with_image"), False),
                             max_tokens=check.integer(spec.get("max_tokens"), (*where, "max_tokens")),
                             calibrate=check.boolean(spec.get("calibrate"), (*where, "calibrate"), True),
                             sample=check.integer(spec.get("sample"), (*where, "sample")),
                             seed=check.integer(spec.get("seed", 0), (*where, "seed"), minimum=None))
    if entry.name == "openai" and not args.get("model"):
        raise check.fail((*where, "args"), "the openai judge needs model: ID (the model id the endpoint serves), "
                                           "e.g. args: {model: gpt-4o-2024-08-06}")
    try:
        settings.role()
    except DfabenchError as exc:
        raise check.fail(where, str(exc)) from None
    return settings


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r:.60}", bool: f"{value}"}.get(
        type(value), f"{type(value).__name__} {value!r:.60}")


def _dotted(where: tuple) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: Any, where: tuple) -> int | None:
    """The line of the key (or item) at ``where`` in the composed YAML ``node`` (its parent's when not there)."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in where:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if found is None:
                return line
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _duplicate_key(node: Any, where: tuple = ()) -> tuple[tuple, int] | None:
    """The path and line of the first mapping key given twice (YAML keeps the last silently)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            if key.value in seen:
                return (*where, key.value), key.start_mark.line + 1
            seen.add(key.value)
            found = _duplicate_key(value, (*where, key.value))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, (*where, i))
            if found:
                return found
    return None

# --------------------------------------------------------------------------- cells


@dataclass
class Cell:
    """One model on one benchmark: one run folder holding all the model's tasks of the round."""

    model: ModelPlan
    bench: Bench
    folder: Path

    @property
    def label(self) -> str:
        return f"{self.model.name} x {self.bench.name}"

    @property
    def entry_name(self) -> str:
        """The folder of the cell's leaderboard entry (entry.json names it by the model's name)."""
        return f"{self.model.name}-{self.bench.name}"


@dataclass
class Inspection:
    """What a cell needs: ``run`` (no run yet), ``resume`` (``tasks``, each for ``reasons``) or ``skip``."""

    action: str
    tasks: list[Any]
    reasons: list[str] = field(default_factory=list)


def inspect_cell(cell: Cell, round_: Round) -> Inspection:
    """Whether ``cell`` is complete: its run.json has every task of the cell done (or n/a) under the same task
    fingerprint, its logs and masks match their hashes, not every sample of a task failed, and it is a run of the
    same model (name, plugin version, answering arguments) on the same benchmark with the same settings.
    A cell holding another model's or benchmark's run is refused (:class:`DfabenchError`)."""
    from dfabench.runner import select_split
    from dfabench.store import CACHE_FILE, RunFolder

    folder = RunFolder(cell.folder)
    tasks = cell.model.tasks
    if not folder.path.exists():
        return Inspection("run", tasks)
    if not folder.path.is_dir():
        raise DfabenchError(f"{folder.path} is a file, not a run folder")
    if not folder.exists():
        cached = (folder.path / CACHE_FILE).exists()
        return Inspection("resume" if cached else "run", tasks, ["interrupted before its first commit"] if cached
                          else [])
    record = folder.read_record()
    old = record.get("model") or {}
    entry = cell.model.entry
    operational = set(old.get("operational_args") or ())

    def answering(args: Any) -> dict:
        return {k: v for k, v in (args or {}).items() if k not in operational}

    split = select_split(cell.bench.benchmark(), round_.split)[0]
    bench = record.get("benchmark") or {}
    different = []
    if old.get("name") != cell.model.model or answering(old.get("args")) != answering(scrub_value(cell.model.args)):
        different.append(f"model {old.get('name')} {json.dumps(scrub_value(old.get('args') or {}))[:200]}")
    if bench.get("fingerprint") != cell.bench.fingerprint():
        different.append("another benchmark (fingerprint differs)")
    if bench.get("split") != split:
        different.append(f"split {bench.get('split')}")
    for key, want in (("seed", round_.seed), ("limit", round_.limit), ("n_boot", round_.n_boot),
                      ("frames_per_video", round_.frames_per_video)):
        if record.get(key, 1000 if key == "n_boot" else None) != want:
            different.append(f"{key} {record.get(key)}")
    if record.get("shard"):
        different.append("a shard")
    if different:
        raise DfabenchError(f"{folder.path} holds another run ({'; '.join(different)}): delete that folder, or give "
                            f"the model another name: in {round_.path.name} (nothing was changed)")
    if (old.get("distribution"), old.get("version")) != (entry.distribution, entry.version):
        return Inspection("resume", tasks, [f"the model's plugin is now {entry.distribution} {entry.version} "
                                            f"(the run has {old.get('version')})"])
    stale, reasons = [], []
    for task in tasks:
        why = _task_problem(folder, record, task)
        if why:
            stale.append(task)
            reasons.append(f"{task.id}: {why}")
    return Inspection("resume", stale, reasons) if stale else Inspection("skip", [])


def _task_problem(folder, record: dict[str, Any], task) -> str | None:
    """Why ``task`` of a run record is not complete (None: it is)."""
    info = (record.get("tasks") or {}).get(task.id)
    if not info:
        return "not run yet"
    if info.get("fingerprint") != task.fingerprint:
        return "the task spec changed"
    status = str(info.get("status") or "")
    if status.startswith("n/a"):
        return None
    if status != "done":
        return f"status {status or 'unknown'}"
    log = (record.get("samples") or {}).get(task.id)
    if not log:
        return "no per-sample log in run.json"
    problems = folder.integrity_problems({"samples": {task.id: log}})
    if problems:
        return problems[0].removeprefix(f"{task.id}: ")
    counts = (record.get("counts") or {}).get(task.id) or {}
    if counts.get("n") and counts.get("n_failed") == counts["n"]:
        return f"every one of its {counts['n']} samples failed"
    return None


def _judge_needed(record: dict[str, Any], tasks: list[str], settings, judge) -> list[str]:
    """The text tasks that ``judge`` has not judged completely (every judgment asked got one) in ``record``."""
    from dfabench.judge.rubric import load_rubric

    rubric_sha = load_rubric(settings.rubric).sha256 if settings.rubric else None
    known = ((record.get("judge") or {}).get("tasks")) or {}
    out = []
    for task in tasks:
        info = known.get(task) or {}
        sample = info.get("sample") or {}
        same = (info.get("judge_fingerprint") == judge.identity.fingerprint
                and bool(info.get("with_image")) == bool(settings.with_image)
                and (rubric_sha is None or info.get("rubric_sha256") == rubric_sha)
                and (sample.get("n"), sample.get("seed") if sample else None) == (
                    settings.sample, settings.seed if settings.sample is not None else None))
        if not same or info.get("n_failed"):
            out.append(task)
    return out


# --------------------------------------------------------------------------- the sweep


@dataclass
class CellResult:
    cell: Cell
    status: str = ""  # done / skipped-complete / resumed / failed
    tasks: str = ""
    judge: str = ""
    submit: str = ""
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != FAILED and not self.notes


@dataclass
class SweepResult:
    cells: list[CellResult] = field(default_factory=list)
    built: list[Path] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    build_error: str | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> int:
        """0: every cell done, skipped or resumed, without problems, and the build clean; 1 otherwise."""
        return 0 if all(c.ok for c in self.cells) and not self.excluded and not self.build_error else 1


class _Stage(Exception):
    """A failure of one stage of one cell: ``stage``: what failed."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(stage)
        self.stage, self.error = stage, error


def sweep(round_: Round, *, only: list[str] | None = None, dry_run: bool = False, build: bool = True,
          progress: bool = True, out: TextIO | None = None, err: TextIO | None = None) -> SweepResult:
    """Run, judge and submit every cell of ``round_`` and build the leaderboard; a failing cell is recorded in its
    :class:`CellResult` and the others go on. ``dry_run``: print what would happen to each cell, do nothing."""
    out, err = out or sys.stdout, err or sys.stderr
    if only:
        names = [m.name for m in round_.models]
        for name in only:
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else f" (its models: {', '.join(names)})"
                raise DfabenchError(f"--only {name!r}: no such model in {round_.path}{hint}")
    cells = round_.cells(only)
    result = SweepResult(dry_run=dry_run)
    judge = _LazyJudge(round_.judge)
    out.write(f"round {_clean(round_.name)}: {len(cells)} cells ({len(round_.models) if not only else len(only)} "
              f"models x {len(round_.benchmarks)} benchmarks) into {_clean(round_.out)}"
              f"{' (dry run: nothing is done)' if dry_run else ''}\n")
    try:
        for i, cell in enumerate(cells, 1):
            outcome = CellResult(cell, tasks=",".join(t.id for t in cell.model.tasks))
            result.cells.append(outcome)
            out.write(f"[{i}/{len(cells)}] {_clean(cell.label)}: {_clean(cell.folder)}\n")
            try:
                _do_cell(cell, round_, outcome, judge, dry_run, progress, out, err)
            except _Stage as exc:
                outcome.status = FAILED
                outcome.reason = f"{exc.stage}: {_describe(exc.error)}"
                out.write(f"  failed: {_clean(outcome.reason)}\n")
        if not dry_run and build and round_.leaderboard is not None:
            _build(round_, result, out)
        elif dry_run and build and round_.leaderboard is not None:
            out.write(f"would build the leaderboard from {_clean(round_.entries)} into {_clean(round_.leaderboard)}\n")
    finally:
        judge.close()
    return result


class _LazyJudge:
    """The round's judge model, created once on first need and shared by every cell (closed at the end)."""

    def __init__(self, settings):
        self.settings, self.model, self.error = settings, None, None

    def get(self):
        if self.error is not None:
            raise self.error
        if self.model is None:
            from dfabench.roles import create_role_model

            try:
                self.model = create_role_model("judge", *self.settings.role())
            except Exception as exc:  # noqa: BLE001 - reported for every cell that needs it
                self.error = exc
                raise
        return self.model

    def close(self) -> None:
        if self.model is not None:
            self.model.close()


def _do_cell(cell: Cell, round_: Round, outcome: CellResult, judge: _LazyJudge, dry_run: bool, progress: bool,
             out: TextIO, err: TextIO) -> None:
    from dfabench.store import RunFolder

    try:
        inspection = inspect_cell(cell, round_)
    except Exception as exc:  # noqa: BLE001 - one cell's failure never stops the others
        raise _Stage("inspect", exc) from None
    if inspection.action == "skip":
        outcome.status = SKIPPED
        out.write("  complete: predict skipped\n")
    else:
        ids = ",".join(t.id for t in inspection.tasks)
        why = f"({'; '.join(inspection.reasons)})" if inspection.reasons else ""
        verb = "resume" if inspection.action == "resume" else "run"
        out.write(f"  {'would ' if dry_run else ''}{verb} {ids} {_clean(why)}".rstrip() + "\n")
        outcome.status = RESUMED if inspection.action == "resume" else DONE
        if dry_run:
            outcome.status = f"would {verb}"
            held = (round_.entries / cell.entry_name / "run.json").is_file()
            outcome.submit = f"would {'replace' if held else 'submit as'} {cell.entry_name}"
            outcome.judge = "would judge its text tasks" if round_.judge is not None and any(
                t.parser == "text" for t in cell.model.tasks) else ""
            return
        try:
            record = _predict(cell, round_, inspection.tasks, progress, err)
        except Exception as exc:  # noqa: BLE001
            raise _Stage("predict", exc) from None
        for line in _run_problems(record):
            outcome.notes.append(line)
            out.write(f"  problem: {_clean(line)}\n")
    try:
        folder = RunFolder(cell.folder)
        record = folder.read_record()
        bad = [f"{t.id}: {why}" for t in cell.model.tasks for why in [_task_problem(folder, record, t)] if why]
    except Exception as exc:  # noqa: BLE001
        raise _Stage("predict", exc) from None
    if bad:  # e.g. every sample of a task failed
        raise _Stage("predict", DfabenchError(f"{'; '.join(bad)} (not submitted; the next sweep asks again)"))
    _judge_cell(cell, round_, record, outcome, judge, dry_run, out, err)
    _submit(cell, round_, outcome, dry_run, out)


def _predict(cell: Cell, round_: Round, tasks: list[Any], progress: bool, err: TextIO) -> dict[str, Any]:
    from dfabench.runner import RunOptions
    from dfabench.runner import run as run_benchmark

    model = cell.model
    options = RunOptions(model=model.model, model_args=dict(model.args), tasks=list(tasks), bench=str(cell.bench.path),
                         out=cell.folder, split=round_.split, limit=round_.limit, seed=round_.seed,
                         batch_size=model.batch_size, n_boot=round_.n_boot, progress=progress,
                         max_new_tokens=model.max_new_tokens, command=_run_command(cell, round_, tasks),
                         executor=model.executor, executor_options=dict(model.executor_options),
                         frames_per_video=round_.frames_per_video)
    cell.folder.parent.mkdir(parents=True, exist_ok=True)
    return run_benchmark(options, stream=err)


def _run_command(cell: Cell, round_: Round, tasks: list[Any]) -> list[str]:
    """The ``dfabench run`` command line that makes the same run (recorded in run.json; scrubbed by the runner)."""
    model = cell.model
    command = ["dfabench", "run", "--model", model.model]
    for key, value in model.args.items():
        text = value if isinstance(value, str) and not _json_like(value) else json.dumps(value)
        command += ["--model-arg", f"{key}={text}"]
    command += ["--tasks", ",".join(t.id for t in tasks), "--bench", str(cell.bench.path), "--out", str(cell.folder),
                "--split", round_.split, "--seed", str(round_.seed), "--n-boot", str(round_.n_boot)]
    for flag, value in (("--limit", round_.limit), ("--frames-per-video", round_.frames_per_video),
                        ("--batch-size", model.batch_size), ("--max-new-tokens", model.max_new_tokens)):
        if value is not None:
            command += [flag, str(value)]
    if model.executor != "local":
        command += ["--executor", model.executor]
        for key, value in model.executor_options.items():
            command += [f"--{key.replace('_', '-')}", str(value)]
    return command + [f"# dfabench sweep {round_.path.name} (round {round_.name})"]


def _json_like(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _run_problems(record: dict[str, Any]) -> list[str]:
    from dfabench.scoring import metric_errors

    return metric_errors(record)


def _judge_cell(cell: Cell, round_: Round, record: dict[str, Any], outcome: CellResult, judge: _LazyJudge,
                dry_run: bool, out: TextIO, err: TextIO) -> None:
    from dfabench.judge.plan import judged_tasks
    from dfabench.store import RunFolder

    cell_tasks = {t.id for t in cell.model.tasks}
    text_tasks = [t for t in judged_tasks(record, RunFolder(cell.folder), None) if t in cell_tasks
                  and str(record["tasks"][t].get("status")) == "done"]
    if not text_tasks:
        return
    if round_.judge is None:
        outcome.judge = "no judge"
        out.write(f"  {','.join(text_tasks)}: not judged (the round names no judge)\n")
        return
    try:
        model = judge.get()
        needed = _judge_needed(record, text_tasks, round_.judge, model)
        if not needed:
            outcome.judge = "judged"
            out.write(f"  {','.join(text_tasks)}: judged by this judge already\n")
            return
        if dry_run:
            outcome.judge = f"would judge {','.join(needed)}"
            out.write(f"  would judge {','.join(needed)}\n")
            return
        from dfabench.judge.stage import judge_run

        out.write(f"  judging {','.join(needed)} with {_clean(model.label)}\n")
        summary = judge_run(cell.folder, round_.judge, needed, judge=model, stream=err)
    except Exception as exc:  # noqa: BLE001
        raise _Stage("judge", exc) from None
    outcome.judge = f"judged {','.join(needed)}"
    if summary.n_failed:
        line = f"judge: {summary.n_failed} judgments failed (recorded; the next sweep asks again)"
        outcome.notes.append(line)
        out.write(f"  problem: {line}\n")


def _submit(cell: Cell, round_: Round, outcome: CellResult, dry_run: bool, out: TextIO) -> None:
    from dfabench.leaderboard import submit_run
    from dfabench.store import RUN_RECORD, RunFolder

    target = round_.entries / cell.entry_name
    try:
        record = RunFolder(cell.folder).read_record()
        replace = False
        if (target / RUN_RECORD).is_file():
            held = json.loads((target / RUN_RECORD).read_text(encoding="utf-8"))
            if _without_command(held) == _without_command(record) and _entry_meta(target) == _meta(cell, round_):
                outcome.submit = "up to date"
                out.write(f"  entry {_clean(target)} is up to date\n")
                return
            if not _same_cell(held, record):
                raise DfabenchError(f"entry {target} exists and holds another run "
                                    f"({(held.get('model') or {}).get('name')} on "
                                    f"{(held.get('benchmark') or {}).get('name')}); give the model another name: "
                                    f"in {round_.path.name}, or move that entry")
            replace = True
        elif target.exists():
            raise DfabenchError(f"{target} exists and is not a leaderboard entry")
        if dry_run:
            outcome.submit = f"would {'replace' if replace else 'submit as'} {cell.entry_name}"
            return
        # the entry is shown by the model's name in the round: entry.json written in submit's one commit
        submit_run(cell.folder, round_.entries, name=cell.entry_name, force=replace, meta=_meta(cell, round_))
    except Exception as exc:  # noqa: BLE001
        raise _Stage("submit", exc) from None
    outcome.submit = f"{'replaced' if replace else 'submitted'} {cell.entry_name}"
    out.write(f"  {outcome.submit} ({_clean(target)})\n")


def _meta(cell: Cell, round_: Round) -> dict[str, Any]:
    return {"name": cell.model.name, "notes": f"round {round_.name} (dfabench sweep), benchmark {cell.bench.name}"}


def _entry_meta(target: Path) -> dict[str, Any] | None:
    try:
        return json.loads((target / "entry.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _without_command(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "command"}


def _same_cell(held: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether an entry holds (an earlier state of) the same cell: model name and arguments, benchmark, split."""
    def key(r: dict[str, Any]) -> tuple:
        model, bench = r.get("model") or {}, r.get("benchmark") or {}
        return (model.get("name"), json.dumps(scrub_value(model.get("args") or {}), sort_keys=True),
                bench.get("fingerprint"), bench.get("split"))

    return key(held) == key(record)


def _build(round_: Round, result: SweepResult, out: TextIO) -> None:
    from dfabench.leaderboard import TieSettings, build_leaderboard

    try:
        built = build_leaderboard(round_.entries, round_.leaderboard, [b.path for b in round_.benchmarks],
                                  reported=round_.reported, ties=TieSettings(replicates=round_.replicates))
    except Exception as exc:  # noqa: BLE001 - the cells are done; the build failing is reported
        result.build_error = _describe(exc)
        out.write(f"leaderboard build failed: {_clean(result.build_error)}\n")
        return
    result.built, result.excluded = built.written, built.excluded
    out.write(f"built the leaderboard into {_clean(round_.leaderboard)} ({len(built.written)} outputs)\n")
    for problem in built.excluded:
        out.write(f"  excluded: {_clean(problem)}\n")


def _describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, DfabenchError) else f"{type(exc).__name__}: {exc}"
    return redact_clip(text, 400, one_line=True)


def _clean(value: Any) -> str:
    from dfabench.escape import terminal_text

    return terminal_text(redact_clip(str(value), 2000))


def summary_table(result: SweepResult) -> str:
    """The cells and what happened to each (the last thing a sweep prints)."""
    from tabulate import tabulate

    from dfabench.escape import terminal_text

    rows = [[c.cell.model.name, c.cell.bench.name, c.tasks, c.status, c.judge, c.submit,
             c.reason or "; ".join(c.notes)] for c in result.cells]
    return tabulate([[terminal_text(str(cell)) for cell in row] for row in rows],
                    headers=["model", "benchmark", "tasks", "cell", "judge", "submit", "reason / problems"],
                    tablefmt="simple", disable_numparse=True)
