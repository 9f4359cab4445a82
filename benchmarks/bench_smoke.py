"""Building the smoke benchmark: seconds on this machine (the goal is under 30 s for the default size),
and the ratio to a reference measured in the same run: writing the same number of PNG files of the
same size (what any generator of this benchmark has to pay at least).

    python benchmarks/bench_smoke.py [--size default] [--seed 0] [--repeat 1]

Needs the `smoke` extra (scikit-image, matplotlib).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dfabench.data.smoke import SIZES, build_smoke


def write_pngs(folder: Path, n_images: int, n_masks: int) -> None:
    """The reference: encode and write as many noisy 256x256 RGB images and binary masks."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    mask = np.zeros((256, 256), np.uint8)
    mask[64:192, 64:192] = 255
    for i in range(n_images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
        (folder / f"i{i}.png").write_bytes(buffer.getvalue())
    for i in range(n_masks):
        buffer = io.BytesIO()
        Image.fromarray(mask).save(buffer, format="PNG", compress_level=1)
        (folder / f"m{i}.png").write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="default", choices=sorted(SIZES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="builds to time (the best is reported)")
    args = parser.parse_args()
    builds = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            out = Path(tmp) / f"smoke{i}"
            start = time.perf_counter()
            build_smoke(out, seed=args.seed, size=args.size)
            builds.append(time.perf_counter() - start)
        counts = json.loads((out / "benchmark.json").read_text())["counts"]
        n_samples = sum(sum(split.values()) for split in counts.values())
        n_masks = len(list((out / "masks").iterdir()))
        reference = Path(tmp) / "reference"
        reference.mkdir()
        start = time.perf_counter()
        write_pngs(reference, n_samples, n_masks)
        png_seconds = time.perf_counter() - start
        shutil.rmtree(reference)
    best = min(builds)
    print(f"smoke benchmark, size {args.size!r}, seed {args.seed}: {n_samples} samples, {n_masks} masks")
    print(f"build: {best:.2f} s (best of {len(builds)}; {n_samples / best:.0f} samples/s)")
    print(f"reference, writing {n_samples} images + {n_masks} masks as PNG: {png_seconds:.2f} s")
    print(f"ratio build / PNG writing: {best / png_seconds:.2f}x")


if __name__ == "__main__":
    main()
