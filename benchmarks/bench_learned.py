"""Training time and AUC of the learned baseline on the smoke benchmark, against ``spectrum`` measured in the same
run (and ``random``'s chance level). Needs dfabench-detectors (or PYTHONPATH=plugins/dfabench-detectors) and
dfabench-baselines.

    .venv/bin/python benchmarks/bench_learned.py [--bench DIR] [--epochs 5]

Prints the seconds each takes to train, their ratio, and the test split's DF-D AUC and DF-C accuracy of each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _test_metrics(benchmark, fake, categories):
    from dfabench.metrics.ranking import roc_auc
    from dfabench.vocab import CATEGORIES

    samples = benchmark.select("test")
    labels = np.array([s.label == "fake" for s in samples], dtype=int)
    auc = roc_auc(labels, np.asarray(fake, dtype=float))
    truth = [(i, s.category) for i, s in enumerate(samples) if s.label == "fake" and s.category in CATEGORIES]
    accuracy = float(np.mean([max(categories[i], key=categories[i].get) == c for i, c in truth])) if truth else None
    return auc, accuracy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", help="benchmark folder (default: build the smoke benchmark)")
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    import torch
    from dfabench_baselines.spectrum import features_of, train_spectrum
    from dfabench_detectors.learned import load_images, train_learned
    from dfabench_detectors.learned_config import TrainSettings

    from dfabench.api import load_benchmark
    from dfabench.data.smoke import build_smoke

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.bench) if args.bench else Path(tmp) / "smoke"
        if not args.bench:
            build_smoke(root)
        benchmark = load_benchmark(root)
        test = benchmark.select("test")

        started = time.perf_counter()
        spectrum = train_spectrum(benchmark)
        spectrum_s = time.perf_counter() - started
        fake, categories = spectrum.predict(features_of(benchmark, test, spectrum.size))
        spectrum_auc, spectrum_acc = _test_metrics(benchmark, fake, categories)

        settings = TrainSettings.from_args(epochs=args.epochs)
        started = time.perf_counter()
        learned = train_learned(benchmark, settings, stream=sys.stdout)
        learned_s = time.perf_counter() - started
        fake, probs = learned.predict(load_images(benchmark, test, settings.size))
        from dfabench.vocab import CATEGORIES

        cats = [dict(zip(CATEGORIES, row, strict=True)) for row in probs]
        learned_auc, learned_acc = _test_metrics(benchmark, fake, cats)

        rng = np.random.default_rng(0)
        random_auc, _ = _test_metrics(benchmark, rng.random(len(test)), cats)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"train seconds: learned-mobilenet {learned_s:.1f}, spectrum {spectrum_s:.1f}, "
          f"ratio {learned_s / spectrum_s:.1f}x")
    print(f"test DF-D AUC: learned-mobilenet {learned_auc:.4f}, spectrum {spectrum_auc:.4f}, random {random_auc:.4f}")
    print(f"test DF-C accuracy: learned-mobilenet {learned_acc:.4f}, spectrum {spectrum_acc:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
