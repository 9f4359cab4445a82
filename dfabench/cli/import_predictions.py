"""``dfabench import-predictions FORMAT SRC --bench BENCH --out RUN_DIR``: released predictions -> a run folder."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dfabench.predictions import FORMATS

    parser.add_argument("format", choices=FORMATS, help="the prediction files' layout")
    parser.add_argument("src", help="the prediction file (JSON lines, or a JSON list)")
    parser.add_argument("--bench", required=True, help="the benchmark folder the predictions answer")
    parser.add_argument("--out", required=True, help="run folder to write")
    parser.add_argument("--model-name", help="the model that made the predictions (default: the file's name)")
    parser.add_argument("--masks", help="the folder of the predicted masks (mmtt default: SRC's folder/masks; "
                                        "jsonl: mask paths are relative to it, else to SRC's folder)")
    parser.add_argument("--tasks", help="comma-separated tasks (default: those the predictions name; mmtt: FL)")
    parser.add_argument("--split", default="auto", help="benchmark split (default: test if there is one, else all)")
    parser.add_argument("--strict", action="store_true",
                        help="fail on any unknown or duplicate id, missing prediction or missing/unreadable mask")


def run(args: argparse.Namespace) -> int:
    from dfabench.predictions import REPORT_FILE, import_predictions

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    record, report = import_predictions(args.format, args.src, args.bench, args.out, model_name=args.model_name,
                                        masks=args.masks, tasks=tasks, strict=args.strict, split=args.split,
                                        command=sys.argv)
    print(f"imported {report['n_predictions']} predictions of {record['model']['name']} into {args.out} "
          f"(tasks {', '.join(report['tasks'])}; identity sha256 {report['sha256'][:16]}...)")
    for task, metrics in record.get("metrics", {}).items():
        shown = ", ".join(f"{name} {m['value']:.4f}" for name, m in metrics.items()
                          if isinstance(m.get("value"), (int, float)))
        print(f"  {task}: {shown}")
    if report["problems"]:
        counts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in report["counts"].items())
        print(f"{len(report['problems'])} problems ({counts}); see {args.out}/{REPORT_FILE}", file=sys.stderr)
        for problem in report["problems"][:10]:
            where = f"{problem['where']}" + (f" (id {problem['id']!r})" if problem["id"] else "")
            print(f"  {where}: {problem['problem']}", file=sys.stderr)
    return 0
