"""``dfabench leaderboard build|submit``: the leaderboard from submitted runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfabench.data import resolve_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    q = actions.add_parser("build", help="regenerate leaderboard files from the entries")
    q.add_argument("--entries", default="leaderboard/entries")
    q.add_argument("--out", default="leaderboard")
    q.add_argument("--bench", action="append", metavar="DIR|smoke",
                   help="benchmark folder ('smoke': the built-in one): entries of it are checked against it (their "
                        "sample ids, labels; FL masks); repeatable")
    q = actions.add_parser("submit", help="copy a run folder (record + per-sample logs) into the entries")
    q.add_argument("run_dir")
    q.add_argument("--name", help="entry name (default: model name and a short hash)")
    q.add_argument("--entries", default="leaderboard/entries")
    q.add_argument("--force", action="store_true", help="replace an entry of the same name")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.escape import terminal_text
    from dfabench.leaderboard import build_leaderboard, submit_run

    if args.leaderboard_command == "submit":
        path = submit_run(Path(args.run_dir), Path(args.entries), name=args.name, force=args.force)
        print(f"submitted {args.run_dir} as {path}")
        return 0
    result = build_leaderboard(Path(args.entries), Path(args.out), [resolve_bench(b) for b in args.bench or []])
    for path in result.written:
        print(f"wrote {path}")
    for problem in result.excluded:
        print(f"excluded: {terminal_text(problem)}", file=sys.stderr)
    if result.excluded:
        print(f"dfabench: {len(result.excluded)} entries excluded (listed above and in the outputs)", file=sys.stderr)
        return 1
    return 0
