"""The judge stage against a local OpenAI-compatible endpoint that answers after a fixed delay.

    python benchmarks/bench_judge.py [--n 1000] [--delay 0.2] [--concurrency 32]

Writes a run folder with ``n`` AD answers, starts ``python -m dfabench.testing.chat_server`` (a separate
process, as a real endpoint is) on 127.0.0.1 answering every request after ``delay`` seconds with a valid
judgment, judges a 4-sample run once untimed (a warm-up: the imports of the judge stage and the openai SDK, which
every later run of the process finds done), then times, in this run:
1. judging with the default concurrency (fresh cache), ``--repeat`` times (default 3: the machine is shared, the
   concurrent run is short and CPU-bound, so one measurement is noisy),
2. the same command again (everything cached: it must make 0 calls),
3. judging one request at a time (``--concurrency 1``, fresh cache), once.
Prints the wall times, the calls the server received and the ratio one-at-a-time / concurrent (against the median
and the fastest of the repeats). The re-scoring after judging is left out (``rescore=False``): this measures the
judge stage itself. The judge pipelines its batches (:func:`dfabench.judge.call.run_calls`): the openai plugin's
concurrency stays full while earlier answers are committed to the cache.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from dfabench.judge import DEFAULT_CONCURRENCY, JudgeSettings, judge_run
from dfabench.store import SCHEMA_VERSION, RunFolder


def make_run(path: Path, n: int) -> RunFolder:
    spec = {"id": "AD", "version": "1", "parser": "text", "metrics": ["judge"]}
    records = [{"id": f"s{i}", "task": "AD", "source_id": f"id{i // 4}", "image": f"images/s{i}.png",
                "prompt": "Can you detail the specific regions of the facial image where artifacts are evident?",
                "reference": "1. Eyes: blurred edges. 2. Mouth: blending boundary and color mismatch.",
                "response": f"answer {i}", "parsed": f"Answer {i}: the eyes are blurred and the mouth is blended.",
                "error": None, "unparsed": False, "judge": None} for i in range(n)]
    folder = RunFolder(path)
    digest = folder.write_samples("AD", records)
    folder.write_record({"schema_version": SCHEMA_VERSION, "dfabench_version": "bench", "model": {"name": "bench"},
                         "tasks": {"AD": {"version": "1", "fingerprint": "bench", "spec": spec}}, "seed": 0,
                         "benchmark": {"path": None, "fingerprint": "bench"}, "judge": None, "metrics": {},
                         "counts": {}, "samples": {"AD": {"file": "samples-AD.jsonl", "sha256": digest}}})
    return folder


class Endpoint:
    """The chat server in its own process."""

    def __init__(self, delay: float, *options: str):
        self.process = subprocess.Popen([sys.executable, "-m", "dfabench.testing.chat_server", "--delay", str(delay),
                                         "--model", "bench-judge-2026", "--reply", "judge", *options],
                                        stdout=subprocess.PIPE, text=True)
        first = self.process.stdout.readline().strip()
        if not first.startswith("base_url="):
            self.process.kill()
            raise RuntimeError(f"the chat server did not start: {first!r}")
        self.base_url = first.split("=", 1)[1]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base_url.rsplit("/v1", 1)[0] + "/_stats") as reply:
            return json.load(reply)

    def calls(self) -> int:
        return self.stats()["chat_requests"]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def timed_run(folder: RunFolder, endpoint: Endpoint, concurrency: int, cache: Path) -> tuple[float, int, int]:
    before = endpoint.calls()
    settings = JudgeSettings(model="bench-judge", base_url=endpoint.base_url, concurrency=concurrency, timeout=30,
                             cache_path=str(cache), api_key_env="DFABENCH_BENCH_NO_KEY", calibrate=False)
    started = time.perf_counter()
    summary = judge_run(folder.path, settings, stream=io.StringIO(), rescore=False)
    seconds = time.perf_counter() - started
    return seconds, endpoint.calls() - before, summary.tasks["AD"].n_judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--repeat", type=int, default=3, help="concurrent runs to time (default 3)")
    parser.add_argument("--skip-sequential", action="store_true", help="leave out the one-at-a-time run")
    args = parser.parse_args()
    endpoint = Endpoint(args.delay)
    try:
        with tempfile.TemporaryDirectory(prefix="dfabench-bench-judge-") as tmp:
            folder = make_run(Path(tmp) / "run", args.n)
            print(f"python {platform.python_version()} on {platform.machine()}; {args.n} AD samples, endpoint "
                  f"answers after {args.delay * 1000:.0f} ms; load average {_load()}")
            timed_run(make_run(Path(tmp) / "warm", 4), endpoint, args.concurrency, Path(tmp) / "w.sqlite")
            times = []
            for number in range(max(1, args.repeat)):
                concurrent, calls, judged = timed_run(folder, endpoint, args.concurrency,
                                                      Path(tmp) / f"c{number}.sqlite")
                times.append(concurrent)
                print(f"concurrency {args.concurrency:3d}: {concurrent:7.2f} s, {calls} calls, {judged} judged "
                      f"({args.n / concurrent:.1f} samples/s)")
            again, calls_again, judged_again = timed_run(folder, endpoint, args.concurrency, Path(tmp) / "c0.sqlite")
            print(f"second run     : {again:7.2f} s, {calls_again} calls, {judged_again} judged (from the cache)")
            if not args.skip_sequential:
                sequential, calls_seq, _ = timed_run(folder, endpoint, 1, Path(tmp) / "s.sqlite")
                print(f"concurrency   1: {sequential:7.2f} s, {calls_seq} calls ({args.n / sequential:.1f} samples/s)")
                median = statistics.median(times)
                print(f"speed ratio (one at a time / concurrency {args.concurrency}): {sequential / median:.1f}x "
                      f"(median of {len(times)}), {sequential / min(times):.1f}x (fastest); load average {_load()}")
    finally:
        endpoint.close()
    sys.stdout.flush()


def _load() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
