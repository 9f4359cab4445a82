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
    parser.add_argument("--prompt-variant", metavar="NAME|all",
                        help="ask the tasks' paraphrased questions (see `dfabench tasks`): a variant name, a "
                             "comma-separated list, or 'all' (each variant, then the spread across them); each runs "
                             "as its own task TASK@NAME; default: the tasks' own question (the DFA-Bench one)")
    parser.add_argument("--frames-per-video", type=int, metavar="N",
                        help="at most N frames per source video (source_id), chosen by a seeded rule "
                             "(DeepfakeBench reports 32); default: every frame")
    scale = parser.add_argument_group("scaling out (README: Scaling out)")
    scale.add_argument("--shard", metavar="K/N",
                       help="predict only shard K of N (by a hash of the sample id; `dfabench merge` joins them)")
    scale.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where the model answers: this process (default) or Ray actors")
    scale.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster to join (e.g. auto, or HOST:6379); default: start a local one")
    scale.add_argument("--replicas", type=int, help="model replicas (Ray actors; default 1)")
    scale.add_argument("--gpus-per-replica", type=float, help="GPUs each replica holds (default 0)")
    scale.add_argument("--cpus-per-replica", type=float, help="CPUs each replica holds (default 1)")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the CIs (default 1000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.executors.shards import parse_shard
    from dfabench.runner import RunOptions
    from dfabench.runner import run as run_benchmark

    for name, value in (("--limit", args.limit), ("--batch-size", args.batch_size), ("--n-boot", args.n_boot),
                        ("--max-new-tokens", args.max_new_tokens), ("--frames-per-video", args.frames_per_video),
                        ("--replicas", args.replicas)):
        if value is not None and value < 1:
            raise DfabenchError(f"{name} must be at least 1, not {value}")
    shard = parse_shard(args.shard) if args.shard is not None else None
    executor_options = {name: value for name, value in (
        ("ray_address", args.ray_address), ("replicas", args.replicas), ("gpus_per_replica", args.gpus_per_replica),
        ("cpus_per_replica", args.cpus_per_replica)) if value is not None}
    if executor_options and args.executor != "ray":
        raise DfabenchError(f"{', '.join('--' + k.replace('_', '-') for k in executor_options)} need --executor ray")
    tasks = resolve_tasks(args.tasks)
    options = RunOptions(
        model=args.model, model_args=parse_model_args(args.model_arg), tasks=tasks,
        bench=str(resolve_bench(args.bench)), out=Path(args.out), split=args.split, limit=args.limit, seed=args.seed,
        batch_size=args.batch_size, cache=Path(args.cache) if args.cache else None, n_boot=args.n_boot,
        progress=not args.no_progress, max_new_tokens=args.max_new_tokens, command=["dfabench", *sys.argv[1:]],
        extractor=(args.extractor, parse_model_args(args.extractor_arg)) if args.extractor else None,
        shard=shard, executor=args.executor, executor_options=executor_options,
        frames_per_video=args.frames_per_video, prompt_variant=args.prompt_variant,
    )
    if args.extractor_arg and not args.extractor:
        raise DfabenchError("--extractor-arg needs --extractor MODEL")
    record = run_benchmark(options)
    print_results(record, options.out)
    if shard is not None:
        print(f"shard {shard[0]}/{shard[1]}: the numbers above are of this part only; when all {shard[1]} shards "
              f"are done: dfabench merge SHARD_DIR... --out RUN_DIR")
    return report_metric_errors(record)
