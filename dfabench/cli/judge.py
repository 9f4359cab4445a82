"""``dfabench judge RUN_DIR --judge NAME --judge-arg k=v`` (or ``--judge-model ID``): LLM-judge the text tasks of a
run (see :mod:`dfabench.judge`)."""

from __future__ import annotations

import argparse
import sys

from dfabench.cli._common import parse_model_args
from dfabench.escape import terminal_text as clean
from dfabench.judge.rubric import list_rubrics
from dfabench.judge.settings import (
    CACHE_FILE,
    DEFAULT_API_KEY_ENV,
    DEFAULT_CONCURRENCY,
    DEFAULT_JUDGE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    OUTPUT_MODES,
    JudgeSettings,
)
from dfabench.store import RunFolder

DESCRIPTION = """LLM-judge the text tasks of a run (cached).

One judge:  dfabench judge RUN --judge openai --judge-arg model=gpt-4o-2024-08-06
            (or the shorthand --judge-model ID [--base-url URL]); --judge hf --judge-arg path=...

An ensemble: give --judge more than once; each --judge-arg belongs to the --judge before it
  dfabench judge RUN --judge openai --judge-arg model=A --judge hf --judge-arg path=B
  Each sample's score is the mean, per criterion, of the members' judgments. When a member fails a sample
  (an error, an unparseable judgment), that sample is a judge failure of the ensemble: never a mean of the
  members that answered. Each member's coverage (judged / failed per task) is recorded and printed.
  The ensemble is one judge identity: its sorted members (reported model and output mode) and the rule
  (mean); its judgments are cached per member, so a member that judged the run before is not asked again.
  run.json records each member's identity, calibration fingerprint and coverage, and the members'
  agreement (Spearman, Kendall, weighted kappa: as `dfabench judge agree`)."""


class _JudgeAction(argparse.Action):
    """``--judge NAME``: a judge (given again: the next member of an ensemble)."""

    def __call__(self, parser, namespace, value, option_string=None):
        members = [list(m) for m in (getattr(namespace, "judge_members", None) or [])]
        if members and members[-1][0] is None:
            members[-1][0] = value  # the --judge-arg values given before the first --judge are its own
        else:
            members.append([value, []])
        namespace.judge_members = members
        namespace.judge = members[0][0]


class _JudgeArgAction(argparse.Action):
    """``--judge-arg K=V``: an argument of the judge named last (before any --judge: of the first)."""

    def __call__(self, parser, namespace, value, option_string=None):
        members = [list(m) for m in (getattr(namespace, "judge_members", None) or [])]
        if not members:
            members.append([None, []])
        members[-1][1] = [*members[-1][1], value]
        namespace.judge_members = members
        namespace.judge_arg = [*(getattr(namespace, "judge_arg", None) or []), value]


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dfabench judge``."""
    parser.description = DESCRIPTION
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.set_defaults(judge_members=[])
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder to judge")
    parser.add_argument("--judge", default=DEFAULT_JUDGE, metavar="NAME", action=_JudgeAction,
                        help=f"the judge: any registered generate-capable model (default {DEFAULT_JUDGE}; "
                             "e.g. hf, lmms; see `dfabench models`); given more than once: an ensemble")
    parser.add_argument("--judge-arg", default=[], metavar="K=V", action=_JudgeArgAction,
                        help="an argument of the judge named before it, like --model-arg (repeatable), e.g. "
                             "--judge openai --judge-arg model=gpt-4o-2024-08-06")
    parser.add_argument("--judge-output", choices=OUTPUT_MODES, default="auto",
                        help="how the judgment is asked for: auto (the strongest the judge enforces: json_schema, "
                             "json_object, else text), or one fixed")
    parser.add_argument("--judge-model", metavar="ID",
                        help="shorthand for --judge openai --judge-arg model=ID: the judge model id at the endpoint")
    parser.add_argument("--base-url", metavar="URL",
                        help="with --judge-model: an OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1 for "
                             "vLLM, SGLang or llama.cpp); default: OpenAI")
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
                        help="the same as --judge-output text (for servers without response_format)")
    parser.add_argument("--max-tokens", type=int, metavar="N", help="judge reply limit (default: the rubric's)")
    parser.add_argument("--price-in", type=float, metavar="USD", help="price per million prompt tokens (for the cost)")
    parser.add_argument("--price-out", type=float, metavar="USD",
                        help="price per million completion tokens (for the cost)")
    parser.add_argument("--max-cost", type=float, metavar="USD",
                        help="stop before the estimated cost would exceed this budget (needs --price-in/--price-out; "
                             "the judgments not asked are recorded as failures, and the cache keeps the rest)")
    parser.add_argument("--no-calibration", action="store_true",
                        help="do not judge the rubrics' calibration sets (their scores are the judge's reliability "
                             "figures in run.json)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="judge a fixed, seeded subset of N samples per task (recorded; never ranked with full "
                             "judgments)")
    parser.add_argument("--seed", type=int, default=0, help="the seed of --sample's subset (default 0)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be sent and the call count; no call")


def settings_from_args(args: argparse.Namespace) -> JudgeSettings:
    """The :class:`JudgeSettings` the options of ``dfabench judge`` describe."""
    return JudgeSettings(model=args.judge_model, base_url=args.base_url, api_key_env=args.api_key_env,
                         with_image=args.with_image, concurrency=args.concurrency, timeout=args.timeout,
                         max_retries=args.max_retries, rubric=args.rubric, json_mode=not args.no_json_mode,
                         max_tokens=args.max_tokens, price_input=args.price_in, price_output=args.price_out,
                         cache_path=args.cache, refresh=args.refresh, judge=args.judge,
                         judge_args=parse_model_args(_first_args(args)), output=args.judge_output, sample=args.sample,
                         seed=args.seed, calibrate=not args.no_calibration, max_cost=args.max_cost,
                         members=_members(args))


def _first_args(args: argparse.Namespace) -> list[str]:
    """The ``--judge-arg`` values of the first (or only) judge."""
    members = getattr(args, "judge_members", None) or []
    return list(members[0][1]) if members else list(args.judge_arg or [])


def _members(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """The ensemble's members (name, arguments) in the order given; empty for a single judge."""
    members = getattr(args, "judge_members", None) or []
    if len(members) <= 1:
        return []
    return [(name, parse_model_args(pairs)) for name, pairs in members]


def judge_command(args: argparse.Namespace) -> int:
    """``dfabench judge``: 0 when every answered sample is judged, 1 when some judgments failed."""
    settings = settings_from_args(args)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    for member in settings.member_settings():
        member.role()  # a judge named both ways, or none, a member named twice: one line, before any work
    from dfabench.judge.stage import judge_run  # the stage and its client load only when judging

    summary = judge_run(args.run_dir, settings, tasks, dry_run=args.dry_run,
                        stream=sys.stdout if args.dry_run else sys.stderr)
    if args.dry_run:
        return 0
    _print_scores(RunFolder(args.run_dir).read_record(), list(summary.tasks))
    return 1 if summary.n_failed else 0


def _print_scores(record: dict, tasks: list[str]) -> None:
    """The judged tasks' judge score (with its interval) and failure rate, on stdout."""
    for task in tasks:
        metrics = (record.get("metrics") or {}).get(task) or {}
        score, rate = metrics.get("judge_score") or {}, metrics.get("judge_failure_rate") or {}
        if score.get("value") is None:
            print(f"{task}: judge_score undefined ({clean(score.get('reason') or 'the task scores no judge metric')})")
            continue
        interval = (f" [{score['ci_low']:.4f}, {score['ci_high']:.4f}]" if score.get("ci_low") is not None
                    and score.get("ci_high") is not None else "")
        failures = f", judge_failure_rate {rate['value']:.4f}" if rate.get("value") is not None else ""
        print(f"{task}: judge_score {score['value']:.4f}{interval} over {score.get('n')} samples{failures}")


add_arguments = add_judge_arguments
run = judge_command
