"""``dfabench verify TARGET``: reviewer check of a run folder or leaderboard entry."""

from __future__ import annotations

import argparse
from pathlib import Path

from dfabench.data import resolve_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="run folder or leaderboard entry")
    parser.add_argument("--bench", metavar="DIR|smoke",
                        help="benchmark folder: also check its fingerprint, the logged labels and references, "
                             "and that each log holds exactly the samples the task takes from the split")
    parser.add_argument("--claim", action="append", metavar="TASK.METRIC=VALUE",
                        help="a claimed number to check (repeatable), e.g. DF-D.auc=0.91")
    parser.add_argument("--tolerance", type=float, default=0.005, help="allowed |claim - value| (default 0.005)")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.verify import verify

    report = verify(Path(args.target), bench=resolve_bench(args.bench) if args.bench else None, claims=args.claim or [],
                    tolerance=args.tolerance)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
