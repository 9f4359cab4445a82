"""``dfabench export lmms-eval --bench DIR --out TASKS_DIR``: benchmark tasks for another harness."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dfabench.data import resolve_bench
from dfabench.export import EXPORT_FILE, export_lmms_eval


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """``dfabench export lmms-eval --bench DIR --out TASKS_DIR [--tasks ...] [--split ...]``."""
    parser.add_argument("format", choices=["lmms-eval"], help="the harness to export for")
    parser.add_argument("--bench", required=True, help="benchmark folder, or 'smoke' for the built-in smoke benchmark")
    parser.add_argument("--out", required=True, help="folder for the task files (give it to --include_path)")
    parser.add_argument("--tasks", default=None,
                        help="comma-separated task ids (default: every exportable task: DF-D,DF-C,AD with the core)")
    parser.add_argument("--split", default=None,
                        help="split to export: a split name or 'all' (default: 'test' if the benchmark has one)")


def export_command(args: argparse.Namespace) -> int:
    """``dfabench export``: writes the files and prints how to run them; returns the exit code."""
    bench = resolve_bench(args.bench)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    written = export_lmms_eval(Path(bench), Path(args.out), tasks, args.split)
    manifest = json.loads((Path(args.out) / EXPORT_FILE).read_text(encoding="utf-8"))
    names = ",".join(t["lmms_task"] for t in manifest["tasks"].values())
    for task, info in manifest["tasks"].items():
        print(f"{task}: {info['n']} samples -> {info['lmms_task']} ({', '.join(info['metrics'])})")
    print(f"wrote {len(written)} files to {args.out}")
    print(f"run: python -m lmms_eval --model MODEL --model_args ... --tasks {names} "
          f"--include_path {Path(args.out).resolve()}")
    return 0


add_arguments = add_export_arguments
run = export_command
