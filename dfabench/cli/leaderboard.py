"""``dfabench leaderboard build|submit|check``: the leaderboard from submitted runs, and the submission checker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfabench.data import resolve_bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    q = actions.add_parser("build", help="regenerate the leaderboard files (README.md, JSON, CSV, index.html, "
                                         "reports/) from the entries and the reported numbers")
    q.add_argument("--entries", default="leaderboard/entries",
                   help="folder of submitted entries (default: leaderboard/entries, from the current folder)")
    q.add_argument("--reported", help="folder of reported entries (default: reported/ beside --entries)")
    q.add_argument("--out", default="leaderboard", help="folder for the outputs (default: leaderboard)")
    q.add_argument("--bench", action="append", metavar="DIR|smoke",
                   help="benchmark folder ('smoke': the built-in one): entries of it are checked against it (their "
                        "sample ids, labels; FL masks); repeatable")
    q.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates of the tie test (default 1000)")
    q.add_argument("--jobs", type=int, metavar="N", help="processes verifying the entries (default: one per CPU "
                                                         "when the logs exceed 64 MiB, else 1; the files are the same)")
    q.add_argument("--no-cache", action="store_true",
                   help="verify every entry again, ignoring the verification cache ($DFABENCH_CACHE_DIR/verified or "
                        "~/.cache/dfabench/verified: what verifying the same entry bytes with the same code gave; "
                        "the files are the same either way)")
    q = actions.add_parser("submit", help="copy a run folder (record + per-sample logs) into the entries")
    q.add_argument("run_dir")
    q.add_argument("--name", help="entry name (default: model name and a short hash)")
    q.add_argument("--entries", default="leaderboard/entries",
                   help="folder of submitted entries (default: leaderboard/entries, from the current folder)")
    q.add_argument("--force", action="store_true", help="replace an entry of the same name")
    q = actions.add_parser("check", help="the submission checker: schema, hashes, counts, every metric; prints a "
                                         "Markdown report for the review")
    q.add_argument("entry", help="an entry folder (or a run folder)")
    q.add_argument("--bench", metavar="DIR|smoke", help="also check the entry against this benchmark")
    q.add_argument("--out", help="also write the report to this file")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.escape import terminal_text

    if args.leaderboard_command == "submit":
        from dfabench.leaderboard import submit_run

        path = submit_run(Path(args.run_dir), Path(args.entries), name=args.name, force=args.force)
        print(f"submitted {args.run_dir} as {path}")
        return 0
    if args.leaderboard_command == "check":
        return _check(args)
    from dfabench.errors import DfabenchError
    from dfabench.leaderboard import TieSettings, build_leaderboard

    if args.replicates < 1:
        raise DfabenchError(f"--replicates must be at least 1, not {args.replicates}")
    if args.jobs is not None and args.jobs < 1:
        raise DfabenchError(f"--jobs must be at least 1, not {args.jobs}")
    result = build_leaderboard(Path(args.entries), Path(args.out), [resolve_bench(b) for b in args.bench or []],
                               reported=Path(args.reported) if args.reported else None,
                               ties=TieSettings(replicates=args.replicates), jobs=args.jobs,
                               cache=not args.no_cache)
    for path in result.written:
        print(f"wrote {path}")
    verified = f"verified {result.verified} {'entry' if result.verified == 1 else 'entries'} here"
    if result.cache is not None:
        print(f"{verified}; {result.cached} unchanged since an earlier build, from the verification cache "
              f"({result.cache}; --no-cache verifies them all again)")
        if result.cache_problem:
            print(f"warning: nothing can be kept in the verification cache {result.cache} "
                  f"({terminal_text(result.cache_problem)}): the next build verifies every entry again",
                  file=sys.stderr)
    else:
        print(f"{verified} (the verification cache is not used)")
    for problem in result.excluded:
        print(f"excluded: {terminal_text(problem)}", file=sys.stderr)
    if result.excluded:
        print(f"dfabench: {len(result.excluded)} entries excluded (listed above and in the outputs)", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from dfabench.errors import DfabenchError
    from dfabench.leaderboard import check_entry

    entry = Path(args.entry)
    if not entry.is_dir():
        raise DfabenchError(f"{entry}: no such entry folder")
    result = check_entry(entry, bench=resolve_bench(args.bench) if args.bench else None)
    text = result.markdown()
    sys.stdout.write(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0 if result.ok else 1
