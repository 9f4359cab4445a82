"""Core harness speed, as ratios against references measured in the same run.

1. Throughput: `dfabench run --model constant --tasks DF-D` on a generated N-sample manifest
   (default 100,000) against bare decoding of the same image files. Aim: the harness adds at
   most 20% over decoding.
2. Loading and validating a 1,000,000-record manifest: seconds and peak memory (aim: < 5 s, < 2 GB),
   against json.loads of the same lines.
3. `dfabench --help` and `dfabench models`: seconds, against a bare `python -c pass`; torch must
   never be imported (aim: < 0.5 s).

Usage: python benchmarks/bench_harness.py [--samples 100000] [--images 2000] [--records 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_bench(root: Path, n_samples: int, n_images: int, size: int = 256) -> Path:
    import numpy as np
    from PIL import Image

    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n_images):
        # smooth random content (like a photograph, unlike white noise, it compresses)
        small = Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
        small.resize((size, size), Image.BILINEAR).save(root / "images" / f"{i}.png")
    categories = ["FS", "FR", "FE", "EFS"]
    with open(root / "manifest.jsonl", "w") as handle:
        for i in range(n_samples):
            fake = i % 3 != 0
            handle.write(json.dumps({
                "id": f"s{i}", "image": f"images/{i % n_images}.png", "label": "fake" if fake else "real",
                "category": categories[i % 4] if fake else None, "technique": f"t{i % 13}" if fake else None,
                "source_id": f"src{i // 4}", "split": "test"}) + "\n")
    return root


def bench_throughput(n_samples: int, n_images: int) -> None:
    from dfabench.runner import decode_image

    with tempfile.TemporaryDirectory() as tmp:
        root = make_bench(Path(tmp) / "bench", n_samples, n_images)
        records = [json.loads(line) for line in open(root / "manifest.jsonl")]
        # warm the page cache for both contenders
        for i in range(n_images):
            decode_image(str(root / "images" / f"{i}.png"))
        start = time.perf_counter()
        for record in records:
            decode_image(str(root / record["image"]))
        bare = time.perf_counter() - start

        def harness(out: str, threads: int | None = None) -> float:
            env = dict(os.environ)
            if threads is not None:
                env["DFABENCH_DECODE_THREADS"] = str(threads)
            start = time.perf_counter()
            result = subprocess.run([sys.executable, "-m", "dfabench.cli", "run", "--model", "constant",
                                     "--tasks", "DF-D", "--bench", str(root), "--out", str(Path(tmp) / out),
                                     "--no-progress"], capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise SystemExit(result.stderr)
            return time.perf_counter() - start

        threads = harness("run")
        resumed = harness("run")
        single = harness("run-1-thread", threads=1)
    print(f"[throughput] {n_samples} samples ({n_images} distinct 256x256 PNGs, the size of DF40 frames), "
          "constant model, DF-D, 1000 bootstrap replicates, end to end (start-up, checks, fingerprint, scoring, files)")
    print(f"  bare decoding (1 thread):       {bare:7.2f} s  ({n_samples / bare:8.0f} images/s)")
    print(f"  dfabench run, 1 decode thread:  {single:7.2f} s  = {single / bare:.2f} x decoding (aim <= 1.20)")
    print(f"  dfabench run, default threads:  {threads:7.2f} s  = {threads / bare:.2f} x decoding")
    print(f"  same run again (all cached):    {resumed:7.2f} s  = {resumed / bare:.2f} x decoding")


MANIFEST_CODE = """
import resource, sys, time, json
from pathlib import Path
path = Path(sys.argv[1])
mode = sys.argv[2]
start = time.perf_counter()
if mode == "json":
    data = [json.loads(line) for line in open(path, "rb")]
    n = len(data)
else:
    from dfabench.data.manifest import load_benchmark
    n = len(load_benchmark(path).samples)
elapsed = time.perf_counter() - start
print(json.dumps({"n": n, "seconds": elapsed, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_manifest(n_records: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with open(root / "manifest.jsonl", "w") as handle:
            for i in range(n_records):
                fake = i % 2 == 0
                handle.write(json.dumps({
                    "id": f"ff-{i:08d}", "image": f"frames/{i // 32:06d}/{i % 32:03d}.png",
                    "label": "fake" if fake else "real", "category": "FS" if fake else None,
                    "technique": "simswap" if fake else None, "source_id": f"video{i // 32}", "split": "test"}) + "\n")
        size_mb = (root / "manifest.jsonl").stat().st_size / 1e6
        results = {}
        for mode in ("json", "dfabench"):
            out = subprocess.run([sys.executable, "-c", MANIFEST_CODE, str(root / "manifest.jsonl"), mode],
                                 capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout)
    ours, ref = results["dfabench"], results["json"]
    print(f"[manifest] {n_records} records ({size_mb:.0f} MB)")
    print(f"  json.loads of every line: {ref['seconds']:6.2f} s, peak {ref['peak_mb']:6.0f} MB")
    print(f"  load + validate:          {ours['seconds']:6.2f} s, peak {ours['peak_mb']:6.0f} MB "
          f"(ratio {ours['seconds'] / ref['seconds']:.2f} x json.loads; aim < 5 s, < 2048 MB)")


def bench_startup(repeat: int = 5) -> None:
    def best(cmd: list[str]) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        return min(times)

    bare = best([sys.executable, "-c", "pass"])
    help_s = best([sys.executable, "-m", "dfabench.cli", "--help"])
    models_s = best([sys.executable, "-m", "dfabench.cli", "models"])
    check = subprocess.run([sys.executable, "-c", "import sys; from dfabench.cli import main; main(['models']); "
                            "print('torch imported:', 'torch' in sys.modules)"], capture_output=True, text=True)
    print(f"[startup] best of {repeat}; all installed plugins loaded")
    print(f"  python -c pass:   {bare:.3f} s")
    print(f"  dfabench --help:  {help_s:.3f} s  ({help_s / bare:.1f} x bare python; aim < 0.5 s)")
    print(f"  dfabench models:  {models_s:.3f} s  ({models_s / bare:.1f} x bare python; aim < 0.5 s)")
    print(f"  {check.stdout.strip().splitlines()[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["throughput", "manifest", "startup"])
    args = parser.parse_args()
    os.environ.setdefault("DFABENCH_CACHE_DIR", tempfile.mkdtemp())
    if args.only in (None, "startup"):
        bench_startup()
    if args.only in (None, "manifest"):
        bench_manifest(args.records)
    if args.only in (None, "throughput"):
        bench_throughput(args.samples, args.images)


if __name__ == "__main__":
    main()
