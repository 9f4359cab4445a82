"""Parse failures of the judge's output modes: json_schema vs json_object (JSON mode) vs text, against the local
chat server with malformed replies injected at a fixed, seeded rate.

    python benchmarks/bench_judge_modes.py [--n 1000] [--rate 0.2] [--seed 0]

Writes a run folder with ``n`` AD answers (each different: bench_judge.make_run), starts ``python -m
dfabench.testing.chat_server --reply judge --malformed-rate RATE --malformed-seed SEED`` in its own process, and
judges the run three times, once per output mode (``--judge-output``, fresh cache each). The server makes a reply
malformed with the seeded probability (the same samples in every mode: the draw is seeded with the request's
messages), with one of ten defects (dfabench.testing.chat_server.MALFORMED_KINDS: prose before the object, text
after it, two objects, single quotes, a ```json fence, a missing key, a value out of range, a number as a string, an
unknown key, a reply cut short) and then simulates what the mode enforces: a JSON Schema prevents all but the cut
reply, JSON mode prevents the syntax defects only, text nothing. Prints, per mode: the defects injected, those the
mode let through, and the judgments dfabench's strict parser refused (parse failures: never a score), as a rate of
all samples.
The numbers measure dfabench's parser and fallback under the server's simulation of each mode, not a real model.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import tempfile
from pathlib import Path

from bench_judge import Endpoint, make_run

from dfabench.judge import JudgeSettings, judge_run
from dfabench.store import RunFolder

MODES = ("json_schema", "json_object", "text")


def judge_mode(folder: RunFolder, endpoint: Endpoint, mode: str, cache: Path) -> tuple[int, int, int, int]:
    """(judged, parse failures, other failures, defects the server sent)."""
    before = endpoint.stats().get("malformed") or {}
    settings = JudgeSettings(model="bench-judge", base_url=endpoint.base_url, concurrency=32, timeout=30,
                             cache_path=str(cache), api_key_env="DFABENCH_BENCH_NO_KEY", calibrate=False, output=mode)
    summary = judge_run(folder.path, settings, stream=io.StringIO(), rescore=False)
    after = endpoint.stats().get("malformed") or {}
    task = summary.tasks["AD"]
    unparseable = task.failures.get("unparseable", 0)
    return (task.n_judged, unparseable, task.n_failed - unparseable,
            after.get("sent", 0) - before.get("sent", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.2, help="share of replies made malformed (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    endpoint = Endpoint(0.0, "--malformed-rate", str(args.rate), "--malformed-seed", str(args.seed))
    try:
        with tempfile.TemporaryDirectory(prefix="dfabench-bench-judge-modes-") as tmp:
            folder = make_run(Path(tmp) / "run", args.n)
            print(f"python {platform.python_version()} on {platform.machine()}; {args.n} AD samples, malformed "
                  f"replies injected at rate {args.rate:g} (seed {args.seed})")
            rates = {}
            for mode in MODES:
                injected_before = (endpoint.stats().get("malformed") or {}).get("injected", 0)
                judged, unparseable, other, sent = judge_mode(folder, endpoint, mode, Path(tmp) / f"{mode}.sqlite")
                injected = (endpoint.stats().get("malformed") or {}).get("injected", 0) - injected_before
                rates[mode] = unparseable / args.n
                print(f"{mode:12s}: {injected:4d} defects injected, {sent:4d} let through by the mode, "
                      f"{unparseable:4d} parse failures ({100 * rates[mode]:.1f}% of samples), {other} other "
                      f"failures, {judged} judged")
            if rates["text"]:
                print(f"parse-failure rate relative to text: json_object {rates['json_object'] / rates['text']:.2f}, "
                      f"json_schema {rates['json_schema'] / rates['text']:.2f}")
    finally:
        endpoint.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
