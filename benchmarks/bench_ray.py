"""The Ray executor, as ratios against references measured in the same run (a local Ray with this
machine's CPUs, started once before the timings).

1. Scaling: a CPU-bound model (tests/dfabench_testray.py `crash` with `work=N`: a pure-Python loop per
   sample) on N samples with 2 replicas vs 1 (aim: >= 1.7x on this 2-core machine).
2. Overhead: a zero-cost model (`constant`) on N samples, Ray with 1 replica vs the local executor.

Usage: python benchmarks/bench_ray.py [--samples 400] [--work 1600000] [--batch-size 8]

Measured on the idle 2-core machine (2026-12-02): 2 replicas 9.8 s vs 1 replica 16.9 s = 1.73x (with --work
400000, 1.41x: the fixed costs — actor start, scoring — weigh more); zero-cost model 1.8 s on Ray vs 0.30 s local.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"


def timed_run(bench: Path, out: Path, model: list[str], extra: list[str]) -> float:
    from dfabench.cli import main

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", *model, "--tasks", "DF-D", "--bench", str(bench), "--out", str(out), "--no-progress",
                     "--n-boot", "10", *extra])
    if code != 0:
        raise SystemExit(f"run failed ({code})")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--work", type=int, default=1_600_000, help="loop iterations per sample (CPU-bound model)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    sys.path.insert(0, str(TESTS))
    os.environ["DFABENCH_PLUGINS"] = "dfabench_testmodels,dfabench_testray"
    import ray
    from benchmaker import make_benchmark

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": str(TESTS), "DFABENCH_PLUGINS": os.environ["DFABENCH_PLUGINS"]}})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_real = args.samples // 5
        bench = make_benchmark(tmp / "bench", n_real=n_real, n_per_category=(args.samples - n_real) // 4)
        batch = ["--batch-size", str(args.batch_size)]
        crash = ["--model", "crash", "--model-arg", f"work={args.work}"]
        # each contender into its own folder: no cache hits
        warm = timed_run(bench, tmp / "warm", crash, [*batch, "--executor", "ray", "--replicas", "2"])
        one = timed_run(bench, tmp / "r1", crash, [*batch, "--executor", "ray", "--replicas", "1"])
        two = timed_run(bench, tmp / "r2", crash, [*batch, "--executor", "ray", "--replicas", "2"])
        local_cpu = timed_run(bench, tmp / "local-cpu", crash, batch)
        print(f"CPU-bound model, {args.samples} samples, {cpus} CPUs (warm-up {warm:.1f} s):")
        print(f"  local executor   {local_cpu:7.2f} s")
        print(f"  ray, 1 replica   {one:7.2f} s")
        print(f"  ray, 2 replicas  {two:7.2f} s   -> {one / two:.2f}x the 1-replica speed (aim >= 1.7x)")
        zero = ["--model", "constant"]
        local = timed_run(bench, tmp / "local0", zero, batch)
        remote = timed_run(bench, tmp / "ray0", zero, [*batch, "--executor", "ray", "--replicas", "1"])
        print(f"zero-cost model, {args.samples} samples, batch {args.batch_size}:")
        print(f"  local executor   {local:7.2f} s")
        print(f"  ray, 1 replica   {remote:7.2f} s   -> overhead {remote / local:.2f}x the local run "
              f"({(remote - local) / args.samples * 1000:.2f} ms per sample, actor start included)")
    ray.shutdown()


if __name__ == "__main__":
    main()
