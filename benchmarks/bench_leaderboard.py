"""`dfabench leaderboard build` from 100 entries of 20,000 DF-D samples each; `leaderboard check` of one; the
viewer's first page on one.

Aims (issue 12): the build in under 10 s and 1 GB (the logs are streamed, the page embeds no per-sample data),
the page's size; ``leaderboard check`` of one entry in under 2 s. Each command runs in its own subprocess; its
peak memory is the largest sum of the resident memory of it and its children (the build verifies big sets of
entries in one process per CPU), sampled every 20 ms (psutil, in the dev constraints).

Three builds of the same entries: **cold** (the verification cache empty: every entry verified), **nothing
changed** (every entry's outcome from the cache, :mod:`dfabench.leaderboard.verified`) and **after one new
submission** (one more entry: it alone is verified) — what a maintainer regenerating the leaderboard meets. The
cache lives in the work folder (``$DFABENCH_CACHE_DIR``), never the user's.

References measured in the same run: ``dfabench verify`` of one entry (every entry must verify before it is
shown, so 100 of them over the CPUs are the cold build's floor: the ratio says what the build adds), and the
build of the first 10 entries without the cache, in parallel and with ``--jobs 1`` (the time per entry at 100 over
that at 10 says whether the build grows linearly; the two 10-entry builds, what the processes gain here).

The entries are synthetic but made by the project's own writers: a real DF-D run of the smoke benchmark
(``dfabench run --model random``) whose log is replaced by 20,000 generated records (the same ground truth in
every entry, clustered by ``source_id``; each entry answers with its own accuracy, 1% failed, 2% unparsed, and
a P(fake)), then re-scored in-process by :func:`dfabench.scoring.rescore_run` (the metrics, intervals, counts
and hashes of ``dfabench score``), so ``verify`` and the build take them as they take any entry.

    python benchmarks/bench_leaderboard.py                       # 100 x 20,000 (about 1 GB of logs in /tmp)
    python benchmarks/bench_leaderboard.py --entries 10 --samples 2000   # quick
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
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_score_1m import CATEGORIES, TECHNIQUES, dfabench_command, template_run  # noqa: E402

AIM_BUILD_S, AIM_BUILD_MB, AIM_CHECK_S = 10.0, 1024.0, 2.0


def ground_truth(n: int, seed: int = 0) -> list[tuple[str, str | None, str | None, str]]:
    """``(label, category, technique, source_id)`` of each sample: 70% fake, about 8 samples per source."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        fake = rng.random() < 0.7
        category = rng.choice(CATEGORIES) if fake else None
        out.append(("fake" if fake else "real", category, rng.choice(TECHNIQUES[category]) if fake else None,
                    f"src-{i // 8:07d}"))
    return out


def write_entry(template: Path, out: Path, truth: list, index: int, n_entries: int) -> Path:
    """Entry ``index``: the template run with a generated log over ``truth`` (hash and selection updated),
    re-scored by the project's scorer."""
    from dfabench.files import record_text
    from dfabench.scoring import rescore_run

    out.mkdir(parents=True)
    record = json.loads((template / "run.json").read_text(encoding="utf-8"))
    with open(template / "samples-DF-D.jsonl", encoding="utf-8") as handle:
        base = json.loads(handle.readline())
    rng = random.Random(1000 + index)
    skill = 0.55 + 0.35 * index / max(1, n_entries - 1)  # neighbours close enough to tie, the ends far apart
    digest, ids, lines = hashlib.sha256(), [], []
    for i, (label, category, technique, source) in enumerate(truth):
        sid = f"syn-{i:08d}"
        ids.append(sid)
        error = "the model failed: timeout" if rng.random() < 0.01 else None
        unparsed = error is None and rng.random() < 0.02
        right = rng.random() < skill
        parsed = None if error or unparsed else (label if right else ("real" if label == "fake" else "fake"))
        score = None if error else round(min(1.0, max(0.0, rng.gauss(0.5 + (0.25 if label == "fake" else -0.25)
                                                                      * (skill - 0.5) * 4, 0.2))), 6)
        lines.append(json.dumps({**base, "id": sid, "task": "DF-D", "image": f"images/{sid}.png", "label": label,
                                 "category": category, "technique": technique, "source_id": source,
                                 "reference": label, "parsed": parsed, "score": score, "unparsed": unparsed,
                                 "error": error, "response": None if error else "a tree" if unparsed else
                                 "Yes, it is forged." if parsed == "fake" else "No, it is real.",
                                 "metrics": None, "timings": {"model_s": round(rng.random() / 100, 6)}},
                                ensure_ascii=False) + "\n")
    data = "".join(lines).encode("utf-8")
    digest.update(data)
    (out / "samples-DF-D.jsonl").write_bytes(data)
    record["samples"]["DF-D"]["sha256"] = digest.hexdigest()
    ids.sort()
    record["tasks"]["DF-D"]["selection"].update(
        n=len(ids), n_available=len(ids), n_pool=len(ids), excluded={},
        ids_sha256=hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest())
    record["benchmark"]["n_samples"] = len(ids)
    record["benchmark"].pop("path", None)  # the smoke folder has none of these images
    (out / "run.json").write_text(record_text(record), encoding="utf-8")
    rescore_run(out)
    (out / "entry.json").write_text(json.dumps({"name": f"synthetic-{index:03d}"}, indent=2) + "\n")
    return out


def measure(args: list[str]) -> tuple[int, float, float]:
    """``(exit code, wall seconds, peak MB of the command and its children together)``."""
    import psutil

    start = time.perf_counter()
    process = psutil.Popen(args, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass  # a child that ended meanwhile
        time.sleep(0.02)
    return process.returncode, time.perf_counter() - start, peak / 2**20


def viewer_first_page(entry: Path) -> tuple[float, float, int]:
    """``dfabench view ENTRY``: ``(seconds from start to the first page received, seconds of that GET alone,
    page bytes)``."""
    start = time.perf_counter()
    process = subprocess.Popen([*dfabench_command(), "view", str(entry), "--port", "0", "--ratings",
                                str(entry.parent / "ratings.csv")], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = line.split()[2]
        got = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            page = response.read()
        end = time.perf_counter()
    finally:
        process.terminate()
        process.wait(10)
    return end - start, end - got, len(page)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _aim(value: float, aim: float, unit: str) -> str:
    return f"{value / aim:.2f}x the aim of {aim:g} {unit} ({'met' if value < aim else 'NOT met'})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100, help="entries (default 100)")
    parser.add_argument("--samples", type=int, default=20_000, help="samples per entry (default 20,000)")
    parser.add_argument("--reference", type=int, default=10, help="entries of the reference build (0: none)")
    parser.add_argument("--work", type=Path, help="where the entries go (default: a temporary folder, deleted)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dfabench-bench-lb-"))
    work.mkdir(parents=True, exist_ok=True)
    # the commands' verification cache (dfabench.leaderboard.verified) starts empty, in the work folder
    os.environ["DFABENCH_CACHE_DIR"] = str(work / "cache")
    cli = dfabench_command()
    try:
        template = template_run(work)
        truth = ground_truth(args.samples)
        entries = work / "entries"
        start = time.perf_counter()
        with ProcessPoolExecutor(_cpus()) as pool:  # the entries are independent: made on every CPU
            list(pool.map(write_entry, [template] * args.entries,
                          [entries / f"synthetic-{index:03d}" for index in range(args.entries)],
                          [truth] * args.entries, range(args.entries), [args.entries] * args.entries))
        made = time.perf_counter() - start
        logs_mb = sum(p.stat().st_size for p in entries.rglob("samples-*.jsonl")) / 1e6
        print(f"made {args.entries} entries of {args.samples:,} samples in {made:.1f} s ({logs_mb:.0f} MB of logs)",
              flush=True)
        first = entries / "synthetic-000"

        rc_v, verify_s, verify_mb = measure([*cli, "verify", str(first)])
        print(f"reference: verify of one entry: rc {rc_v}, {verify_s:.2f} s, {verify_mb:.0f} MB peak", flush=True)
        ref = None
        if args.reference and args.reference < args.entries:
            few = work / "entries-ref"
            few.mkdir()
            for index in range(args.reference):
                (few / f"synthetic-{index:03d}").symlink_to(entries / f"synthetic-{index:03d}")
            ref = measure([*cli, "leaderboard", "build", "--entries", str(few), "--out", str(work / "lb-ref"),
                           "--no-cache"])
            print(f"reference: build of {args.reference} entries: rc {ref[0]}, {ref[1]:.2f} s, {ref[2]:.0f} MB peak",
                  flush=True)
            serial = measure([*cli, "leaderboard", "build", "--entries", str(few), "--out", str(work / "lb-ref1"),
                              "--jobs", "1", "--no-cache"])
            print(f"reference: build of {args.reference} entries with --jobs 1: rc {serial[0]}, {serial[1]:.2f} s, "
                  f"{serial[2]:.0f} MB peak", flush=True)
            same = all((work / "lb-ref" / f).read_bytes() == (work / "lb-ref1" / f).read_bytes()
                       for f in ("index.html", "leaderboard.json", "leaderboard.csv", "README.md"))
            print(f"reference: the two builds wrote the same files: {same}", flush=True)

        out = work / "lb"
        build = [*cli, "leaderboard", "build", "--entries", str(entries)]
        rc_b, build_s, build_mb = measure([*build, "--out", str(out)])
        page = (out / "index.html").stat().st_size
        data = (out / "leaderboard.json").stat().st_size
        cache_mb = sum(p.stat().st_size for p in (work / "cache").rglob("*") if p.is_file()) / 1e6
        print(f"cold build of {args.entries} entries x {args.samples:,} samples (every entry verified, the cache "
              f"empty): rc {rc_b}, {build_s:.2f} s, {build_mb:.0f} MB peak; index.html {page / 1e3:.0f} kB, "
              f"leaderboard.json {data / 1e3:.0f} kB (logs {logs_mb:.0f} MB; verification cache {cache_mb:.0f} MB)",
              flush=True)
        rc_w, warm_s, warm_mb = measure([*build, "--out", str(work / "lb-warm")])
        print(f"rebuild, nothing changed (every entry from the verification cache): rc {rc_w}, {warm_s:.2f} s, "
              f"{warm_mb:.0f} MB peak", flush=True)
        same_warm = all((out / f).read_bytes() == (work / "lb-warm" / f).read_bytes()
                        for f in ("index.html", "leaderboard.json", "leaderboard.csv", "README.md"))
        print(f"the rebuild wrote the same files as the cold build: {same_warm}", flush=True)
        write_entry(template, entries / f"synthetic-{args.entries:03d}", truth, args.entries, args.entries)
        rc_i, inc_s, inc_mb = measure([*build, "--out", str(work / "lb-new")])
        print(f"rebuild after one new submission ({args.entries} entries from the cache, 1 verified): rc {rc_i}, "
              f"{inc_s:.2f} s, {inc_mb:.0f} MB peak", flush=True)
        rc_c, check_s, check_mb = measure([*cli, "leaderboard", "check", str(first)])
        print(f"leaderboard check of one entry: rc {rc_c}, {check_s:.2f} s, {check_mb:.0f} MB peak", flush=True)
        view_s, get_s, view_bytes = viewer_first_page(first)
        print(f"viewer, first page of one entry: {view_s:.2f} s from start ({get_s:.2f} s for the GET), "
              f"{view_bytes / 1e6:.1f} MB", flush=True)

        print("\nratios")
        print(f"  cold build time: {_aim(build_s, AIM_BUILD_S, 's')} with {_cpus()} CPUs")
        print(f"  rebuild time, nothing changed: {_aim(warm_s, AIM_BUILD_S, 's')}")
        print(f"  rebuild time after one new submission: {_aim(inc_s, AIM_BUILD_S, 's')}")
        print(f"  cold build over its floor ({args.entries} x verify of one entry / {_cpus()} CPUs): "
              f"{build_s / (args.entries * verify_s / _cpus()):.2f}x")
        print(f"  rebuild, nothing changed, over the cold build: {warm_s / build_s:.3f}x")
        print(f"  build peak memory: {_aim(max(build_mb, warm_mb, inc_mb), AIM_BUILD_MB, 'MB')}")
        print(f"  check time: {_aim(check_s, AIM_CHECK_S, 's')}")
        print(f"  check / verify of the same entry: {check_s / verify_s:.2f}x")
        if ref is not None:
            per = (build_s / args.entries) / (ref[1] / args.reference)
            print(f"  build time per entry at {args.entries} over at {args.reference}: {per:.2f}x; "
                  f"peak memory {build_mb / ref[2]:.2f}x")
            print(f"  build of {args.reference} entries, parallel over --jobs 1: {ref[1] / serial[1]:.2f}x the time")
        print(f"  page bytes per entry: {page / args.entries:.0f} (the logs: {logs_mb * 1e6 / args.entries:.0f})")
        return 0 if rc_b == rc_w == rc_i == rc_c == rc_v == 0 and same_warm else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
