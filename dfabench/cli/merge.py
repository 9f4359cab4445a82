"""``dfabench merge RUN_DIR... --out RUN_DIR``: the shards of a run (``run --shard K/N``) as one run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfabench.cli._common import print_results, report_metric_errors
from dfabench.data import resolve_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="RUN_DIR", help="the N shard folders of one run")
    parser.add_argument("--out", required=True, help="the merged run folder (new or empty)")
    parser.add_argument("--bench", metavar="DIR|smoke", help="the benchmark, if it moved since the shards ran")


def run(args: argparse.Namespace) -> int:
    from dfabench.executors.merge import merge_runs

    record = merge_runs([Path(p) for p in args.shards], Path(args.out),
                        bench=str(resolve_bench(args.bench)) if args.bench else None,
                        command=["dfabench", *sys.argv[1:]])
    print_results(record, Path(args.out))
    return report_metric_errors(record)
