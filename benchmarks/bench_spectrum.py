"""The spectrum detector's throughput: images/s for decoding + features + prediction, as a ratio
to bare decoding of the same files measured in the same run.

    python benchmarks/bench_spectrum.py [--bench DIR] [--n 300] [--batch 64] [--repeat 3]

Without --bench it builds the default smoke benchmark in a temporary folder (needs the `smoke`
extra). The model is trained first on the benchmark's train split (not timed); the timed images
are those of the test split (or the first N samples when there is no test split).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dfabench_baselines.features import spectrum_features
from dfabench_baselines.spectrum import SpectrumDetector, train_spectrum
from PIL import Image

from dfabench.data.manifest import load_benchmark
from dfabench.models import ScoreRequest


def decode(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def best_of(repeat: int, job) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bench", help="benchmark folder (default: build the smoke benchmark)")
    parser.add_argument("--n", type=int, default=300, help="images to time")
    parser.add_argument("--batch", type=int, default=64, help="images per score() call (the runner's batch)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (the best is reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.bench:
            bench = load_benchmark(args.bench)
        else:
            from dfabench.data.smoke import build_smoke

            bench = load_benchmark(build_smoke(Path(tmp) / "smoke"))
        detector = SpectrumDetector()
        detector.model = train_spectrum(bench)
        name = bench.name
        samples = [s for s in bench.samples if s.split == "test"] or bench.samples
        paths = [str(bench.path_of(s.image)) for s in samples[: args.n]]
        n = len(paths)

        def decode_only() -> None:
            for path in paths:
                decode(path)

        def features_only() -> None:
            for path in paths:
                spectrum_features(decode(path))

        def full() -> None:
            for start in range(0, n, args.batch):
                chunk = paths[start:start + args.batch]
                detector.score([ScoreRequest(p, decode(p), p, task="DF-D") for p in chunk])

        decode_only()  # warm the file cache before timing anything
        t_decode = best_of(args.repeat, decode_only)
        t_features = best_of(args.repeat, features_only)
        t_full = best_of(args.repeat, full)
    print(f"{n} images of {name}, best of {args.repeat}")
    print(f"decode only:                    {n / t_decode:8.0f} images/s ({1000 * t_decode / n:.2f} ms/image)")
    print(f"decode + features:              {n / t_features:8.0f} images/s ({1000 * t_features / n:.2f} ms/image)")
    print(f"decode + features + prediction: {n / t_full:8.0f} images/s ({1000 * t_full / n:.2f} ms/image)")
    print(f"features + prediction cost {(t_full - t_decode) / t_decode:.2f}x the decoding time "
          f"(throughput ratio full / decode-only: {t_decode / t_full:.2f})")


if __name__ == "__main__":
    main()
