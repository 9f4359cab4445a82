"""``dfabench sweep ROUND.yaml``: a whole leaderboard round (see :mod:`dfabench.sweep`)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("round_file", metavar="ROUND.yaml",
                        help="the round: models x tasks x benchmarks, judge, where cells, entries and the leaderboard "
                             "go (examples in rounds/)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print each cell and what would happen to it (run, resume, skip; judge; submit); no work")
    parser.add_argument("--only", metavar="MODEL[,MODEL]",
                        help="only these models' cells (their names in the round file)")
    parser.add_argument("--no-build", action="store_true", help="do not build the leaderboard at the end")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.sweep import load_round, summary_table, sweep

    round_ = load_round(args.round_file)  # the whole file is checked before any work (exit 2, one line)
    only = [name.strip() for name in args.only.split(",") if name.strip()] if args.only else None
    try:
        result = sweep(round_, only=only, dry_run=args.dry_run, build=not args.no_build,
                       progress=not args.no_progress)
    except KeyboardInterrupt:
        print("dfabench: sweep interrupted: the cells committed so far are kept; run the same command to resume",
              file=sys.stderr)
        raise
    print()
    print(summary_table(result))
    if args.dry_run:
        return result.exit_code  # 1 when a cell is already refused (e.g. its folder holds another run)
    failed = [c for c in result.cells if not c.ok]
    if failed or result.excluded or result.build_error:
        parts = [f"{len(failed)} of {len(result.cells)} cells failed or have problems"] if failed else []
        if result.excluded:
            parts.append(f"{len(result.excluded)} entries excluded from the leaderboard")
        if result.build_error:
            parts.append("the leaderboard build failed")
        print(f"dfabench: sweep: {'; '.join(parts)} (see above)", file=sys.stderr)
    return result.exit_code
