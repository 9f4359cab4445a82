"""``dfabench baselines``: train and inspect the baseline detectors outside a run.

    dfabench baselines train --bench DIR [--out MODEL.npz] [--size 256] [--C auto]
    dfabench baselines info MODEL.npz

``train`` fits the spectrum detector on the benchmark's ``train`` split. Without ``--out`` the
model goes to the cache, where ``dfabench run --model spectrum`` on the same benchmark finds it;
with ``--out`` it is written there, for ``--model-arg weights=MODEL.npz`` (e.g. to score another
benchmark that has no train split). Registered through ``dfabench_register_commands``;
``dfabench-baselines ...`` is kept for one release as an alias of ``dfabench baselines ...``.
"""

from __future__ import annotations

import argparse
import json
import sys

from dfabench.api import cli_main as dfabench_main
from dfabench.api import load_benchmark


def train_command(args: argparse.Namespace) -> int:
    """``dfabench baselines train``: the exit code."""
    from dfabench_baselines.spectrum import cached_model_path, train_spectrum

    benchmark = load_benchmark(args.bench)
    model = train_spectrum(benchmark, size=args.size, C=args.C)
    path = model.save(args.out or cached_model_path(benchmark.fingerprint(), args.size, args.C))
    trained = model.meta["trained_on"]
    print(f"trained the spectrum detector on {trained['n']} {trained['split']} samples of {trained['benchmark']} "
          f"(fingerprint {trained['fingerprint'][:12]})")
    validation = model.meta.get("validation")
    if validation:
        print(f"validation split: DF-D AUC {validation.get('dfd_auc')}, DF-C accuracy {validation.get('dfc_accuracy')}"
              f" (n={validation['n']})")
    print(f"saved to {path}")
    if args.out:
        print(f"use it with: dfabench run --model spectrum --model-arg weights={path} ...")
    return 0


def info_command(args: argparse.Namespace) -> int:
    """``dfabench baselines info``: the exit code."""
    from dfabench_baselines.spectrum import SpectrumClassifier

    model = SpectrumClassifier.load(args.model)
    print(json.dumps({"size": model.size, "categories": list(model.categories), "sha256": model.fingerprint(),
                      **model.meta}, indent=2))
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dfabench baselines train``."""
    p.add_argument("--bench", required=True, help="benchmark folder (with a train split)")
    p.add_argument("--out", help="model file to write (default: the cache used by `dfabench run`)")
    p.add_argument("--size", type=int, default=256, help="images are resized to SIZE x SIZE (default 256)")
    p.add_argument("--C", default="auto", help="inverse regularisation strength, or 'auto' (default): chosen by "
                                               "cross-validation on the train split")


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dfabench baselines info``."""
    p.add_argument("model", help="model file (.npz)")


def main(argv: list[str] | None = None) -> int:
    """``dfabench-baselines ARGS``: the deprecated alias of ``dfabench baselines ARGS``."""
    print("dfabench-baselines is deprecated: use `dfabench baselines`", file=sys.stderr)
    return dfabench_main(["baselines", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
