"""``dfabench judge RUN_DIR --judge-model ID``: LLM-judge the text tasks of a run (see :mod:`dfabench.judge`)."""

from __future__ import annotations

import argparse
import sys

from dfabench.judge.rubric import list_rubrics
from dfabench.judge.settings import (
    CACHE_FILE,
    DEFAULT_API_KEY_ENV,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    JudgeSettings,
)


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dfabench judge``."""
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to judge")
    parser.add_argument("--judge-model", required=True, metavar="ID", help="the judge model id at the endpoint")
    parser.add_argument("--base-url", metavar="URL",
                        help="OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1 for vLLM or llama.cpp); "
                             "default: OpenAI")
    parser.add_argument("--api-key-env", default=DEFAULT_API_KEY_ENV, metavar="VAR",
                        help=f"environment variable holding the key (default {DEFAULT_API_KEY_ENV}); never stored")
    parser.add_argument("--with-image", action="store_true", help="send the benchmark image too (judge must see)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help=f"requests in flight (default {DEFAULT_CONCURRENCY})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"per-request timeout in seconds (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--max-retries", type=int, default=DEFAULT_MAX_RETRIES, metavar="N",
                        help=f"retries on 429/5xx/timeouts/malformed replies (default {DEFAULT_MAX_RETRIES})")
    parser.add_argument("--tasks", metavar="AD,FC,FL", help="tasks to judge (default: the run's text tasks)")
    parser.add_argument("--rubric", metavar="NAME|PATH",
                        help=f"rubric for every judged task (shipped: {', '.join(list_rubrics())})")
    parser.add_argument("--cache", metavar="PATH", help=f"judge cache (default RUN_DIR/{CACHE_FILE})")
    parser.add_argument("--refresh", action="store_true",
                        help="ask the judge again for every sample, even when the cache has the judgment")
    parser.add_argument("--no-json-mode", action="store_true",
                        help="do not send response_format=json_object (for servers without it)")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="judge reply limit (default: the rubric's)")
    parser.add_argument("--price-in", type=float, metavar="USD", help="price per million prompt tokens (for the cost)")
    parser.add_argument("--price-out", type=float, metavar="USD",
                        help="price per million completion tokens (for the cost)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent and the call count; no call")


def settings_from_args(args: argparse.Namespace) -> JudgeSettings:
    """The :class:`JudgeSettings` the options of ``dfabench judge`` describe."""
    return JudgeSettings(model=args.judge_model, base_url=args.base_url, api_key_env=args.api_key_env,
                         with_image=args.with_image, concurrency=args.concurrency, timeout=args.timeout,
                         max_retries=args.max_retries, rubric=args.rubric, json_mode=not args.no_json_mode,
                         max_tokens=args.max_tokens, price_input=args.price_in, price_output=args.price_out,
                         cache_path=args.cache, refresh=args.refresh)


def judge_command(args: argparse.Namespace) -> int:
    """``dfabench judge``: 0 when every answered sample is judged, 1 when some judgments failed."""
    settings = settings_from_args(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if not args.dry_run:
        settings.api_key()  # fail early, before any work, when there is no key
    from dfabench.judge.stage import judge_run  # the stage and its client load only when judging

    summary = judge_run(args.run_dir, settings, tasks, dry_run=args.dry_run,
                        stream=sys.stdout if args.dry_run else sys.stderr)
    if args.dry_run:
        return 0
    return 1 if summary.n_failed else 0


add_arguments = add_judge_arguments
run = judge_command
