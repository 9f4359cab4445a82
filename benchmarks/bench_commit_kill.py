"""Every-step kill test of the run-folder transactions: how many file operations each writing stage
makes, and how many folders a kill after one of them leaves inconsistent (must be 0).

    python benchmarks/bench_commit_kill.py [--limit 2] [--spawn]

For each stage (``run`` into an empty folder, ``run`` into a folder with an earlier run with FL
masks, ``score``, ``judge`` against a local judge endpoint) and every k from 1 to the stage's number
of file operations, the stage runs on a copy of its old state with ``DFABENCH_FAULT_AFTER=k`` (the
store exits right after its k-th write, fsync, rename, unlink, mkdir or rmdir); the folder is then
opened (recovery) and must be the old state or the new one, byte for byte, and verify
(tests/commit_kill.py, shared with tests/test_trust_commit.py). ``--spawn``: a fresh interpreter per
run instead of a fork. Exit code 1 when any folder was left inconsistent.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2, help="samples per task (default 2)")
    parser.add_argument("--spawn", action="store_true", help="a fresh interpreter per run (slower)")
    args = parser.parse_args()
    if args.spawn:
        os.environ["DFABENCH_KILL_TEST_SPAWN"] = "1"

    import commit_kill as ck

    from dfabench.testing.chat_server import ChatServer, judge_reply

    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs, "
          f"{'fresh interpreters' if not ck.FORK else 'forked children'}, --limit {args.limit}")
    total_steps = total_kills = total_bad = 0
    with tempfile.TemporaryDirectory() as tmp, ChatServer(responder=judge_reply, model="judge-bench") as server:
        work = Path(tmp)
        scenarios = ck.build_scenarios(work / "scenarios", server.base_url, limit=args.limit)
        print(f"{'stage':<40} {'steps':>5} {'old':>5} {'new':>5} {'inconsistent':>12} {'seconds':>8}")
        for index, scenario in enumerate(scenarios):
            started = time.perf_counter()
            result = ck.kill_every_step(scenario, work / f"kill{index}")
            seconds = time.perf_counter() - started
            print(f"{scenario.name:<40} {result.steps:>5} {result.states['old']:>5} {result.states['new']:>5} "
                  f"{len(result.inconsistent):>12} {seconds:>8.1f}")
            for line in result.inconsistent[:5]:
                print(f"    {line}")
            total_steps += result.steps
            total_kills += sum(result.states.values()) + len(result.inconsistent)
            total_bad += len(result.inconsistent)
    print(f"total: {total_steps} steps, {total_kills} kills, {total_bad} folders left inconsistent (must be 0)")
    return 1 if total_bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
