"""``dfabench-baselines``: train and inspect the baseline detectors outside a run.

    dfabench-baselines train --bench DIR [--out MODEL.npz] [--size 256] [--C auto]
    dfabench-baselines info MODEL.npz

``train`` fits the spectrum detector on the benchmark's ``train`` split. Without ``--out`` the
model goes to the cache, where ``dfabench run --model spectrum`` on the same benchmark finds it;
with ``--out`` it is written there, for ``--model-arg weights=MODEL.npz`` (e.g. to score another
benchmark that has no train split).
"""

from __future__ import annotations

import argparse
import json
import sys

from dfabench.errors import DfabenchError
from dfabench.redact import redact


def _train(args: argparse.Namespace) -> int:
    from dfabench.data.manifest import load_benchmark

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


def _info(args: argparse.Namespace) -> int:
    from dfabench_baselines.spectrum import SpectrumClassifier

    model = SpectrumClassifier.load(args.model)
    print(json.dumps({"size": model.size, "categories": list(model.categories), "sha256": model.fingerprint(),
                      **model.meta}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dfabench-baselines", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="fit the spectrum detector on a benchmark's train split")
    p.add_argument("--bench", required=True, help="benchmark folder (with a train split)")
    p.add_argument("--out", help="model file to write (default: the cache used by `dfabench run`)")
    p.add_argument("--size", type=int, default=256, help="images are resized to SIZE x SIZE (default 256)")
    p.add_argument("--C", default="auto", help="inverse regularisation strength, or 'auto' (default): chosen by "
                                               "cross-validation on the train split")
    p.set_defaults(func=_train)
    p = sub.add_parser("info", help="show what a saved model was trained on")
    p.add_argument("model", help="model file (.npz)")
    p.set_defaults(func=_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DfabenchError as exc:
        print(f"error: {redact(exc)}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
