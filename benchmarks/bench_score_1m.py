"""`dfabench score` and `dfabench verify` of a 1,000,000-sample DF-D run: wall time and peak memory.

Aim (issue 14): ``score`` of a 1,000,000-sample run in under 60 s and 500 MB. Each command runs in its own
subprocess; its peak resident memory is ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of a wrapper
process that runs only that command (so one measurement never includes another's). The reference, measured
in the same run, is the same on 100,000 samples: the time per sample at 1M over that at 100K shows whether
the work grows linearly, and the memory ratio whether memory stays flat (a list of every record would be
about 10x). With ``--old DIR`` (a copy of an older ``dfabench`` package, e.g. before streaming), its
``score`` of the 100K run is measured too.

The run folder is synthetic: a real DF-D run of the smoke benchmark (built with the real writers:
``dfabench bench smoke`` then ``dfabench run --model random``) whose log is replaced by N generated
records of the same schema (dfabench.records.sample), with its hash and selection record updated, so that
``score`` and ``verify`` take it as they take any run. Samples come in clusters of about 8 per
``source_id``; some fail, some are unparsed, a few have no score.

    python benchmarks/bench_score_1m.py                 # 1,000,000 and the 100,000 reference
    python benchmarks/bench_score_1m.py --sizes 20000   # quick
    python benchmarks/bench_score_1m.py --old /tmp/old  # also the old code's score at the reference size
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("FS", "FR", "FE", "EFS")
TECHNIQUES = {"FS": ("simswap", "faceswap"), "FR": ("fomm", "mouth-warp"), "FE": ("stargan", "e4s"),
              "EFS": ("stylegan2", "ddpm")}

# peak RSS of one command: run in a wrapper whose only child is that command
_MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
rc = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)
wall = time.perf_counter() - start
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def dfabench_command() -> list[str]:
    code = "import sys; from dfabench.cli import main; sys.argv[0] = 'dfabench'; sys.exit(main())"
    return [sys.executable, "-c", code]


def measure(args: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[int, float, float]:
    """``(exit code, wall seconds, peak RSS in MB)`` of one command."""
    out = subprocess.run([sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, env=env, cwd=cwd,
                         check=True).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]) / 1024.0  # ru_maxrss is in KiB on Linux


def template_run(work: Path) -> Path:
    """A real DF-D run of the smoke benchmark."""
    bench, run = work / "bench", work / "template"
    cli = dfabench_command()
    subprocess.run([*cli, "bench", "smoke", "--out", str(bench)], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "run", "--model", "random", "--tasks", "DF-D", "--bench", str(bench), "--out", str(run)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run


def synthetic_record(i: int, rng: random.Random, base: dict, task: str = "DF-D") -> dict:
    fake = rng.random() < 0.7
    category = rng.choice(CATEGORIES) if fake else None
    label = "fake" if fake else "real"
    error = "the model failed: timeout" if rng.random() < 0.01 else None
    unparsed = error is None and rng.random() < 0.03
    parsed = None if error or unparsed else ("fake" if rng.random() < (0.75 if fake else 0.35) else "real")
    score = None if error or rng.random() < 0.002 else round(min(1.0, max(0.0, rng.gauss(0.62 if fake else 0.45,
                                                                                       0.2))), 6)
    return {**base, "id": f"syn-{i:08d}", "task": task, "image": f"images/syn-{i:08d}.png", "label": label,
            "category": category, "technique": rng.choice(TECHNIQUES[category]) if fake else None,
            "source_id": f"src-{i // 8:07d}", "reference": label, "parsed": parsed, "score": score,
            "unparsed": unparsed, "error": error, "response": None if error else "fake" if parsed == "fake" else "real",
            "metrics": None, "timings": {"model_s": round(rng.random() / 100, 6)}}


def synthesize(template: Path, out: Path, n: int, *, seed: int = 0) -> Path:
    """A copy of the DF-D run ``template`` whose log holds ``n`` generated samples (hash and selection updated)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    record = json.loads((template / "run.json").read_text(encoding="utf-8"))
    with open(template / "samples-DF-D.jsonl", encoding="utf-8") as handle:
        base = json.loads(handle.readline())
    rng = random.Random(seed)
    digest, ids = hashlib.sha256(), []
    with open(out / "samples-DF-D.jsonl", "wb") as handle:
        block = []
        for i in range(n):
            sample = synthetic_record(i, rng, base)
            ids.append(sample["id"])
            block.append(json.dumps(sample, ensure_ascii=False) + "\n")
            if len(block) == 10_000 or i == n - 1:
                data = "".join(block).encode("utf-8")
                digest.update(data)
                handle.write(data)
                block = []
    record["samples"]["DF-D"]["sha256"] = digest.hexdigest()
    ids.sort()
    record["tasks"]["DF-D"]["selection"].update(
        n=n, n_available=n, n_pool=n, excluded={},
        ids_sha256=hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest())
    record["benchmark"]["n_samples"] = n
    del ids
    from dfabench.files import record_text

    (out / "run.json").write_text(record_text(record), encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000", help="sample counts to measure (comma-separated)")
    parser.add_argument("--reference", type=int, default=100_000, help="the reference size (0: none)")
    parser.add_argument("--old", type=Path, help="a folder holding an older dfabench package: its score too")
    parser.add_argument("--work", type=Path, help="where the run folders go (default: a temporary folder)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = args.work or Path(tempfile.mkdtemp(prefix="dfabench-score-1m-"))
    work.mkdir(parents=True, exist_ok=True)
    template = template_run(work)
    cli = dfabench_command()
    rows = []
    order = ([args.reference] if args.reference else []) + [s for s in sizes if s != args.reference]
    for n in order:
        start = time.perf_counter()
        run = synthesize(template, work / f"run-{n}", n)
        made = time.perf_counter() - start
        size_mb = (run / "samples-DF-D.jsonl").stat().st_size / 1e6
        with_old = args.old and n == args.reference
        if with_old:  # a copy the old code scores from the same unscored state
            shutil.copytree(run, work / f"run-{n}-old", dirs_exist_ok=True)
        rc_s, wall_s, rss_s = measure([*cli, "score", str(run)])
        rc_v, wall_v, rss_v = measure([*cli, "verify", str(run)])
        row = {"n": n, "log_mb": size_mb, "made_s": made, "score": (rc_s, wall_s, rss_s),
               "verify": (rc_v, wall_v, rss_v)}
        if with_old:
            env = {**os.environ, "PYTHONPATH": str(args.old.resolve())}
            row["old_score"] = measure([*cli, "score", str(work / f"run-{n}-old")], env=env, cwd=str(work))
            # the old code must write the same bytes
            row["old_same"] = all((run / f).read_bytes() == (work / f"run-{n}-old" / f).read_bytes()
                                  for f in ("run.json", "samples-DF-D.jsonl"))
        rows.append(row)
        print(f"n={n:>9,}  log {size_mb:7.1f} MB  score: rc {rc_s} {wall_s:6.1f} s {rss_s:6.0f} MB   "
              f"verify: rc {rc_v} {wall_v:6.1f} s {rss_v:6.0f} MB", flush=True)
        if "old_score" in row:
            rc_o, wall_o, rss_o = row["old_score"]
            print(f"           old code score: rc {rc_o} {wall_o:6.1f} s {rss_o:6.0f} MB; same bytes as the new code: "
                  f"{row['old_same']}", flush=True)
        shutil.rmtree(work / f"run-{n}-old", ignore_errors=True)
        if n != args.reference:
            shutil.rmtree(run, ignore_errors=True)
    reference = next((r for r in rows if r["n"] == args.reference), None)
    for row in rows:
        if row is reference:
            continue
        _, wall, rss = row["score"]
        aim = f"aim < 60 s: {'met' if wall < 60 else 'NOT met'}; aim < 500 MB: {'met' if rss < 500 else 'NOT met'}"
        print(f"score of {row['n']:,} samples: {wall:.1f} s, {rss:.0f} MB peak ({aim})")
        if reference is not None:
            for stage in ("score", "verify"):
                per = row[stage][1] / row["n"] / (reference[stage][1] / reference["n"])
                mem = row[stage][2] / reference[stage][2]
                print(f"  {stage}: time per sample {per:.2f}x the {reference['n']:,}-sample reference; "
                      f"peak memory {mem:.2f}x")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
