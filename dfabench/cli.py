"""The ``dfabench`` command.

Exit codes: 0 success; 1 the work ran but something does not hold (e.g. a verify failure);
2 bad usage or bad input (one clear line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dfabench import __version__
from dfabench.data import resolve_bench
from dfabench.errors import DfabenchError

# ----------------------------------------------------------------------------- helpers


def parse_model_args(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; a value that parses as JSON (numbers, true/false, null, lists)
    becomes that value, anything else stays a string."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DfabenchError(f"bad --model-arg {pair!r}: expected KEY=VALUE")
        if key in out:
            raise DfabenchError(f"--model-arg {key!r} given twice")
        try:
            parsed = json.loads(value)
            out[key] = parsed if isinstance(parsed, (int, float, bool, list, dict)) or parsed is None else value
        except ValueError:
            out[key] = value
    return out


def _table(rows: list[list[Any]], headers: list[str]) -> str:
    """A terminal table; every cell passes :func:`dfabench.escape.terminal_text` (no escape sequence, control
    character or line break from a record or a plugin reaches the terminal)."""
    from tabulate import tabulate

    from dfabench.escape import terminal_text

    return tabulate([[cell if cell is None or isinstance(cell, (int, float)) else terminal_text(cell) for cell in row]
                     for row in rows],
                    headers=[terminal_text(h) for h in headers], tablefmt="simple", disable_numparse=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def results_table(record: dict[str, Any]) -> str:
    """The results table printed at the end of ``run`` and ``score``."""
    rows = []
    for task_id, info in record.get("tasks", {}).items():
        status = info.get("status", "")
        if status.startswith("n/a"):
            rows.append([task_id, "(all)", "n/a", "", "", status[5:]])
            continue
        counts = record.get("counts", {}).get(task_id, {})
        for name, metric in record.get("metrics", {}).get(task_id, {}).items():
            value = metric.get("value")
            ci = ""
            if metric.get("ci_low") is not None and metric.get("ci_high") is not None:
                ci = f"[{metric['ci_low']:.4f}, {metric['ci_high']:.4f}]"
            note = metric.get("reason", "") if value is None else ""
            rows.append([task_id, name, _fmt(value) if value is not None else "undefined", ci, metric.get("n", ""),
                         note])
        rows.append([task_id, "(counts)", "", "", counts.get("n", ""),
                     f"{counts.get('n_failed', 0)} failed, {counts.get('n_unparsed', 0)} unparsed"])
    return _table(rows, ["task", "metric", "value", "95% CI", "n", "note"])


def _print_results(record: dict[str, Any], out_dir: Path | None = None) -> None:
    from dfabench.escape import terminal_text as clean
    from dfabench.redact import scrub_value

    model = record.get("model", {})
    bench = record.get("benchmark", {})
    print(f"model {clean(model.get('name'))} {clean(json.dumps(scrub_value(model.get('args', {}))))} on "
          f"{clean(bench.get('name'))} (split {clean(bench.get('split'))}, fingerprint "
          f"{clean(str(bench.get('fingerprint'))[:12])})")
    print(results_table(record))
    if record.get("judge"):
        judge = record["judge"]
        print(f"judge: {clean(judge.get('model'))} rubric {clean(judge.get('rubric'))} "
              f"v{clean(judge.get('rubric_version'))}{' with image' if judge.get('with_image') else ''}")
    if out_dir is not None:
        print(f"run folder: {clean(out_dir)}")


# ----------------------------------------------------------------------------- commands


def cmd_plugins(args: argparse.Namespace) -> int:
    from dfabench.plugins import get_manager

    manager = get_manager()
    rows = []
    for info in manager.plugins:
        hooks = ", ".join(h.replace("dfabench_register_", "") for h in info.hooks)
        status = " | ".join((["BROKEN: " + info.error] if info.error else [])
                            + ["CLASH: " + line for line in info.clashes]) or "ok"
        rows.append([info.name, info.distribution or "", info.version or "", hooks, status])
    if args.json:
        print(json.dumps([vars(p) for p in manager.plugins], indent=2))
    else:
        print(_table(rows, ["plugin", "distribution", "version", "hooks", "status"]))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from dfabench.plugins import get_manager

    registry = get_manager().models
    entries = [registry.entries[name] for name in registry]
    if args.json:
        print(json.dumps([{"name": e.name, "aliases": list(e.aliases), "capabilities": list(e.capabilities),
                           "plugin": e.plugin, "distribution": e.distribution, "version": e.version,
                           "description": e.description} for e in entries]
                         + [{"name": name, "clash": providers} for name, providers in registry.clashes().items()],
                         indent=2))
        return 0
    rows = [[e.name, ", ".join(e.capabilities), f"{e.distribution or e.plugin} {e.version or ''}".strip(),
             e.description] for e in entries]
    rows += [[name, "", "CLASH: " + "; ".join(providers), "refused: registered by more than one plugin"]
             for name, providers in registry.clashes().items()]
    print(_table(rows, ["model", "capabilities", "plugin", "description"]))
    _warn_broken()
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from dfabench.plugins import get_manager

    registry = get_manager().tasks
    order = ["DF-D", "DF-C", "AD", "FC", "FL"]
    tasks = sorted((registry.entries[name] for name in registry),
                   key=lambda t: (order.index(t.id) if t.id in order else len(order), t.id))
    if args.json:
        print(json.dumps([{**t.to_dict(), "fingerprint": t.fingerprint} for t in tasks], indent=2))
        return 0
    rows = [[t.id, t.name, t.version, "/".join(t.requires), t.samples, ", ".join(t.metrics), t.fingerprint[:12]]
            for t in tasks]
    print(_table(rows, ["task", "name", "version", "needs", "samples", "metrics", "fingerprint"]))
    return 0


def cmd_importers(args: argparse.Namespace) -> int:
    from dfabench.plugins import get_manager

    registry = get_manager().importers
    print(_table([[registry.entries[n].name, registry.entries[n].plugin, registry.entries[n].description]
                  for n in registry], ["format", "plugin", "description"]))
    return 0


def _warn_broken() -> None:
    from dfabench.plugins import get_manager

    for info in get_manager().broken():
        print(f"warning: plugin {info.name} ({info.distribution or info.module}) is broken: {info.error}",
              file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    from dfabench.data.manifest import load_benchmark
    from dfabench.data.smoke import build_smoke

    out = Path(args.out)
    build_smoke(out, seed=args.seed, size=args.size)
    benchmark = load_benchmark(out)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(benchmark.splits().items()))
    print(f"smoke benchmark: {len(benchmark.samples)} samples ({splits}) in {out}")
    print(f"fingerprint {benchmark.fingerprint()}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from dfabench.plugins import get_manager

    entry = get_manager().importers.get(args.format)
    importer = entry.load()
    options: dict[str, Any] = {"strict": args.strict}
    if args.root:
        options["root"] = Path(args.root)
    if args.replace_prefix:
        old, sep, new = args.replace_prefix.partition("=")
        if not sep:
            raise DfabenchError(f"bad --replace-prefix {args.replace_prefix!r}: expected OLD=NEW")
        options["replace_prefix"] = (old, new)
    if args.copy:
        options["copy"] = args.copy
    if args.split:
        options["split"] = args.split
    if args.compression:
        options["compression"] = args.compression
    try:
        report = importer(Path(args.src), Path(args.out), **options)
    except TypeError as exc:
        raise DfabenchError(f"importer {entry.name!r} does not take these options: {exc}") from None
    print(f"imported {report.n_imported} samples into {report.out}")
    for warning in getattr(report, "warnings", [])[:20]:
        text = ": ".join(map(str, warning)) if isinstance(warning, (tuple, list)) else str(warning)
        print(f"warning: {text}", file=sys.stderr)
    if report.skipped:
        print(f"skipped {len(report.skipped)} records:", file=sys.stderr)
        for record, reason in report.skipped[:20]:
            print(f"  {record}: {reason}", file=sys.stderr)
        if len(report.skipped) > 20:
            print(f"  ... and {len(report.skipped) - 20} more (see {report.out}/import-report.json)", file=sys.stderr)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from dfabench.runner import RunOptions, run
    from dfabench.tasks import resolve_tasks

    for name, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--n-boot", args.n_boot),
                        ("--max-new-tokens", args.max_new_tokens)):
        if value is not None and value < 1:
            raise DfabenchError(f"{name} must be at least 1, not {value}")
    tasks = resolve_tasks(args.tasks)
    options = RunOptions(
        model=args.model, model_args=parse_model_args(args.model_arg), tasks=tasks,
        bench=str(resolve_bench(args.bench)), out=Path(args.out), split=args.split, limit=args.limit, seed=args.seed,
        batch_size=args.batch_size, cache=Path(args.cache) if args.cache else None, n_boot=args.n_boot,
        progress=not args.no_progress, max_new_tokens=args.max_new_tokens, command=["dfabench", *sys.argv[1:]],
    )
    record = run(options)
    _print_results(record, options.out)
    return _report_metric_errors(record)


def cmd_score(args: argparse.Namespace) -> int:
    from dfabench.scoring import rescore_run
    from dfabench.tasks import normalise_task_id

    tasks = [normalise_task_id(t) for t in args.tasks.split(",")] if args.tasks else None
    record = rescore_run(Path(args.run_dir), tasks, bench_root=str(resolve_bench(args.bench)) if args.bench else None)
    _print_results(record, Path(args.run_dir))
    return _report_metric_errors(record)


def _report_metric_errors(record: dict[str, Any]) -> int:
    """Exit code 1 (and the reasons) when a metric could not be computed or every sample of a task
    failed: the numbers of such a task say nothing about the model."""
    from dfabench.scoring import metric_errors

    errors = metric_errors(record)
    for task_id, counts in record.get("counts", {}).items():
        if counts.get("n") and counts.get("n_failed") == counts["n"]:
            errors.append(f"{task_id}: every one of the {counts['n']} samples failed "
                          f"(see the error field of samples-{task_id}.jsonl)")
    for line in errors:
        print(f"dfabench: {line}", file=sys.stderr)
    return 1 if errors else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from dfabench.leaderboard import build_leaderboard, submit_run

    if args.leaderboard_command == "submit":
        path = submit_run(Path(args.run_dir), Path(args.entries), name=args.name, force=args.force)
        print(f"submitted {args.run_dir} as {path}")
        return 0
    result = build_leaderboard(Path(args.entries), Path(args.out), [resolve_bench(b) for b in args.bench or []])
    for path in result.written:
        print(f"wrote {path}")
    from dfabench.escape import terminal_text

    for problem in result.excluded:
        print(f"excluded: {terminal_text(problem)}", file=sys.stderr)
    if result.excluded:
        print(f"dfabench: {len(result.excluded)} entries excluded (listed above and in the outputs)", file=sys.stderr)
        return 1
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from dfabench.verify import verify

    report = verify(Path(args.target), bench=resolve_bench(args.bench) if args.bench else None, claims=args.claim or [],
                    tolerance=args.tolerance)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dfabench",
        description="Benchmark harness for interactive deepfake analysis (DFA-Bench: DF-D, DF-C, AD, FC; MMTT: FL).",
        epilog="Exit codes: 0 success, 1 a check did not hold, 2 bad usage or bad input.",
    )
    parser.add_argument("--version", action="version", version=f"dfabench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="installed plugins, versions, hooks, load errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)
    p = sub.add_parser("models", help="registered models and their capabilities")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("tasks", help="registered tasks, versions and fingerprints")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks)
    p = sub.add_parser("importers", help="registered dataset importers")
    p.set_defaults(func=cmd_importers)

    p = sub.add_parser("bench", help="build a built-in benchmark")
    p.add_argument("name", choices=["smoke"], help="the benchmark to build")
    p.add_argument("--out", required=True, help="folder to write it to")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", choices=["default", "small", "tiny"], default="default",
                   help="default: 654 samples; small: 182; tiny: 50 (for tests)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("import", help="turn a public dataset layout into a benchmark")
    p.add_argument("format", help="importer name (see `dfabench importers`)")
    p.add_argument("src", help="the dataset's index / annotation file")
    p.add_argument("--out", required=True, help="benchmark folder to write")
    p.add_argument("--root", help="folder the image paths are relative to (default: the index file's folder)")
    p.add_argument("--replace-prefix", metavar="OLD=NEW", help="rewrite absolute paths starting with OLD")
    p.add_argument("--copy", choices=["link", "copy"], help="hard-link (default, falls back to copy) or copy images")
    p.add_argument("--strict", action="store_true", help="fail on the first record that cannot be imported")
    p.add_argument("--split", help="split to give every record (dfa-instruct, mmtt)")
    p.add_argument("--compression", help="df40: the compression level to take (e.g. c23) when the index has several")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("run", help="predict and score: run a model on tasks of a benchmark")
    p.add_argument("--model", required=True, help="model name (see `dfabench models`)")
    p.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    p.add_argument("--tasks", required=True, help="comma-separated task ids, e.g. DF-D,DF-C")
    p.add_argument("--bench", required=True, help="benchmark folder, or 'smoke' for the built-in smoke benchmark")
    p.add_argument("--out", required=True, help="run folder (an interrupted run resumes from it)")
    p.add_argument("--split", default="auto", help="split to evaluate: a split name or 'all' "
                                                   "(default: 'test' if the benchmark has one, else all)")
    p.add_argument("--limit", type=int, help="at most N samples per task")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap (default 0)")
    p.add_argument("--batch-size", type=int, help="samples per model call (default: the model's)")
    p.add_argument("--max-new-tokens", type=int, help="override the tasks' max_new_tokens")
    p.add_argument("--cache", help="response cache file (default: RUN_DIR/cache.sqlite)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the CIs (default 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("score", help="re-score a run from its per-sample logs (no model calls)")
    p.add_argument("run_dir")
    p.add_argument("--tasks", help="only these tasks")
    p.add_argument("--bench", metavar="DIR|smoke", help="benchmark folder (for masks) if it moved since the run")
    p.set_defaults(func=cmd_score)

    _optional_command(sub, "judge", "dfabench.judge", "add_judge_arguments", "judge_command",
                      "LLM-judge the text tasks of a run (cached)")

    p = sub.add_parser("leaderboard", help="build the leaderboard from submitted runs")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    q = lsub.add_parser("build", help="regenerate leaderboard files from the entries")
    q.add_argument("--entries", default="leaderboard/entries")
    q.add_argument("--out", default="leaderboard")
    q.add_argument("--bench", action="append", metavar="DIR|smoke",
                   help="benchmark folder ('smoke': the built-in one): entries of it are checked against it (their "
                        "sample ids, labels; FL masks); repeatable")
    q.set_defaults(func=cmd_leaderboard)
    q = lsub.add_parser("submit", help="copy a run folder (record + per-sample logs) into the entries")
    q.add_argument("run_dir")
    q.add_argument("--name", help="entry name (default: model name and a short hash)")
    q.add_argument("--entries", default="leaderboard/entries")
    q.add_argument("--force", action="store_true", help="replace an entry of the same name")
    q.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("verify", help="reviewer check of a run folder or leaderboard entry")
    p.add_argument("target", help="run folder or leaderboard entry")
    p.add_argument("--bench", metavar="DIR|smoke",
                   help="benchmark folder: also check its fingerprint, the logged labels and references, "
                        "and that each log holds exactly the samples the task takes from the split")
    p.add_argument("--claim", action="append", metavar="TASK.METRIC=VALUE",
                   help="a claimed number to check (repeatable), e.g. DF-D.auc=0.91")
    p.add_argument("--tolerance", type=float, default=0.005, help="allowed |claim - value| (default 0.005)")
    p.set_defaults(func=cmd_verify)

    _optional_command(sub, "chat", "dfabench.chat", "add_chat_arguments", "chat_command",
                      "interactive multi-turn analysis of one image")
    _optional_command(sub, "export", "dfabench.export", "add_export_arguments", "export_command",
                      "export benchmark tasks for another harness (lmms-eval)")
    _optional_command(sub, "resources", "dfabench.metrics.resources", "add_resources_arguments",
                      "resources_command", "install offline resources (WordNet for METEOR)")
    return parser


def _optional_command(sub, name: str, module: str, add: str, handler: str, help_text: str) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
        add_arguments, command = getattr(mod, add), getattr(mod, handler)
    except (ImportError, AttributeError):
        return
    p = sub.add_parser(name, help=help_text)
    add_arguments(p)
    p.set_defaults(func=command)


class _RedactingStream:
    """A text stream that redacts what is written to it (argparse's usage errors quote arguments)."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        from dfabench.redact import redact

        return self._stream.write(redact(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _error(text: Any) -> None:
    """Print one error line on stderr, scrubbed of secrets and credentials (dfabench.redact)."""
    from dfabench.redact import redact

    print(f"dfabench: error: {redact(text)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    import contextlib

    parser = build_parser()
    with contextlib.redirect_stderr(_RedactingStream(sys.stderr)):
        args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DfabenchError as exc:
        _error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dfabench: interrupted (what was answered is in the response cache; run the same command to resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a read-only folder, a file where a folder should be, a full disk, ...
        where = f"{exc.filename}: " if exc.filename else ""
        _error(f"{where}{exc.strerror or exc}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
