"""``dfabench bench smoke --out DIR``: build a built-in benchmark."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=["smoke"], help="the benchmark to build")
    parser.add_argument("--out", required=True, help="folder to write it to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=["default", "small", "tiny"], default="default",
                        help="default: 654 samples; small: 182; tiny: 50 (for tests)")


def run(args: argparse.Namespace) -> int:
    # imported when the command runs, so that listing the commands (--help) stays light
    from dfabench.data.manifest import load_benchmark
    from dfabench.data.smoke import build_smoke

    out = Path(args.out)
    build_smoke(out, seed=args.seed, size=args.size)
    benchmark = load_benchmark(out)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(benchmark.splits().items()))
    print(f"smoke benchmark: {len(benchmark.samples)} samples ({splits}) in {out}")
    print(f"fingerprint {benchmark.fingerprint()}")
    return 0
