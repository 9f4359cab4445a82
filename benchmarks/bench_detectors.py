"""DeepfakeBench detectors (dfb-xception, dfb-efficientnet-b4, dfb-clip) on the CPU: images/s at batch 8 and 32 against
batch 1, preprocessing (DeepfakeBench's test transform) included.

Each detector is loaded the way a run loads it, from a checkpoint file in DeepfakeBench's layout with random
weights at full size (Xception and EfficientNet-B4 at 256, CLIP ViT-B/16 at 224; the speed does not depend on
the values). Both batch sizes score the same face-sized images in the same run; the ratio is what to read.
dfb-xception needs timm and torchvision: run this in .venv-detectors (``bash .ci/detectors-env.sh``) to measure
all three; elsewhere it is reported as skipped.

    .venv-detectors/bin/python benchmarks/bench_detectors.py [--images 64] [--repeats 2] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

MODELS = ("dfb-xception", "dfb-efficientnet-b4", "dfb-clip")


def images_per_second(model, requests, batch_size: int, repeats: int) -> float:
    """Best of ``repeats`` passes over all requests (after one warm-up batch)."""
    model.score(requests[:batch_size])
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(requests), batch_size):
            model.score(requests[i:i + batch_size])
        best = min(best, time.perf_counter() - start)
    return len(requests) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="images per pass (default 64)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,8,32", help="reference first (default 1,8,32)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    import numpy as np
    import torch
    from dfabench_detectors.deepfakebench import (
        CLIPDetector,
        EfficientNetB4Detector,
        XceptionDetector,
        write_random_checkpoint,
    )
    from PIL import Image

    from dfabench.api import DfabenchError, ScoreRequest

    if args.threads:
        torch.set_num_threads(args.threads)
    classes = {"dfb-xception": XceptionDetector, "dfb-efficientnet-b4": EfficientNetB4Detector,
               "dfb-clip": CLIPDetector}
    reference, *others = (int(b) for b in args.batch_sizes.split(","))
    rng = np.random.default_rng(0)
    requests = [ScoreRequest(f"s{i}", Image.fromarray(rng.integers(0, 256, (288, 288, 3), dtype=np.uint8)), "",
                             task="DF-D") for i in range(args.images)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images of 288x288 "
          f"(resized by each detector), best of {args.repeats}")
    header = f"{'model':<22}{'size':>5}{f'img/s @{reference}':>12}" + "".join(f"{f'img/s @{b}':>12}{'ratio':>8}"
                                                                          for b in others)
    print(header)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            try:
                weights = write_random_checkpoint(name, Path(folder) / f"{name}.pth")
                model = classes[name](weights=str(weights))
            except DfabenchError as exc:
                print(f"{name:<22}skipped: {str(exc)[:150]}")
                continue
            base = images_per_second(model, requests, reference, args.repeats)
            row = f"{name:<22}{model.size:>5}{base:>12.2f}"
            for batch in others:
                rate = images_per_second(model, requests, batch, args.repeats)
                row += f"{rate:>12.2f}{rate / base:>7.2f}x"
            print(row, flush=True)
            model.close()
            weights.unlink()


if __name__ == "__main__":
    main()
