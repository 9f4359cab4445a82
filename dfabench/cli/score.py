"""``dfabench score RUN_DIR``: re-score a run from its per-sample logs (no model calls)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfabench.cli._common import print_results, report_metric_errors
from dfabench.data import resolve_bench
from dfabench.plugins import normalise_task_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir")
    parser.add_argument("--tasks", help="only these tasks")
    parser.add_argument("--bench", metavar="DIR|smoke", help="benchmark folder (for masks) if it moved since the run")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.scoring import rescore_run

    tasks = [normalise_task_id(t) for t in args.tasks.split(",")] if args.tasks else None
    record = rescore_run(Path(args.run_dir), tasks, bench_root=str(resolve_bench(args.bench)) if args.bench else None)
    print_results(record, Path(args.run_dir))
    return report_metric_errors(record)
