"""FL mask scoring: dfabench.metrics.localization against a per-image loop like the official MMTT script's.

    python benchmarks/bench_masks.py [--n 20000] [--size 512] [--seed 0] [--workers N]

Writes ``n`` reference masks (``size``x``size`` PNG ellipses) and ``n`` predictions (shifted ellipses; a tenth
at half the size, so that they are resized, a tenth soft) into a temporary folder, then scores them in this
run with ``evaluate_masks`` of ``scripts/evaluation/evaluate_metrics.py`` (NattyLianJc/Generating-Attribution-
Reports; re-written here, called in a serial loop as its process pool would call it per image) and with
dfabench's ``count_pairs`` + ``scores_from_counts`` (its PNG decoder inflates with zlib-ng when installed).
Prints the largest per-image difference, the mean IoU, precision and recall of both, the times, the speed ratio
and the peak resident memory above the start of each.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time


def official_evaluate_masks(pred_path, gt_path):
    import numpy as np
    from PIL import Image

    gt_img = Image.open(gt_path).convert("L")
    gt = np.array(gt_img) > 127
    pred = np.array(Image.open(pred_path).convert("L").resize(gt_img.size, Image.NEAREST)) > 127
    intersection = np.logical_and(pred, gt).sum()
    union = np.logical_or(pred, gt).sum()
    pred_sum, gt_sum = pred.sum(), gt.sum()
    iou = 1.0 if union == 0 else float(intersection / union)
    precision = float(intersection / pred_sum) if pred_sum > 0 else (1.0 if gt_sum == 0 else 0.0)
    recall = float(intersection / gt_sum) if gt_sum > 0 else (1.0 if pred_sum == 0 else 0.0)
    return iou, precision, recall


def write_masks(folder: str, n: int, size: int, seed: int) -> list[tuple[str, str]]:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(n):
        x, y = rng.integers(0, size * 3 // 4, 2)
        w, h = rng.integers(size // 16, size // 2, 2)
        truth = Image.new("L", (size, size))
        if rng.random() > 0.05:  # a few empty references
            ImageDraw.Draw(truth).ellipse([x, y, x + w, y + h], fill=255)
        dx, dy = rng.integers(-size // 16, size // 16 + 1, 2)
        pred = Image.new("L", (size, size))
        ImageDraw.Draw(pred).ellipse([x + dx, y + dy, x + dx + w, y + dy + h], fill=255)
        kind = rng.random()
        if kind < 0.1:
            pred = pred.resize((size // 2, size // 2), Image.NEAREST)
        elif kind < 0.2:
            pred = pred.filter(ImageFilter.GaussianBlur(4))  # soft
        truth_path, pred_path = os.path.join(folder, f"gt{i}.png"), os.path.join(folder, f"pred{i}.png")
        truth.save(truth_path)
        pred.save(pred_path)
        pairs.append((pred_path, truth_path))
    return pairs


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(function):
    """(result, seconds, peak resident bytes above the start) of ``function()``, sampling RSS every 5 ms."""
    start, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.wait(0.005):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    return result, seconds, max(peak[0], _rss()) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    import numpy as np

    from dfabench.metrics.localization import WORKERS, count_pairs, scores_from_counts

    workers = args.workers or WORKERS
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        pairs = write_masks(folder, args.n, args.size, args.seed)
        written = time.perf_counter() - began
        official, official_s, official_mem = timed(lambda: np.array([official_evaluate_masks(*p) for p in pairs]))

        def ours():
            counts = np.array([c[:3] for c in count_pairs(((gt, pred, None) for pred, gt in pairs),
                                                          protocol="mmtt", workers=workers)])
            scores = scores_from_counts(counts)
            return np.stack([scores["iou"], scores["precision"], scores["recall"]], axis=1)

        mine, ours_s, ours_mem = timed(ours)
    from dfabench.metrics.localization import _inflate_module

    inflate = _inflate_module()
    inflate_name = (f"zlib-ng {getattr(inflate, 'ZLIBNG_VERSION', '')}".strip() if inflate.__name__ != "zlib"
                    else f"zlib {inflate.ZLIB_RUNTIME_VERSION} (pip install zlib-ng: faster)")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {args.n} pairs of "
          f"{args.size}x{args.size} PNG masks (written in {written:.1f} s); dfabench with {workers} threads, "
          f"inflating with {inflate_name}")
    print(f"largest per-image difference: {np.abs(official - mine).max():.2e}")
    for column, name in enumerate(("iou", "precision", "recall")):
        print(f"  {name:9s} official loop {official[:, column].mean():.6f}  dfabench {mine[:, column].mean():.6f}")
    print(f"official loop: {official_s:.2f} s ({official_s / args.n * 1e3:.2f} ms/image), "
          f"peak memory +{official_mem / 2**20:.0f} MiB")
    print(f"dfabench:      {ours_s:.2f} s ({ours_s / args.n * 1e3:.2f} ms/image), "
          f"peak memory +{ours_mem / 2**20:.0f} MiB")
    print(f"speed ratio (official loop / dfabench): {official_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
