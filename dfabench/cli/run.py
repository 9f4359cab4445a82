"""``dfabench run``: predict and score, a model on tasks of a benchmark."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfabench.cli._common import parse_model_args, print_results, report_metric_errors
from dfabench.data import resolve_bench
from dfabench.errors import DfabenchError
from dfabench.plugins import resolve_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name (see `dfabench models`)")
    parser.add_argument("--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    parser.add_argument("--tasks", required=True, help="comma-separated task ids, e.g. DF-D,DF-C")
    parser.add_argument("--bench", required=True, help="benchmark folder, or 'smoke' for the built-in smoke benchmark")
    parser.add_argument("--out", required=True, help="run folder (an interrupted run resumes from it)")
    parser.add_argument("--split", default="auto", help="split to evaluate: a split name or 'all' "
                                                        "(default: 'test' if the benchmark has one, else all)")
    parser.add_argument("--limit", type=int, help="at most N samples per task")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling and bootstrap (default 0)")
    parser.add_argument("--batch-size", type=int, help="samples per model call (default: the model's)")
    parser.add_argument("--max-new-tokens", type=int, help="override the tasks' max_new_tokens")
    parser.add_argument("--cache", help="response cache file (default: RUN_DIR/cache.sqlite)")
    parser.add_argument("--extractor", metavar="MODEL",
                        help="read the DF-D/DF-C answers the rules leave unparsed with this generate-capable model "
                             "(a fixed, versioned prompt; recorded, and compared by the leaderboard); never by default")
    parser.add_argument("--extractor-arg", action="append", default=[], metavar="K=V",
                        help="an argument of the extractor model, like --model-arg (repeatable)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the CIs (default 1000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.runner import RunOptions
    from dfabench.runner import run as run_benchmark

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
        extractor=(args.extractor, parse_model_args(args.extractor_arg)) if args.extractor else None,
    )
    if args.extractor_arg and not args.extractor:
        raise DfabenchError("--extractor-arg needs --extractor MODEL")
    record = run_benchmark(options)
    print_results(record, options.out)
    return report_metric_errors(record)
